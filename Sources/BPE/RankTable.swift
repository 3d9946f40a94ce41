import TokenmillCore

/// The mergeable ranks of a byte-level BPE vocabulary: token bytes <-> rank.
///
/// Layout: every token's bytes back to back in one buffer (`bytes`), `offsets[r]..<
/// offsets[r+1]` for rank `r`, and an open-addressing hash table of ranks keyed by the
/// xxh3 of the bytes (linear probing, load <= 0.5). All storage is raw memory owned by
/// this object and never mutated after `init`, so worker threads share it without
/// reference counting in the hot loop (a `[[UInt8]: Int]` would retain/hash per lookup).
public final class RankTable: @unchecked Sendable {
    public let count: Int
    let bytes: UnsafeMutableBufferPointer<UInt8>
    let offsets: UnsafeMutableBufferPointer<UInt32>
    let slots: UnsafeMutableBufferPointer<UInt32>   // rank + 1; 0 = empty
    let mask: Int
    /// Rank of each single byte value (byte-level BPE vocabularies contain all 256).
    let byteRanks: UnsafeMutableBufferPointer<UInt32>

    public static let none = UInt32.max

    /// `tokens[r]` is the byte string of rank `r`, or nil for a hole (an id the ranks do not
    /// use, such as p50k_base's 50256, which is `<|endoftext|>`).
    public init(tokens: [[UInt8]?]) throws {
        count = tokens.count
        let total = tokens.reduce(0) { $0 + ($1?.count ?? 0) }
        bytes = .allocate(capacity: max(total, 1))
        offsets = .allocate(capacity: count + 1)
        var capacity = 16
        while capacity < count * 2 { capacity <<= 1 }
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: 0)
        mask = capacity - 1
        byteRanks = .allocate(capacity: 256)
        byteRanks.initialize(repeating: RankTable.none)
        var off = 0
        for (r, t) in tokens.enumerated() {
            offsets[r] = UInt32(off)
            for b in t ?? [] { bytes[off] = b; off += 1 }
        }
        offsets[count] = UInt32(off)
        for r in 0..<count {
            let start = Int(offsets[r]), end = Int(offsets[r + 1])
            if start == end { continue }   // a hole
            let ptr = UnsafeRawPointer(bytes.baseAddress! + start)
            if end - start == 1 { byteRanks[Int(bytes[start])] = UInt32(r) }
            var i = Int(truncatingIfNeeded: XXH3.hash64(UnsafeRawBufferPointer(start: ptr, count: end - start))) & mask
            while slots[i] != 0 {
                let other = Int(slots[i] - 1)
                if equal(other, ptr, end - start) {
                    throw TokenmillError.unsupported("vocabulary lists the token \(tokens[r]!) twice (ranks \(other) and \(r))")
                }
                i = (i + 1) & mask
            }
            slots[i] = UInt32(r + 1)
        }
        for b in 0..<256 where byteRanks[b] == RankTable.none {
            throw TokenmillError.unsupported("vocabulary has no token for byte \(b): not a byte-level BPE vocabulary")
        }
    }

    deinit {
        bytes.deallocate(); offsets.deallocate(); slots.deallocate(); byteRanks.deallocate()
    }

    @inline(__always)
    func equal(_ rank: Int, _ p: UnsafeRawPointer, _ n: Int) -> Bool {
        let start = Int(offsets[rank])
        guard Int(offsets[rank + 1]) - start == n else { return false }
        return memcmpBytes(UnsafeRawPointer(bytes.baseAddress! + start), p, n)
    }

    /// The rank of `p[0..<n]`, or `RankTable.none`.
    @inline(__always)
    public func rank(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt32 {
        if n == 1 { return byteRanks[Int(p[0])] }
        let raw = UnsafeRawPointer(p)
        var i = Int(truncatingIfNeeded: XXH3.hash64(UnsafeRawBufferPointer(start: raw, count: n))) & mask
        while true {
            let s = slots[i]
            if s == 0 { return RankTable.none }
            if equal(Int(s - 1), raw, n) { return s - 1 }
            i = (i + 1) & mask
        }
    }

    /// True when `rank` names a token (not a hole).
    @inline(__always)
    public func isToken(_ rank: Int) -> Bool { rank < count && offsets[rank] != offsets[rank + 1] }

    /// The bytes of a rank (valid while this table lives).
    @inline(__always)
    public func tokenBytes(_ rank: Int) -> UnsafeBufferPointer<UInt8> {
        let s = Int(offsets[rank]), e = Int(offsets[rank + 1])
        return UnsafeBufferPointer(start: bytes.baseAddress! + s, count: e - s)
    }
}

@inline(__always)
func memcmpBytes(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
    var i = 0
    while i + 8 <= n {
        if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) { return false }
        i += 8
    }
    while i < n {
        if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
        i += 1
    }
    return true
}
