#if canImport(Glibc)
import Glibc
#endif
import TokenmillCore

/// Token bytes -> id, for building a vocabulary's tables at load: open addressing over
/// xxh3 hashes, keys in one arena. (A `[[UInt8]: UInt32]` costs an array and a SipHash per
/// lookup; a SentencePiece file's merges look up three tokens each, 180,000 lookups for
/// Phi-3, which was a tenth of `tokenmill encode`'s time on 13 MB.)
struct ByteKeyIndex {
    private var arena: [UInt8] = []
    private var starts: [Int32] = []
    private var ids: [UInt32] = []
    private var slots: [Int32]
    private var hashes: [UInt64]
    private let mask: Int

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = [Int32](repeating: -1, count: size)
        hashes = [UInt64](repeating: 0, count: size)
        mask = size - 1
        starts.reserveCapacity(capacity + 1)
        starts.append(0)
    }

    var count: Int { ids.count }

    /// Adds `key` -> `id`; false (and nothing changes) when the key is there already.
    @discardableResult
    mutating func insert(_ key: UnsafeRawBufferPointer, _ id: UInt32) -> Bool {
        let h = XXH3.hash64(key)
        var i = Int(truncatingIfNeeded: h) & mask
        while slots[i] >= 0 {
            if hashes[i] == h && equals(Int(slots[i]), key) { return false }
            i = (i + 1) & mask
        }
        precondition(ids.count < slots.count / 2, "ByteKeyIndex: more keys than its capacity")
        slots[i] = Int32(ids.count)
        hashes[i] = h
        arena.append(contentsOf: key)
        starts.append(Int32(arena.count))
        ids.append(id)
        return true
    }

    func find(_ key: UnsafeRawBufferPointer) -> UInt32? {
        let h = XXH3.hash64(key)
        var i = Int(truncatingIfNeeded: h) & mask
        while slots[i] >= 0 {
            if hashes[i] == h && equals(Int(slots[i]), key) { return ids[Int(slots[i])] }
            i = (i + 1) & mask
        }
        return nil
    }

    func find(_ key: String) -> UInt32? {
        var k = key
        return k.withUTF8 { find(UnsafeRawBufferPointer($0)) }
    }

    private func equals(_ entry: Int, _ key: UnsafeRawBufferPointer) -> Bool {
        let s = Int(starts[entry]), e = Int(starts[entry + 1])
        guard e - s == key.count else { return false }
        return arena.withUnsafeBytes { a in key.count == 0 || memcmp(a.baseAddress! + s, key.baseAddress!, key.count) == 0 }
    }
}
