import TokenmillCore

/// The mergeable ranks of a byte-level BPE vocabulary: token bytes <-> rank.
///
/// Layout: every token's bytes back to back in one buffer (`bytes`), `offsets[r]..<
/// offsets[r+1]` for rank `r`, and an open-addressing table (linear probing, load <= 0.25)
/// whose 64-bit slots hold a 32-bit tag of the key's hash and the rank + 1 (0 = empty):
/// a probe compares the tag first and touches the token bytes only on a tag match. All
/// storage is raw memory owned by this object and never mutated after `init`, so worker
/// threads share it without reference counting in the hot loop (a `[[UInt8]: Int]`
/// would hash a heap array and retain it per lookup).
///
/// The hash (`RankTable.hash`) loads the key in at most two 8-byte words for keys up to
/// 16 bytes (almost every BPE lookup) and falls back to xxh3 beyond.
public final class RankTable: @unchecked Sendable {
    public let count: Int
    let bytes: UnsafeMutableBufferPointer<UInt8>
    let offsets: UnsafeMutableBufferPointer<UInt32>
    let slots: UnsafeMutableBufferPointer<UInt64>
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
        while capacity < count * 4 { capacity <<= 1 }
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
            let ptr = UnsafePointer(bytes.baseAddress! + start)
            if end - start == 1 { byteRanks[Int(bytes[start])] = UInt32(r) }
            let h = RankTable.hash(ptr, end - start)
            if lookup(ptr, end - start, h) != RankTable.none {
                throw TokenmillError.unsupported("vocabulary lists the token \(tokens[r]!) twice")
            }
            var i = Int(truncatingIfNeeded: h) & mask
            while slots[i] != 0 { i = (i + 1) & mask }
            slots[i] = (h >> 32) << 32 | UInt64(r + 1)
        }
        for b in 0..<256 where byteRanks[b] == RankTable.none {
            throw TokenmillError.unsupported("vocabulary has no token for byte \(b): not a byte-level BPE vocabulary")
        }
    }

    deinit {
        bytes.deallocate(); offsets.deallocate(); slots.deallocate(); byteRanks.deallocate()
    }

    /// Hash of `p[0..<n]`. Reads whole 8-byte words for n >= 8 and exact bytes below, so
    /// it never reads outside the key.
    @inline(__always)
    static func hash(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt64 {
        let raw = UnsafeRawPointer(p)
        var v: UInt64
        if n >= 8 {
            if n > 16 { return XXH3.hash64(UnsafeRawBufferPointer(start: raw, count: n)) }
            let a = raw.loadUnaligned(as: UInt64.self)
            let b = raw.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
            v = a ^ (b &* 0x9E37_79B9_7F4A_7C15) ^ UInt64(n)
        } else if n >= 4 {
            let a = UInt64(raw.loadUnaligned(as: UInt32.self))
            let b = UInt64(raw.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self))
            v = a | b << 32 ^ UInt64(n) << 60
        } else {
            v = UInt64(p[0]) | UInt64(p[n >> 1]) << 8 | UInt64(p[n - 1]) << 16 | UInt64(n) << 24
        }
        // Murmur3's finalizer: every input bit reaches the low bits the table indexes with.
        v ^= v >> 33; v &*= 0xFF51_AFD7_ED55_8CCD
        v ^= v >> 33; v &*= 0xC4CE_B9FE_1A85_EC53
        v ^= v >> 33
        return v
    }

    @inline(__always)
    func lookup(_ p: UnsafePointer<UInt8>, _ n: Int, _ h: UInt64) -> UInt32 {
        var i = Int(truncatingIfNeeded: h) & mask
        let tag = h >> 32
        while true {
            let s = slots[i]
            if s == 0 { return RankTable.none }
            if s >> 32 == tag {
                let r = Int(truncatingIfNeeded: s & 0xFFFF_FFFF) - 1
                let start = Int(offsets[r])
                if Int(offsets[r + 1]) - start == n && memcmpBytes(UnsafeRawPointer(bytes.baseAddress! + start), UnsafeRawPointer(p), n) {
                    return UInt32(r)
                }
            }
            i = (i + 1) & mask
        }
    }

    /// The rank of `p[0..<n]`, or `RankTable.none`.
    @inline(__always)
    public func rank(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt32 {
        if n == 1 { return byteRanks[Int(p[0])] }
        return lookup(p, n, RankTable.hash(p, n))
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
