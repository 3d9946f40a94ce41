import TokenmillCore

/// The counts table of one source, which every stage writes into (index.json and
/// report.json carry it). Every record the readers made ends in exactly one bucket of
/// `buckets`; `rejected` counts input rows the readers refused. The report's check
/// compares the readers' own count (`records`, from the scan stage) with the sum of the
/// buckets that the shape and pack stages filled from the work folder — two independent
/// counts, so a record lost on the way makes the check (and the build) fail.
public struct SourceStats: Sendable {
    /// Input rows that went into records (for `group_by` sources, turn rows).
    public var read = 0
    /// Records the readers made (one a row, except for `group_by` sources).
    public var records = 0
    public var rejected = 0
    public var repairedUTF8 = 0
    public var filtered = 0
    public var exactDup = 0
    public var nearDup = 0
    public var decontaminated = 0
    /// Past the source's `take`.
    public var overTake = 0
    /// Not drawn by a `weight` below 1 (or of 0).
    public var subsampled = 0
    /// Longer than seq_len with `overflow: drop`.
    public var overflowDropped = 0
    /// Longer than seq_len with `overflow: truncate`: trained on, but cut.
    public var truncated = 0
    /// Records that reach the shards whole.
    public var kept = 0
    /// Documents written: each kept or truncated record once per copy (`weight` > 1 repeats).
    public var documents = 0
    public var tokens = 0
    public var filterReasons: [String: Int] = [:]

    public init() {}

    /// Records in the buckets: must equal `records`.
    public var bucketSum: Int { filtered + exactDup + nearDup + decontaminated + overTake + subsampled + overflowDropped + truncated + kept }

    static let keys = ["read", "records", "rejected", "repaired_utf8", "filtered", "exact_dup", "near_dup", "decontaminated",
                       "over_take", "subsampled", "overflow_dropped", "truncated", "kept", "documents", "tokens"]

    var values: [Int] {
        [read, records, rejected, repairedUTF8, filtered, exactDup, nearDup, decontaminated, overTake, subsampled, overflowDropped,
         truncated, kept, documents, tokens]
    }

    var json: JSONOut {
        .object(zip(Self.keys, values).map { ($0, .int($1)) }
                + [("filter_reasons", .object(filterReasons.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) }))])
    }

    init(_ v: JSONValue, path: String) throws {
        var n: [Int] = []
        for k in Self.keys {
            guard let x = v[k]?.intValue, x >= 0 else { throw TokenmillError.corrupt(path: path, message: "counts lack '\(k)'") }
            n.append(x)
        }
        (read, records, rejected, repairedUTF8, filtered, exactDup, nearDup, decontaminated) = (n[0], n[1], n[2], n[3], n[4], n[5], n[6], n[7])
        (overTake, subsampled, overflowDropped, truncated, kept, documents, tokens) = (n[8], n[9], n[10], n[11], n[12], n[13], n[14])
        for m in v["filter_reasons"]?.objectValue ?? [] { filterReasons[m.keyString] = m.value.intValue ?? 0 }
    }
}
