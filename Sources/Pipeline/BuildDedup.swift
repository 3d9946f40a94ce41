import Dedup
import TokenmillCore

/// report.json's `near_dedup` section.
struct NearDedupReport {
    var threshold: Double
    var permutations: Int
    var ngram: Int
    var bands: Int
    var rows: Int
    var confirmedAt: Double
    var clusters: Int
    var removed: Int
    var candidatePairs: Int
    var confirmedPairs: Int
    var on: String
}

extension Build {
    /// Near dedup over the candidates (spec order): signatures in parallel, the LSH
    /// decision sequentially; writes dedup-clusters.jsonl and returns the survivors.
    func nearDedup(_ records: [Record], _ near: NearDedupSpec, threads: Int) throws -> [Record] {
        let p = near.permutations
        let hasher = MinHasher(permutations: p, seed: near.seed)
        let (signatures, empty) = try hasher.signatures(count: records.count, ngram: near.ngram, threads: threads) {
            near.on.text(of: records[$0])
        }
        let result = NearDedup.run(signatures: signatures, count: records.count, permutations: p, empty: empty,
                                   threshold: near.threshold, threads: threads)
        var out: [UInt8] = []
        func ref(_ i: Int) -> [(String, JSONOut)] {
            [("source", .string(spec.sources[Int(records[i].source)].name)), ("line", .int(records[i].line))]
        }
        for c in result.clusters {
            let removed: [JSONOut] = c.removed.map { e in
                .object(ref(e.removed) + [("similarity", .double(e.similarity)), ("matched", .object(ref(e.matched)))])
            }
            out.append(contentsOf: JSONOut.object([("kept", .object(ref(c.kept))), ("removed", .array(removed))]).renderCompact().utf8)
            out.append(0x0A)
            for e in c.removed { stats[Int(records[e.removed].source)].nearDup += 1 }
        }
        try FileSystem.writeAtomically(FileSystem.join(outDir, "dedup-clusters.jsonl"), out)
        nearReport = NearDedupReport(threshold: near.threshold, permutations: p, ngram: near.ngram, bands: result.parameters.bands,
                                     rows: result.parameters.rows, confirmedAt: result.confirmedAt, clusters: result.clusters.count,
                                     removed: result.removed.filter { $0 }.count, candidatePairs: result.candidatePairs,
                                     confirmedPairs: result.confirmedPairs, on: near.on.rawValue)
        return zip(records, result.removed).filter { !$0.1 }.map(\.0)
    }

    /// Drops records sharing a shingle with the eval prompts; writes decontaminated.jsonl.
    func decontaminate(_ records: [Record], _ d: DecontaminateSpec, threads: Int) throws -> [Record] {
        var dec = Decontaminator(ngram: d.ngram)
        for (fi, path) in d.against.enumerated() {
            for (line, text) in try evalTexts(path, field: d.field) {
                dec.add(text, from: .init(file: fi, line: line))
            }
        }
        let hits: [Decontaminator.Hit?] = try parallelBatches(count: records.count, threads: threads, batchSize: 512) { range in
            var sh = Shingler(ngram: d.ngram)
            return range.map { dec.firstHit(DedupField.all.text(of: records[$0]), &sh) }
        }.flatMap { $0 }
        var out: [UInt8] = []
        var kept: [Record] = []
        for (r, hit) in zip(records, hits) {
            guard let hit else { kept.append(r); continue }
            stats[Int(r.source)].decontaminated += 1
            let line = JSONOut.object([("source", .string(spec.sources[Int(r.source)].name)), ("line", .int(r.line)),
                                       ("against", .string(FileSystem.basename(of: d.against[hit.eval.file]))),
                                       ("eval_line", .int(hit.eval.line)), ("ngram", .string(hit.shingle))])
            out.append(contentsOf: line.renderCompact().utf8); out.append(0x0A)
        }
        try FileSystem.writeAtomically(FileSystem.join(outDir, "decontaminated.jsonl"), out)
        return kept
    }

    /// The `field` of each record of an eval file (JSONL, or a JSON array), with its line.
    func evalTexts(_ path: String, field: String) throws -> [(Int, [UInt8])] {
        let bytes = try FileSystem.readFile(path)
        var out: [(Int, [UInt8])] = []
        // A dotted path; a numeric part indexes an array; a final array of strings (MT-Bench's
        // "turns") gives each of its strings.
        func take(_ v: JSONValue, _ line: Int) throws {
            var cur: JSONValue? = v
            for part in field.split(separator: ".") {
                if let k = Int(part), case .array(let items)? = cur { cur = k < items.count ? items[k] : nil } else { cur = cur?[String(part)] }
            }
            switch cur {
            case .string(let b)?: out.append((line, b))
            case .array(let items)? where !items.isEmpty && items.allSatisfy({ $0.stringValue != nil }):
                for case .string(let b) in items { out.append((line, b)) }
            default:
                throw TokenmillError.badInput(path: path, line: line, message: "eval record has no string (or list of strings) at '\(field)' (set decontaminate.field)")
            }
        }
        let first = bytes.first { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }
        if first == UInt8(ascii: "[") {
            let root: JSONValue
            do { root = try JSONParser.parse(bytes) } catch {
                throw TokenmillError.badInput(path: path, line: 0, message: "invalid JSON at byte \(error.offset): \(error.message)")
            }
            for (k, v) in (root.arrayValue ?? []).enumerated() { try take(v, k + 1) }
        } else {
            var line = 0, start = 0
            for i in 0...bytes.count where i == bytes.count || bytes[i] == 0x0A {
                line += 1
                let slice = Array(bytes[start..<i])
                start = i + 1
                if slice.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) { continue }
                let v: JSONValue
                do { v = try JSONParser.parse(slice) } catch {
                    throw TokenmillError.badInput(path: path, line: line, message: "invalid JSON: \(error.message)")
                }
                try take(v, line)
            }
        }
        return out
    }
}
