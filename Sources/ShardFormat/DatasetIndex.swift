import TokenmillCore

/// `index.json` (FORMAT.md 2), both ways: the build's finish stage fills a value and
/// `write(to:)` renders it; `verify`, `inspect` and readers get one from `load(dir:)`,
/// which checks it. The key names live once, in `Key`, for both directions.
public struct DatasetIndex {
    /// Every key of `index.json`, in the order the writer puts them.
    public enum Key {
        public static let format = "format", formatVersion = "format_version", toolVersion = "tool_version"
        public static let specHash = "spec_hash", name = "name", tokenizer = "tokenizer"
        public static let vocabHash = "vocab_hash", vocabSize = "vocab_size", eosID = "eos_id", padID = "pad_id"
        public static let specialTokens = "special_tokens"
        public static let template = "template", seqLen = "seq_len", pack = "pack", strategy = "strategy", overflow = "overflow"
        public static let dtype = "dtype", splits = "splits", sources = "sources"
        public static let records = "records", tokens = "tokens", documents = "documents", bytes = "bytes", shards = "shards"
        public static let file = "file", checksum = "checksum"
    }

    /// The value of `format`.
    public static let formatName = "tokenmill-shards"

    public struct Tokenizer: Sendable {
        public var name: String
        public var vocabHash: String
        public var vocabSize: Int
        public var eosID: Int
        public var padID: Int
        /// Text → id, in ascending id order.
        public var specialTokens: [(text: String, id: Int)]
        public init(name: String, vocabHash: String, vocabSize: Int, eosID: Int, padID: Int, specialTokens: [(text: String, id: Int)]) {
            self.name = name; self.vocabHash = vocabHash; self.vocabSize = vocabSize; self.eosID = eosID; self.padID = padID
            self.specialTokens = specialTokens
        }
    }

    public struct Shard: Sendable {
        public var file: String
        public var records: Int
        public var tokens: Int
        public var bytes: Int
        /// xxh3-64 of the whole file, as `XXH3.hex` renders it.
        public var checksum: String
        public init(file: String, records: Int, tokens: Int, bytes: Int, checksum: String) {
            self.file = file; self.records = records; self.tokens = tokens; self.bytes = bytes; self.checksum = checksum
        }
    }

    public struct Split: Sendable {
        public var name: String
        public var records: Int
        public var tokens: Int
        public var documents: Int
        public var bytes: Int
        public var shards: [Shard]

        /// A split as the writer lists it: `records`, `tokens` and `bytes` are the sums over
        /// its shards.
        public init(name: String, shards: [Shard], documents: Int) {
            self.name = name; self.shards = shards; self.documents = documents
            records = shards.reduce(0) { $0 + $1.records }
            tokens = shards.reduce(0) { $0 + $1.tokens }
            bytes = shards.reduce(0) { $0 + $1.bytes }
        }

        init(name: String, records: Int, tokens: Int, documents: Int, bytes: Int, shards: [Shard]) {
            self.name = name; self.records = records; self.tokens = tokens; self.documents = documents; self.bytes = bytes
            self.shards = shards
        }
    }

    public var formatVersion: String
    public var toolVersion: String
    public var specHash: String
    public var name: String
    public var tokenizer: Tokenizer
    public var template: String
    public var seqLen: Int
    public var strategy: String
    public var overflow: String
    public var dtype: String
    public var splits: [Split]
    /// Per source, its counts table (FORMAT.md 2.4; the build's accounting owns its keys).
    public var sources: [(name: String, counts: JSONOut)]
    /// Where it was loaded from (empty for a value built to be written).
    public var path = ""
    /// The parsed file, for what is informative only (`sources` as read).
    public var raw: JSONValue = .null

    /// The index a build writes: this format version, `dtype` from the vocabulary size.
    public init(toolVersion: String, specHash: String, name: String, tokenizer: Tokenizer, template: String, seqLen: Int,
                strategy: String, overflow: String, splits: [Split], sources: [(name: String, counts: JSONOut)]) {
        formatVersion = "\(ShardLayout.versionMajor).\(ShardLayout.versionMinor)"
        self.toolVersion = toolVersion; self.specHash = specHash; self.name = name; self.tokenizer = tokenizer
        self.template = template; self.seqLen = seqLen; self.strategy = strategy; self.overflow = overflow
        dtype = DatasetDirectory.dtype(tokenWidth: DatasetDirectory.tokenWidth(vocabSize: tokenizer.vocabSize))
        self.splits = splits; self.sources = sources
    }

    // MARK: writing

