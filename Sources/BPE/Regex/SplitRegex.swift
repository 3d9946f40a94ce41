import TokenmillCore

/// A compiled `Split` regex: a backtracking machine with Oniguruma's leftmost-first
/// semantics over Unicode scalars, for patterns the hand-written scanners do not know.
///
/// Exact rather than fast: patterns the scanners recognise never come here. The
/// backtrack stack lives on the heap, so long inputs (100 KB of spaces under `\s+`) cost
/// memory, not call-stack depth; atomic groups and look-aheads recurse only as deep as
/// the pattern nests.
public final class SplitRegex: @unchecked Sendable {
    struct Inst {
        enum Op: UInt8 { case char, set, any, split, jump, assert, atomic, look, negativeLook, succeed }
        var op: Op
        var a: Int32 = 0
        var b: Int32 = 0
    }

    let program: [Inst]
    let sets: [CharSet]
    /// ASCII membership of each set, precomputed: bit c of asciiSets[k].
    let asciiSets: [(UInt64, UInt64)]
    public let pattern: String

    public init(_ pattern: String) throws(RegexError) {
        self.pattern = pattern
        let node = try RegexParser.parse(pattern)
        var c = Compiler()
        c.emit(node)
        c.program.append(Inst(op: .succeed))
        if c.program.count > 200_000 { throw RegexError(message: "pattern compiles to more than 200,000 instructions") }
        program = c.program
        sets = c.sets
        asciiSets = c.sets.map { set in
            var lo: UInt64 = 0, hi: UInt64 = 0
            for ch in UInt32(0)..<128 where set.contains(ch) {
                if ch < 64 { lo |= 1 << UInt64(ch) } else { hi |= 1 << UInt64(ch - 64) }
            }
            return (lo, hi)
        }
    }

    struct Compiler {
        var program: [Inst] = []
        var sets: [CharSet] = []

        mutating func emit(_ node: RegexNode) {
            switch node {
            case .empty: break
            case .char(let c): program.append(Inst(op: .char, a: Int32(bitPattern: c)))
            case .set(let s):
                sets.append(s)
                program.append(Inst(op: .set, a: Int32(sets.count - 1)))
            case .any: program.append(Inst(op: .any))
            case .concat(let items): for n in items { emit(n) }
            case .alt(let branches):
                // split L1, next; L1: branch; jump end; next: split ... last branch
                var jumps: [Int] = []
                for (k, b) in branches.enumerated() {
                    if k < branches.count - 1 {
                        let split = program.count
                        program.append(Inst(op: .split))
                        program[split].a = Int32(program.count)
                        emit(b)
                        jumps.append(program.count)
                        program.append(Inst(op: .jump))
                        program[split].b = Int32(program.count)
                    } else {
                        emit(b)
                    }
                }
                for j in jumps { program[j].a = Int32(program.count) }
            case .repeat_(let body, let min, let max, let lazy):
                for _ in 0..<min { emit(body) }
                if max < 0 {
                    // loop: split body, end (greedy) / split end, body (lazy)
                    let loop = program.count
                    program.append(Inst(op: .split))
                    let bodyStart = program.count
                    emit(body)
                    program.append(Inst(op: .jump, a: Int32(loop)))
                    let end = Int32(program.count)
                    program[loop].a = lazy ? end : Int32(bodyStart)
                    program[loop].b = lazy ? Int32(bodyStart) : end
                } else if max > min {
                    var splits: [Int] = []
                    for _ in 0..<(max - min) {
                        splits.append(program.count)
                        program.append(Inst(op: .split))
                        let bodyStart = Int32(program.count)
                        program[splits.last!].a = bodyStart
                        emit(body)
                    }
                    let end = Int32(program.count)
                    for s in splits {
                        if lazy { program[s].b = program[s].a; program[s].a = end } else { program[s].b = end }
                    }
                }
            case .atomic(let body), .look(let body, _):
                // op (a: index after the body); the body runs as a sub-match ending in succeed.
                let at = program.count
                var op = Inst.Op.atomic
                if case .look(_, let negative) = node { op = negative ? .negativeLook : .look }
                program.append(Inst(op: op))
                emit(body)
                program.append(Inst(op: .succeed))
                program[at].a = Int32(program.count)
            case .assert(let anchor): program.append(Inst(op: .assert, a: anchor.rawValue))
            }
        }
    }

