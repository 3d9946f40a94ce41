import Dedup
import TokenmillCore

/// Decontamination (drop reason `decontaminated`): a record sharing an `ngram`-shingle with
/// any eval prompt is dropped. The eval set is loaded by every task that scans (it is
/// small); the check is block-local, in the scan stage, and its hit is kept so that
/// decontaminated.jsonl can say which eval line and shingle matched. Records removed
/// earlier (filtered, exact or near duplicates) are counted there, not here.
struct DecontaminateStep {
    let spec: DecontaminateSpec
    let decontaminator: Decontaminator
    var ngram: Int { spec.ngram }

    /// `normalize`: the build's normalizer, applied to the eval texts as to the records
    /// (else a decomposed é or a control character in one of them hides a match).
    init(_ spec: DecontaminateSpec, normalize: ((([UInt8]) -> [UInt8]))? = nil) throws {
        self.spec = spec
        var dec = Decontaminator(ngram: spec.ngram)
        for (fi, path) in spec.against.enumerated() {
            for (line, text) in try Self.evalTexts(path, field: spec.field) {
                dec.add(normalize.map { $0(text) } ?? text, from: .init(file: fi, line: line))
            }
        }
        decontaminator = dec
    }

    func check(_ r: Record, _ sh: inout Shingler) -> Decontaminator.Hit? {
        decontaminator.firstHit(DedupField.all.text(of: r), &sh)
    }

    /// The `field` of each record of an eval file (JSONL, or a JSON array), with its line.
    static func evalTexts(_ path: String, field: String) throws -> [(Int, [UInt8])] {
        let bytes = try FileSystem.readFile(path)
        var out: [(Int, [UInt8])] = []
        // A dotted path; a numeric part indexes an array; a final array of strings (MT-Bench's
        // "turns") gives each of its strings.
        func take(_ v: JSONValue, _ line: Int) throws {
            var cur: JSONValue? = v
            for part in field.split(separator: ".") {
                if let k = Int(part), case .array(let items)? = cur { cur = k >= 0 && k < items.count ? items[k] : nil } else { cur = cur?[String(part)] }
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
