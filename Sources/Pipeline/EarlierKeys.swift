import TokenmillCore

/// The exact-dedup keys this process's scan units have met, each with the lowest unit
/// that holds it. A record whose key a lower unit holds is an exact duplicate whatever
/// else the corpus holds (the first occurrence in spec order is kept, and units are in
/// spec order), so the scan neither signs nor tokenizes it — on corpora with many
/// repeats that is most of the tokenizer's work. The exact stage still decides from the
/// keys alone; this only skips work whose result would never be read, so the output
/// bytes cannot depend on which units happened to run first (docs/PIPELINE.md).
///
/// Full 128-bit keys: a collision of a shorter one could skip a record that is kept.
/// Bounded: past `capacity` keys no new ones are added (~40 bytes a key).
final class EarlierKeys: @unchecked Sendable {
    let lock = NSLockLite()
    var lowest = HashKeyMap<Int32>()
    let capacity: Int

    init(capacity: Int = 4 << 20) { self.capacity = capacity }

    /// Sets `repeated[i]` for records whose key a lower unit than `unit` holds, and notes
    /// this unit's keys.
    func mark(unit: Int, keys: (Int) -> UInt128Hash?, count: Int, repeated: inout [Bool]) {
        let u = Int32(unit)
        lock.lock(); defer { lock.unlock() }
        for i in 0..<count {
            guard let k = keys(i) else { continue }
            if let v = lowest[k] {
                if v < u { repeated[i] = true } else if u < v { lowest[k] = u }
            } else if lowest.count < capacity {
                lowest[k] = u
            }
        }
    }
}

/// What the scan's first half (normalize, filter, exact key) made of record contents this
/// process has met, by a hash of the record as read: a record that repeats one byte for
/// byte gets the same normalized content hash, exact key and instruction type without
/// normalizing or keying it again (normalization, filters and keys are functions of the
/// fields alone). On the benchmark corpus (half of it repeats) that is ~5% of the scan's CPU.
/// Only records that pass the filters and have a key are remembered; a record found
/// here is normalized later only if it turns out to need tokens (its key was not seen in
/// an earlier unit), so the output is what it would be without the cache.
///
/// Full 128-bit hashes; bounded: past `capacity` entries no new ones are added (~100
/// bytes an entry).
final class RepeatedContent: @unchecked Sendable {
    struct Entry { var key: UInt128Hash; var content: UInt64; var type: String? }
    let lock = NSLockLite()
    var entries = HashKeyMap<Entry>()
    let capacity: Int

    init(capacity: Int = 1 << 20) { self.capacity = capacity }

    /// The record's fields as read (kind, each field with its length): text records
    /// hash their text alone under their own seed.
    static func identity(_ r: Record) -> UInt128Hash {
        if r.kind == .text && r.system.isEmpty && r.turns.isEmpty {
            return r.text.withUnsafeBytes { XXH3.hash128($0, seed: 0x7465_7874) }
        }
        return XXH3.hash128(r.dedupKey, seed: 0x636F_6E76)
    }

    /// `out[i]` for each `ids[i]` met before (one lock for them all).
    func lookup(_ ids: [UInt128Hash?], into out: inout [Entry?]) {
        lock.lock(); defer { lock.unlock() }
        if entries.isEmpty { return }
        for (i, id) in ids.enumerated() { if let id { out[i] = entries[id] } }
    }

    /// Remembers `entry(i)` for i in 0..<count where it is not nil (one lock for them all).
    func remember(count: Int, _ entry: (Int) -> (UInt128Hash, Entry)?) {
        lock.lock(); defer { lock.unlock() }
        for i in 0..<count {
            guard entries.count < capacity else { return }
            if let (id, e) = entry(i) { entries[id] = e }
        }
    }
}
