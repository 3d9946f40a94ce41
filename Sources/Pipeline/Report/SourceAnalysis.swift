import TokenmillCore

/// What report.html shows of one source's kept records, tallied by the shape stage from
/// the row summaries (each kept record once, whatever its copies): token lengths of
/// prompts and responses (a conversation's tokens before its first trained token, and the
/// rest) and of text records, in powers-of-two buckets, and its instruction types.
struct SourceAnalysis {
    /// Bucket 0 counts empty; bucket k >= 1 counts lengths in [2^(k-1), 2^k).
    var prompt = [Int](repeating: 0, count: 33)
    var response = [Int](repeating: 0, count: 33)
    var text = [Int](repeating: 0, count: 33)
    var types: [String: [String: Int]] = [:]

    static func bucket(_ n: Int) -> Int { n <= 0 ? 0 : min(32, Int.bitWidth - n.leadingZeroBitCount) }

    /// Tallies one kept record; a conversation's instruction type is counted in `kinds`
    /// (indexed like its unit's type table), folded in by `addTypes` once a unit (splitting
    /// and hashing the type's strings per record was most of the shape stage).
    mutating func add(_ r: RowSummary, kinds: inout [Int], path: @autoclosure () -> String) throws {
        if r.kind == RowSummary.noKind {
            text[Self.bucket(Int(r.tokenCount))] += 1
            return
        }
        guard Int(r.kind) < kinds.count else { throw TokenmillError.corrupt(path: path(), message: "instruction type \(r.kind) unknown") }
        let first = Int(min(r.firstLoss, r.tokenCount))
        prompt[Self.bucket(first)] += 1
        response[Self.bucket(Int(r.tokenCount) - first)] += 1
        kinds[Int(r.kind)] += 1
    }

    /// A unit's instruction types: `kinds[k]` records of "verb\tobject" `table[k]`.
    mutating func addTypes(_ table: [String], _ kinds: [Int]) {
        for (k, n) in kinds.enumerated() where n > 0 {
            let pair = table[k]
            let tab = pair.firstIndex(of: "\t") ?? pair.endIndex
            let verb = String(pair[..<tab]), object = tab < pair.endIndex ? String(pair[pair.index(after: tab)...]) : ""
            types[verb, default: [:]][object, default: 0] += n
        }
    }

    /// The most common verbs (by records) with their most common objects; what is left out
    /// is summed under "(rest)".
    static let topVerbs = 20, topObjects = 4

    var json: JSONOut {
        func trimmed(_ h: [Int]) -> JSONOut {
            let last = h.lastIndex { $0 != 0 } ?? -1
            return .array(h.prefix(last + 1).map { .int($0) })
        }
        let ranked = types.map { (verb: $0.key, objects: $0.value, total: $0.value.values.reduce(0, +)) }
            .sorted { ($0.total, $1.verb) > ($1.total, $0.verb) }
        var typeList: [JSONOut] = ranked.prefix(Self.topVerbs).map { v in
            let objects = v.objects.sorted { ($0.value, $1.key) > ($1.value, $0.key) }
            var list: [JSONOut] = objects.prefix(Self.topObjects).map { .array([.string($0.key), .int($0.value)]) }
            let rest = objects.dropFirst(Self.topObjects).reduce(0) { $0 + $1.value }
            if rest > 0 { list.append(.array([.string("(rest)"), .int(rest)])) }
            return .object([("verb", .string(v.verb)), ("records", .int(v.total)), ("objects", .array(list))])
        }
        let rest = ranked.dropFirst(Self.topVerbs).reduce(0) { $0 + $1.total }
        if rest > 0 { typeList.append(.object([("verb", .string("(rest)")), ("records", .int(rest)), ("objects", .array([]))])) }
        return .object([("prompt_tokens_log2", trimmed(prompt)), ("response_tokens_log2", trimmed(response)),
                        ("text_tokens_log2", trimmed(text)), ("instruction_types", .array(typeList))])
    }
}