    /// The file's bytes: pretty-printed JSON, keys in the order of FORMAT.md 2, a final newline.
    public func render() -> [UInt8] {
        let t = tokenizer
        let json: JSONOut = .object([
            (Key.format, .string(Self.formatName)),
            (Key.formatVersion, .string(formatVersion)),
            (Key.toolVersion, .string(toolVersion)),
            (Key.specHash, .string(specHash)),
            (Key.name, .string(name)),
            (Key.tokenizer, .object([
                (Key.name, .string(t.name)),
                (Key.vocabHash, .string(t.vocabHash)),
                (Key.vocabSize, .int(t.vocabSize)),
                (Key.eosID, .int(t.eosID)),
                (Key.padID, .int(t.padID)),
                (Key.specialTokens, .object(t.specialTokens.map { ($0.text, .int($0.id)) })),
            ])),
            (Key.template, .string(template)),
            (Key.seqLen, .int(seqLen)),
            (Key.pack, .object([(Key.strategy, .string(strategy)), (Key.overflow, .string(overflow))])),
            (Key.dtype, .string(dtype)),
            (Key.splits, .object(splits.map { s in
                (s.name, .object([
                    (Key.records, .int(s.records)), (Key.tokens, .int(s.tokens)), (Key.documents, .int(s.documents)),
                    (Key.bytes, .int(s.bytes)),
                    (Key.shards, .array(s.shards.map { f in
                        .object([(Key.file, .string(f.file)), (Key.records, .int(f.records)), (Key.tokens, .int(f.tokens)),
                                 (Key.bytes, .int(f.bytes)), (Key.checksum, .string(f.checksum))])
                    })),
                ]))
            })),
            (Key.sources, .object(sources.map { ($0.name, $0.counts) })),
        ])
        return Array((json.render() + "\n").utf8)
    }

    /// Writes `DIR/index.json` atomically (temporary name, fsync, rename).
    public func write(to dir: String) throws {
        try FileSystem.writeAtomically(FileSystem.join(dir, DatasetDirectory.indexFile), render())
    }

    // MARK: reading

    public static func load(dir: String) throws -> DatasetIndex {
        let path = FileSystem.join(dir, DatasetDirectory.indexFile)
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
        guard try str(root, Key.format) == formatName else { throw bad("not a tokenmill index") }
        let version = try str(root, Key.formatVersion)
        guard version.hasPrefix("1.") else { throw bad("format version \(version); this tool reads 1.x") }
        let tk = root[Key.tokenizer]
        var special: [(text: String, id: Int)] = []
        for m in tk?[Key.specialTokens]?.objectValue ?? [] {
            guard let id = m.value.intValue else { throw bad("special token ids must be integers") }
            special.append((m.keyString, id))
        }
        var splits: [Split] = []
        for m in root[Key.splits]?.objectValue ?? [] {
            var shards: [Shard] = []
            for s in m.value[Key.shards]?.arrayValue ?? [] {
                let file = try str(s, Key.file)
                guard !file.contains("/"), file.hasSuffix(".tkm") else { throw bad("shard name '\(file)' is not a plain .tkm file name") }
                shards.append(Shard(file: file, records: try int(s, Key.records), tokens: try int(s, Key.tokens), bytes: try int(s, Key.bytes),
                                    checksum: try str(s, Key.checksum)))
            }
            splits.append(Split(name: m.keyString, records: try int(m.value, Key.records), tokens: try int(m.value, Key.tokens),
                                documents: m.value[Key.documents]?.intValue ?? 0, bytes: m.value[Key.bytes]?.intValue ?? 0, shards: shards))
        }
        var index = DatasetIndex(
            toolVersion: root[Key.toolVersion]?.stringValue ?? "", specHash: root[Key.specHash]?.stringValue ?? "", name: try str(root, Key.name),
            tokenizer: Tokenizer(name: try str(tk, Key.name), vocabHash: tk?[Key.vocabHash]?.stringValue ?? "", vocabSize: try int(tk, Key.vocabSize),
                                 eosID: try int(tk, Key.eosID), padID: tk?[Key.padID]?.intValue ?? 0, specialTokens: special),
            template: try str(root, Key.template), seqLen: try int(root, Key.seqLen), strategy: try str(root[Key.pack], Key.strategy),
            overflow: root[Key.pack]?[Key.overflow]?.stringValue ?? "", splits: splits,
            sources: (root[Key.sources]?.objectValue ?? []).map { ($0.keyString, JSONOut($0.value)) })
        index.formatVersion = version
        index.dtype = try str(root, Key.dtype)
        index.path = path
        index.raw = root
        return index
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
                let reader = try ShardReader(path: path, vocabSize: index.tokenizer.vocabSize)
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
