import TokenmillCore

/// `index.json` read back (FORMAT.md 2): what `verify`, `inspect` and readers need.
public struct DatasetIndex {
    public struct Shard { public var file: String; public var records: Int; public var tokens: Int; public var bytes: Int; public var checksum: String }
    public struct Split { public var name: String; public var records: Int; public var tokens: Int; public var shards: [Shard] }

    public var path: String
    public var name: String
    public var formatVersion: String
    public var tokenizerName: String
    public var vocabSize: Int
    public var eosID: Int
    public var specialTokens: [(String, Int)]
    public var template: String
    public var seqLen: Int
    public var strategy: String
    public var dtype: String
    public var splits: [Split]
    public var raw: JSONValue

    public static func load(dir: String) throws -> DatasetIndex {
        let path = FileSystem.join(dir, "index.json")
        guard FileSystem.fileExists(path) else {
            throw TokenmillError.io(path: path, message: "no index.json: not a Tokenmill output directory, or its build did not finish")
        }
        let bytes = try FileSystem.readFile(path)
        let root: JSONValue
        do { root = try JSONParser.parse(bytes) } catch {
            throw TokenmillError.corrupt(path: path, message: "invalid JSON at byte \(error.offset): \(error.message)")
        }
        func bad(_ m: String) -> TokenmillError { .corrupt(path: path, message: m) }
        func str(_ v: JSONValue?, _ k: String) throws -> String { guard let s = v?[k]?.stringValue else { throw bad("missing string '\(k)'") }; return s }
        func int(_ v: JSONValue?, _ k: String) throws -> Int { guard let i = v?[k]?.intValue, i >= 0 else { throw bad("missing count '\(k)'") }; return i }
        guard try str(root, "format") == "tokenmill-shards" else { throw bad("not a tokenmill index") }
        let version = try str(root, "format_version")
        guard version.hasPrefix("1.") else { throw bad("format version \(version); this tool reads 1.x") }
        let tk = root["tokenizer"]
        var special: [(String, Int)] = []
        for m in tk?["special_tokens"]?.objectValue ?? [] {
            guard let id = m.value.intValue else { throw bad("special token ids must be integers") }
            special.append((m.keyString, id))
        }
        var splits: [Split] = []
        for m in root["splits"]?.objectValue ?? [] {
            var shards: [Shard] = []
            for s in m.value["shards"]?.arrayValue ?? [] {
                let file = try str(s, "file")
                guard !file.contains("/"), file.hasSuffix(".tkm") else { throw bad("shard name '\(file)' is not a plain .tkm file name") }
                shards.append(Shard(file: file, records: try int(s, "records"), tokens: try int(s, "tokens"), bytes: try int(s, "bytes"), checksum: try str(s, "checksum")))
            }
            splits.append(Split(name: m.keyString, records: try int(m.value, "records"), tokens: try int(m.value, "tokens"), shards: shards))
        }
        return DatasetIndex(path: path, name: try str(root, "name"), formatVersion: version, tokenizerName: try str(tk, "name"),
                            vocabSize: try int(tk, "vocab_size"), eosID: try int(tk, "eos_id"), specialTokens: special,
                            template: try str(root, "template"), seqLen: try int(root, "seq_len"),
                            strategy: try str(root["pack"], "strategy"), dtype: try str(root, "dtype"), splits: splits, raw: root)
    }

    public func split(_ name: String) throws -> Split {
        guard let s = splits.first(where: { $0.name == name }) else {
            throw TokenmillError.usage("no split '\(name)'; this dataset has: \(splits.map(\.name).joined(separator: ", "))")
        }
        return s
    }
}

/// `tokenmill verify`: every shard listed exists, has the size and whole-file checksum the
/// index gives, and every header, chunk, footer and trailer checks out; totals agree.
public enum DatasetVerifier {
    public struct Report { public var shards = 0; public var records = 0; public var tokens = 0; public var documents = 0; public var bytes = 0 }

    public static func verify(dir: String) throws -> Report {
        let index = try DatasetIndex.load(dir: dir)
        var report = Report()
        let width = index.dtype == "uint16" ? 2 : 4
        for split in index.splits {
            var records = 0, tokens = 0
            for s in split.shards {
                let path = FileSystem.join(dir, s.file)
                guard FileSystem.fileExists(path) else { throw TokenmillError.corrupt(path: path, message: "listed in index.json but missing") }
                // Structure first (header, trailer, footer, then every chunk), so damage is
                // reported with the chunk it hit; the whole-file checksum last.
                let reader = try ShardReader(path: path, vocabSize: index.vocabSize)
                report.documents += try reader.verifyAll()
                guard reader.tokenWidth == width else { throw TokenmillError.corrupt(path: path, message: "token width \(reader.tokenWidth) differs from index dtype \(index.dtype)") }
                guard reader.recordCount == s.records, reader.tokenCount == s.tokens else {
                    throw TokenmillError.corrupt(path: path, message: "record/token counts differ from index.json")
                }
                guard reader.fileSize == s.bytes else { throw TokenmillError.corrupt(path: path, message: "size \(reader.fileSize) differs from index.json's \(s.bytes)") }
                guard XXH3.hex(reader.fileChecksum) == s.checksum else { throw TokenmillError.corrupt(path: path, message: "file checksum differs from index.json") }
                records += s.records; tokens += s.tokens
                report.shards += 1; report.bytes += s.bytes
            }
            guard records == split.records, tokens == split.tokens else {
                throw TokenmillError.corrupt(path: index.path, message: "split \(split.name): totals differ from its shards")
            }
            report.records += records; report.tokens += tokens
        }
        return report
    }
}
