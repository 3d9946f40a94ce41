import TokenmillCore

/// Packing strategies (docs/TEMPLATES.md "Packing"). The packer sees only document
/// lengths and returns, for each sequence, the pieces of documents it holds; it never
/// touches tokens, so it runs on compact summaries.
public enum PackStrategy: String, Sendable, CaseIterable { case none, concat, bestFit = "best-fit", pad }
public enum Overflow: String, Sendable, CaseIterable { case split, truncate, drop }

/// `doc`'s tokens `start..<end` placed in a sequence.
public struct Piece: Equatable, Sendable {
    public var doc: Int
    public var start: Int
    public var end: Int
    public var count: Int { end - start }
    public init(doc: Int, start: Int, end: Int) { self.doc = doc; self.start = start; self.end = end }
}

public struct PackResult: Sendable {
    public var sequences: [[Piece]]
    /// Documents dropped (`overflow: drop`) or cut (`truncate`) for being longer than
    /// seq_len, by index, in order (callers attribute them to their sources).
    public var droppedDocs: [Int]
    public var truncatedDocs: [Int]
    public var dropped: Int { droppedDocs.count }
    public var truncated: Int { truncatedDocs.count }
}

public enum Packer {
    /// `lossStarts[d]`: where document d's first trained token is (its length when none).
    /// Under `truncate`, a document whose first `seqLen` tokens hold no trained token is
    /// dropped instead: its truncation would train on nothing.
    public static func pack(lengths: [Int], seqLen: Int, strategy: PackStrategy, overflow: Overflow, lossStarts: [Int]? = nil) -> PackResult {
        precondition(seqLen > 0)
        if strategy == .concat { return PackResult(sequences: concat(lengths, seqLen), droppedDocs: [], truncatedDocs: []) }
        // Apply the overflow rule: every item is then at most seqLen long.
        var items: [Piece] = []
        var dropped: [Int] = [], truncated: [Int] = []
        for (d, n) in lengths.enumerated() where n > 0 {
            if n <= seqLen { items.append(Piece(doc: d, start: 0, end: n)); continue }
            switch overflow {
            case .drop: dropped.append(d)
            case .truncate:
                if let ls = lossStarts, ls[d] >= seqLen { dropped.append(d); continue }
                truncated.append(d); items.append(Piece(doc: d, start: 0, end: seqLen))
            case .split:
                var s = 0
                while s < n { items.append(Piece(doc: d, start: s, end: min(n, s + seqLen))); s += seqLen }
            }
        }
        switch strategy {
        case .none, .pad: return PackResult(sequences: items.map { [$0] }, droppedDocs: dropped, truncatedDocs: truncated)
        case .bestFit: return PackResult(sequences: bestFitDecreasing(items, seqLen), droppedDocs: dropped, truncatedDocs: truncated)
        case .concat: fatalError("handled above")
        }
    }

    /// One stream of all documents cut every `seqLen` tokens.
    static func concat(_ lengths: [Int], _ seqLen: Int) -> [[Piece]] {
        var out: [[Piece]] = []
        var cur: [Piece] = []
        var room = seqLen
        for (d, n) in lengths.enumerated() where n > 0 {
            var s = 0
            while s < n {
                let take = min(room, n - s)
                cur.append(Piece(doc: d, start: s, end: s + take))
                s += take; room -= take
                if room == 0 { out.append(cur); cur = []; room = seqLen }
            }
        }
        if !cur.isEmpty { out.append(cur) }
        return out
    }

    /// Best-fit decreasing: items by length (longest first, ties in input order); each goes
    /// to the open sequence with the least room that still fits it, ties to the earliest
    /// opened; else a new sequence. Rooms are bucketed by value with a bitset over them, so
    /// finding the best bin is a scan of set bits, not of bins.
    static func bestFitDecreasing(_ items: [Piece], _ seqLen: Int) -> [[Piece]] {
        let order = items.indices.sorted { items[$0].count != items[$1].count ? items[$0].count > items[$1].count : $0 < $1 }
        var bins: [[Piece]] = []
        var room: [Int] = []
        var byRoom = [MinHeap](repeating: MinHeap(), count: seqLen + 1)
        var occupied = [UInt64](repeating: 0, count: seqLen / 64 + 1)
        func setBit(_ c: Int) { occupied[c >> 6] |= 1 << UInt64(c & 63) }
        func clearBit(_ c: Int) { occupied[c >> 6] &= ~(1 << UInt64(c & 63)) }
        func firstAtLeast(_ c: Int) -> Int? {
            var w = c >> 6
            var bits = occupied[w] & (~0 << UInt64(c & 63))
            while true {
                if bits != 0 { return (w << 6) + bits.trailingZeroBitCount }
                w += 1
                if w >= occupied.count { return nil }
                bits = occupied[w]
            }
        }
        for i in order {
            let item = items[i]
            if let c = firstAtLeast(item.count) {
                let b = byRoom[c].pop()!
                if byRoom[c].isEmpty { clearBit(c) }
                bins[b].append(item)
                room[b] -= item.count
                let r = room[b]
                if r > 0 { byRoom[r].push(b); setBit(r) }
            } else {
                let b = bins.count
                bins.append([item])
                room.append(seqLen - item.count)
                let r = room[b]
                if r > 0 { byRoom[r].push(b); setBit(r) }
            }
        }
        return bins
    }
}

/// A binary min-heap of bin ids (earliest-opened first among equal rooms).
struct MinHeap {
    var a: [Int] = []
    var isEmpty: Bool { a.isEmpty }
    mutating func push(_ v: Int) {
        a.append(v)
        var i = a.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if a[p] <= a[i] { break }
            a.swapAt(p, i); i = p
        }
    }
    mutating func pop() -> Int? {
        guard let top = a.first else { return nil }
        let last = a.removeLast()
        if !a.isEmpty {
            a[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < a.count && a[l] < a[m] { m = l }
                if r < a.count && a[r] < a[m] { m = r }
                if m == i { break }
                a.swapAt(m, i); i = m
            }
        }
        return top
    }
}

/// Seeded Fisher–Yates shuffle of sequence order (same seed, same order, everywhere).
public func shuffleDeterministically<T>(_ items: inout [T], seed: UInt64) {
    var rng = SplitMix64(seed: seed)
    var i = items.count - 1
    while i > 0 {
        let j = Int(rng.below(UInt64(i + 1)))
        items.swapAt(i, j)
        i -= 1
    }
}
