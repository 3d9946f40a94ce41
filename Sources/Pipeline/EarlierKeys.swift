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
    var lowest: [UInt128Hash: Int32] = [:]
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
