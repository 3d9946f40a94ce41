import TokenmillCore

/// Exact deduplication: the xxh3-128 of each record's normalized content
/// (`Record.dedupKey`); the first occurrence in spec order is kept.
///
/// Hashes are computed in parallel by the caller (`key(of:)` is pure); the decision pass
/// is sequential over 16-byte summaries, so the result never depends on timing.
public struct ExactDedup {
    var seen: Set<UInt128Hash> = []
    public init() {}

    public static func key(of r: Record) -> UInt128Hash {
        XXH3.hash128(r.dedupKey)
    }

    /// True when `key` is new (keep the record); false for a duplicate.
    public mutating func insert(_ key: UInt128Hash) -> Bool {
        seen.insert(key).inserted
    }
}
