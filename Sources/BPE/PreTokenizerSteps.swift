import TokenmillCore

/// The general pre-tokenization path of tokenizer.json files: a list of steps applied in
/// order, each splitting every piece the previous step produced, as the `tokenizers`
/// library's `PreTokenizedString` does. Used when the pre-tokenizer is not the single
/// known pattern the fast path (`Pretokenizer`) covers: any `Split` regex or behaviour,
/// `invert`, `Digits`, a ByteLevel regex after a `Split`, `add_prefix_space` on every piece.
public enum PreTokenizerStep: Sendable {
    case split(SplitPattern, SplitBehavior, invert: Bool)
    /// `Digits`: numeric scalars (Nd, Nl, No — Rust's `char::is_numeric`) isolated one by
    /// one, or runs of them kept together.
    case digits(individual: Bool)
    /// `ByteLevel`: a space before a piece that lacks one, then the GPT-2 pattern.
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
}

public enum SplitPattern: Sendable {
    /// A pattern a hand-written scanner implements (its matches cover the text).
    case scanner(Pretokenizer)
    case regex(SplitRegex)
}

/// `SplitDelimiterBehavior` of the `tokenizers` library.
public enum SplitBehavior: String, Sendable {
    case removed = "Removed", isolated = "Isolated", mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext", contiguous = "Contiguous"
}

enum PreTokenization {
    /// One piece of text in, its pre-tokens out (in order, none empty). Steps after
    /// `ByteLevel` (Falcon's `Digits` and `Split`) see the byte-level alphabet's text, as in
    /// `tokenizers`: a continuation byte 0xB2 is `²` there, which `Digits` counts as
    /// numeric; their pieces are mapped back to bytes at the end.
    static func apply(_ steps: [PreTokenizerStep], to text: [UInt8]) -> [[UInt8]] {
        var pieces = [text]
        var mapped = false
        let byteLevelIsLast: Bool = { if case .byteLevel = steps.last { return true } else { return false } }()
        for step in steps {
            var next: [[UInt8]] = []
            next.reserveCapacity(pieces.count * 2)
            for p in pieces { apply(step, p, into: &next) }
            pieces = next
            // (ByteLevel appears once: the loader checks.)
            if case .byteLevel = step, !byteLevelIsLast {
                pieces = pieces.map(ByteLevelAlphabet.encode)
                mapped = true
            }
        }
        if mapped { pieces = pieces.map { ByteLevelAlphabet.decode($0) ?? $0 } }
        return pieces
    }

    static func apply(_ step: PreTokenizerStep, _ piece: [UInt8], into out: inout [[UInt8]]) {
        switch step {
        case .split(let pattern, let behavior, let invert):
            var m = matches(pattern, piece)
            if invert { for k in m.indices { m[k].isMatch.toggle() } }
            emit(piece, group(m, behavior), into: &out)
        case .digits(let individual):
            let m = numericMatches(piece)
            emit(piece, group(m, individual ? .isolated : .contiguous), into: &out)
        case .byteLevel(let addPrefixSpace, let useRegex):
            var p = piece
            if addPrefixSpace && p.first != 0x20 { p.insert(0x20, at: 0) }
            if useRegex {
                p.withUnsafeBufferPointer { b in
                    guard let base = b.baseAddress, b.count > 0 else { return }
                    Pretokenizer.r50k.split(base, b.count) { out.append(Array(b[$0..<$1])) }
                }
            } else if !p.isEmpty {
                out.append(p)
            }
        }
    }

    typealias Match = (start: Int, end: Int, isMatch: Bool)

    /// `Pattern::find_matches`: ordered pieces covering the text, each flagged as a match
    /// or not (byte offsets).
    static func matches(_ pattern: SplitPattern, _ text: [UInt8]) -> [Match] {
        if text.isEmpty { return [(0, 0, false)] }
        var m: [Match] = []
        switch pattern {
        case .scanner(let p):
            text.withUnsafeBufferPointer { b in p.split(b.baseAddress!, b.count) { m.append(($0, $1, true)) } }
        case .regex(let re):
            let (scalars, offsets) = decode(text)
            var prev = 0
            scalars.withUnsafeBufferPointer { s in
                re.forEachMatch(s) { a, e in
                    let sa = offsets[a], se = offsets[e]
                    if prev != sa { m.append((prev, sa, false)) }
                    m.append((sa, se, true))
                    prev = se
                }
            }
            if prev != text.count { m.append((prev, text.count, false)) }
        }
        return m
    }