    @inline(__always) func setContains(_ k: Int, _ c: UInt32) -> Bool {
        if c < 64 { return asciiSets[k].0 & (1 << UInt64(c)) != 0 }
        if c < 128 { return asciiSets[k].1 & (1 << UInt64(c - 64)) != 0 }
        return sets[k].contains(c)
    }

    /// The end of the leftmost-first match that starts at `start`, or nil.
    func matchEnd(_ s: UnsafeBufferPointer<UInt32>, at start: Int, stack: inout [Int]) -> Int? {
        let e = run(s, pc: 0, pos: start, stack: &stack)
        return e >= 0 ? e : nil
    }

    private func isWord(_ s: UnsafeBufferPointer<UInt32>, _ k: Int) -> Bool {
        k >= 0 && k < s.count && CharSet.isWord(s[k])
    }

    private func run(_ s: UnsafeBufferPointer<UInt32>, pc pc0: Int, pos pos0: Int, stack: inout [Int]) -> Int {
        let base = stack.count
        var pc = pc0, pos = pos0
        let n = s.count
        while true {
            let inst = program[pc]
            var ok = true
            switch inst.op {
            case .char:
                if pos < n && s[pos] == UInt32(bitPattern: inst.a) { pos += 1; pc += 1 } else { ok = false }
            case .set:
                if pos < n && setContains(Int(inst.a), s[pos]) { pos += 1; pc += 1 } else { ok = false }
            case .any:
                if pos < n && s[pos] != 0x0A { pos += 1; pc += 1 } else { ok = false }
            case .split:
                stack.append(Int(inst.b)); stack.append(pos)
                pc = Int(inst.a)
            case .jump:
                pc = Int(inst.a)
            case .assert:
                switch RegexNode.Anchor(rawValue: inst.a)! {
                case .lineStart: ok = pos == 0 || s[pos - 1] == 0x0A
                case .lineEnd: ok = pos == n || s[pos] == 0x0A
                case .textStart: ok = pos == 0
                case .textEnd: ok = pos == n
                case .textEndOrFinalNewline: ok = pos == n || (pos == n - 1 && s[pos] == 0x0A)
                case .wordBoundary: ok = isWord(s, pos - 1) != isWord(s, pos)
                case .notWordBoundary: ok = isWord(s, pos - 1) == isWord(s, pos)
                }
                pc += 1
            case .atomic:
                let e = run(s, pc: pc + 1, pos: pos, stack: &stack)
                if e >= 0 { pos = e; pc = Int(inst.a) } else { ok = false }
            case .look, .negativeLook:
                let e = run(s, pc: pc + 1, pos: pos, stack: &stack)
                if (e >= 0) == (inst.op == .look) { pc = Int(inst.a) } else { ok = false }
            case .succeed:
                stack.removeSubrange(base...)
                return pos
            }
            if !ok {
                if stack.count == base { return -1 }
                pos = stack.removeLast()
                pc = stack.removeLast()
            }
        }
    }

    /// Oniguruma's `find_iter` as the `onig` crate runs it: leftmost matches, searching
    /// on from each match end; an empty match right where the previous match ended is
    /// skipped by one scalar. Calls `found(start, end)` in scalar indices.
    public func forEachMatch(_ s: UnsafeBufferPointer<UInt32>, _ found: (Int, Int) -> Void) {
        var stack: [Int] = []
        stack.reserveCapacity(64)
        let n = s.count
        var lastEnd = 0
        var lastMatchEnd = -1
        while lastEnd <= n {
            var hit: (Int, Int)? = nil
            var start = lastEnd
            while start <= n {
                if let e = matchEnd(s, at: start, stack: &stack) { hit = (start, e); break }
                start += 1
            }
            guard let (a, e) = hit else { return }
            if a == e && lastMatchEnd == e {
                lastEnd += 1
                continue
            }
            lastEnd = e
            lastMatchEnd = e
            found(a, e)
        }
    }
}
