import TokenmillCore

/// Seeded byte edits for the fuzz-style tests: `edits` times, a byte at a random position
/// is replaced, deleted or inserted (`byte` picks the byte written; any byte by default).
/// An input edited down to nothing becomes a single space.
public func mutate(_ b: inout [UInt8], edits: Int, _ rng: inout SplitMix64,
                   byte: (inout SplitMix64) -> UInt8 = { UInt8(truncatingIfNeeded: $0.next()) }) {
    for _ in 0..<edits {
        if b.isEmpty { b = [0x20] }
        let at = Int(rng.below(UInt64(b.count)))
        switch rng.below(3) {
        case 0: b[at] = byte(&rng)
        case 1: b.remove(at: at)
        default: b.insert(byte(&rng), at: at)
        }
    }
    if b.isEmpty { b = [0x20] }
}