    /// The function pattern of `Digits`: every numeric scalar is its own match.
    static func numericMatches(_ text: [UInt8]) -> [Match] {
        if text.isEmpty { return [(0, 0, false)] }
        let numeric = CharSet.category(.Nd, .Nl, .No)
        var m: [Match] = []
        var last = 0, i = 0
        while i < text.count {
            let (c, len) = scalar(text, i)
            if numeric & (1 << UInt32(UnicodeData.category(c))) != 0 {
                if last < i { m.append((last, i, false)) }
                m.append((i, i + len, true))
                last = i + len
            }
            i += len
        }
        if i > last { m.append((last, i, false)) }
        return m
    }

    /// `NormalizedString::split`: ranges to keep, by behaviour.
    static func group(_ matches: [Match], _ behavior: SplitBehavior) -> [(Int, Int)] {
        switch behavior {
        case .isolated: return matches.map { ($0.start, $0.end) }
        case .removed: return matches.filter { !$0.isMatch }.map { ($0.start, $0.end) }
        case .contiguous, .mergedWithPrevious:
            var acc: [(Int, Int)] = []
            var previous = false
            for m in matches {
                let merge = behavior == .contiguous ? m.isMatch == previous : (m.isMatch && !previous)
                if merge, !acc.isEmpty { acc[acc.count - 1].1 = m.end } else { acc.append((m.start, m.end)) }
                previous = m.isMatch
            }
            return acc
        case .mergedWithNext:
            var acc: [(Int, Int)] = []
            var previous = false
            for m in matches.reversed() {
                if m.isMatch && !previous, !acc.isEmpty { acc[acc.count - 1].0 = m.start } else { acc.append((m.start, m.end)) }
                previous = m.isMatch
            }
            return acc.reversed()
        }
    }

    static func emit(_ text: [UInt8], _ ranges: [(Int, Int)], into out: inout [[UInt8]]) {
        for (a, e) in ranges where e > a { out.append(Array(text[a..<e])) }
    }

    /// Scalars of valid UTF-8 and the byte offset of each (plus the end).
    static func decode(_ text: [UInt8]) -> ([UInt32], [Int]) {
        var scalars: [UInt32] = [], offsets: [Int] = []
        scalars.reserveCapacity(text.count)
        offsets.reserveCapacity(text.count + 1)
        var i = 0
        while i < text.count {
            let (c, len) = scalar(text, i)
            scalars.append(c); offsets.append(i)
            i += len
        }
        offsets.append(text.count)
        return (scalars, offsets)
    }

    @inline(__always)
    static func scalar(_ t: UnsafeBufferPointer<UInt8>, _ i: Int) -> (UInt32, Int) {
        let b0 = UInt32(t[i])
        if b0 < 0x80 { return (b0, 1) }
        let n = b0 < 0xE0 ? 2 : b0 < 0xF0 ? 3 : 4
        guard i + n <= t.count else { return (0xFFFD, 1) }
        if n == 2 { return ((b0 & 0x1F) << 6 | UInt32(t[i + 1] & 0x3F), 2) }
        if n == 3 { return ((b0 & 0x0F) << 12 | UInt32(t[i + 1] & 0x3F) << 6 | UInt32(t[i + 2] & 0x3F), 3) }
        return ((b0 & 0x07) << 18 | UInt32(t[i + 1] & 0x3F) << 12 | UInt32(t[i + 2] & 0x3F) << 6 | UInt32(t[i + 3] & 0x3F), 4)
    }

    @inline(__always)
    static func scalar(_ t: [UInt8], _ i: Int) -> (UInt32, Int) {
        let b0 = UInt32(t[i])
        if b0 < 0x80 { return (b0, 1) }
        if b0 < 0xE0 { return ((b0 & 0x1F) << 6 | UInt32(t[i + 1] & 0x3F), 2) }
        if b0 < 0xF0 { return ((b0 & 0x0F) << 12 | UInt32(t[i + 1] & 0x3F) << 6 | UInt32(t[i + 2] & 0x3F), 3) }
        return ((b0 & 0x07) << 18 | UInt32(t[i + 1] & 0x3F) << 12 | UInt32(t[i + 2] & 0x3F) << 6 | UInt32(t[i + 3] & 0x3F), 4)
    }
}
