/// Per-source counts, as `index.json` lists them under `sources.NAME`.
/// `read` counts rows that became records, `rejected` rows dropped for bad input, so
/// read + rejected equals the rows of the input.
public struct SourceStats: Sendable {
    public var read = 0
    public var rejected = 0
    public var filtered = 0
    public var exactDup = 0
    public var nearDup = 0
    public var decontaminated = 0
    /// Rows whose invalid UTF-8 was replaced with U+FFFD (`invalid_utf8: repair`).
    public var repairedUTF8 = 0
    /// Records after dedup, take and weight (copies count).
    public var kept = 0
    public var tokens = 0
    public var filterReasons: [String: Int] = [:]
}
