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
        public static let records = "records", tokens = "tokens", documents = "documents", paddingTokens = "padding_tokens"
        public static let bytes = "bytes", shards = "shards"
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
        /// The vocabulary file copied beside the shards (`tokenizer.json`) when the build's
        /// tokenizer was a tokenizer.json; nil when `name` is enough (a built-in encoding).
        public var file: String?
        public init(name: String, vocabHash: String, vocabSize: Int, eosID: Int, padID: Int, specialTokens: [(text: String, id: Int)], file: String? = nil) {
            self.name = name; self.vocabHash = vocabHash; self.vocabSize = vocabSize; self.eosID = eosID; self.padID = padID
            self.specialTokens = specialTokens; self.file = file
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
        /// Sequences (records), token ids (padding included) and file bytes: sums over the shards.
        public var records: Int
        public var tokens: Int
        /// Real documents: document starts minus the padding document of each padded sequence.
        public var documents: Int
        /// Tokens of padding (strategy `pad`; 0 otherwise). Nil in a 1.0 index, which lacks
        /// the key and whose `documents` counted the padding documents too.
        public var paddingTokens: Int?
        public var bytes: Int
        public var shards: [Shard]

        /// A split as the writer lists it: `records`, `tokens` and `bytes` are the sums over
        /// its shards.
        public init(name: String, shards: [Shard], documents: Int, paddingTokens: Int) {
            self.name = name; self.shards = shards; self.documents = documents; self.paddingTokens = paddingTokens
            records = shards.reduce(0) { $0 + $1.records }
            tokens = shards.reduce(0) { $0 + $1.tokens }
            bytes = shards.reduce(0) { $0 + $1.bytes }
        }

        init(name: String, records: Int, tokens: Int, documents: Int, paddingTokens: Int?, bytes: Int, shards: [Shard]) {
            self.name = name; self.records = records; self.tokens = tokens; self.documents = documents
            self.paddingTokens = paddingTokens; self.bytes = bytes; self.shards = shards
        }
    }

    public var formatVersion: FormatVersion
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
        formatVersion = .current
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
            (Key.formatVersion, .string(formatVersion.description)),
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
            ] + (t.file.map { [(Key.file, JSONOut.string($0))] } ?? []))),
            (Key.template, .string(template)),
            (Key.seqLen, .int(seqLen)),
            (Key.pack, .object([(Key.strategy, .string(strategy)), (Key.overflow, .string(overflow))])),
            (Key.dtype, .string(dtype)),
            (Key.splits, .object(splits.map { s in
                // A split read from a 1.0 index has no padding_tokens, and renders without it.
                let padding: [(String, JSONOut)] = s.paddingTokens.map { [(Key.paddingTokens, .int($0))] } ?? []
                return (s.name, .object([(Key.records, .int(s.records)), (Key.tokens, .int(s.tokens)), (Key.documents, .int(s.documents))]
                    + padding + [
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

    /// Reads and checks `DIR/index.json` against FORMAT.md 2 (2.5 lists the checks): every
    /// key the writer writes present with its type, counts non-negative, hashes as 16
    /// lowercase hex digits, `dtype` matching `vocab_size`, shard names plain, and each
    /// split's `records`, `tokens` and `bytes` the sums over its shards. What needs the
    /// shards (documents, padding, the shards themselves) is `DatasetVerifier`'s.
    public static func load(dir: String) throws -> DatasetIndex {
        let path = FileSystem.join(dir, DatasetDirectory.indexFile)
        guard FileSystem.fileExists(path) else {
            throw TokenmillError.io(path: path, message: "no index.json: not a Tokenmill output directory, or its build did not finish")
        }
        let bytes = try FileSystem.readFile(path)
        func bad(_ m: String) -> TokenmillError { .corrupt(path: path, message: m) }
        let root: JSONValue
        do {
            root = try bytes.withUnsafeBufferPointer { (buf) throws(JSONParser.Failure) -> JSONValue in
                var p = JSONParser(buf)
                let v = try p.parseValue()
                p.skipWhitespace()
                if !p.atEnd { throw JSONParser.Failure(offset: p.position, message: "unexpected data after the JSON value") }
                // The parser repairs bad UTF-8 and lone surrogate escapes; a reader must not.
                if p.repairs > 0 { throw JSONParser.Failure(offset: 0, message: "invalid UTF-8 or a lone surrogate escape in a string") }
                return v
            }
        } catch {
            throw bad("not valid JSON (byte \(error.offset)): \(error.message)")
        }
        if let key = firstDuplicateKey(root) { throw bad("key '\(key)' appears twice in one object") }
        return try Loader(path: path).index(root)
    }

    /// A key that occurs twice in one object (JSON readers disagree on which one wins).
    static func firstDuplicateKey(_ v: JSONValue) -> String? {
        switch v {
        case .object(let members):
            var seen = Set<[UInt8]>()
            for m in members {
                if !seen.insert(m.key).inserted { return m.keyString }
                if let d = firstDuplicateKey(m.value) { return d }
            }
        case .array(let items):
            for i in items { if let d = firstDuplicateKey(i) { return d } }
        default: break
        }
        return nil
    }

    /// The field-by-field checks of `load`, each failure naming the key (`splits.train.bytes`).
    struct Loader {
        let path: String

        func bad(_ key: String, _ m: String) -> TokenmillError { .corrupt(path: path, message: "\(key): \(m)") }

        func member(_ v: JSONValue, _ k: String, _ at: String) throws -> JSONValue {
            guard case .object = v else { throw bad(at.isEmpty ? "index.json" : at, "is \(v.kindName), not an object") }
            guard let x = v[k] else { throw bad(at.isEmpty ? k : "\(at).\(k)", "missing") }
            return x
        }
        func name(_ at: String, _ k: String) -> String { at.isEmpty ? k : "\(at).\(k)" }

        func string(_ v: JSONValue, _ k: String, _ at: String) throws -> String {
            let x = try member(v, k, at)
            guard let s = x.stringValue else { throw bad(name(at, k), "is \(x.kindName), not a string") }
            return s
        }
        func object(_ v: JSONValue, _ k: String, _ at: String) throws -> [JSONMember] {
            let x = try member(v, k, at)
            guard let o = x.objectValue else { throw bad(name(at, k), "is \(x.kindName), not an object") }
            return o
        }
        /// A JSON integer in 0...Int64.max (`min` and an exclusive `below` when given).
        func count(_ x: JSONValue, _ key: String, min: Int = 0, below: Int? = nil) throws -> Int {
            guard case .number(let text) = x else { throw bad(key, "is \(x.kindName), not an integer") }
            guard text.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: "-") }) else {
                throw bad(key, "\(String(decoding: text, as: UTF8.self)) is not an integer")
            }
            guard let i = x.intValue else { throw bad(key, "\(String(decoding: text, as: UTF8.self)) is out of range") }
            guard i >= min else { throw bad(key, "\(i) is below \(min)") }
            if let b = below, i >= b { throw bad(key, "\(i) is not below \(b)") }
            return i
        }
        func count(_ v: JSONValue, _ k: String, _ at: String, min: Int = 0, below: Int? = nil) throws -> Int {
            try count(try member(v, k, at), name(at, k), min: min, below: below)
        }
        func hex16(_ v: JSONValue, _ k: String, _ at: String) throws -> String {
            let s = try string(v, k, at)
            guard s.utf8.count == 16, s.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) else {
                throw bad(name(at, k), "'\(s)' is not 16 lowercase hex digits")
            }
            return s
        }

        func index(_ root: JSONValue) throws -> DatasetIndex {
            let format = try string(root, Key.format, "")
            guard format == formatName else { throw bad(Key.format, "'\(format)', expected '\(formatName)'") }
            let versionText = try string(root, Key.formatVersion, "")
            guard let version = FormatVersion(versionText) else { throw bad(Key.formatVersion, "'\(versionText)' is not MAJOR.MINOR") }
            guard version.major == Int(ShardLayout.versionMajor) else {
                throw bad(Key.formatVersion, "'\(versionText)' unsupported; this reader reads \(ShardLayout.versionMajor).x")
            }
            let toolVersion = try string(root, Key.toolVersion, "")
            let specHash = try hex16(root, Key.specHash, "")
            let datasetName = try string(root, Key.name, "")
            let tk = try member(root, Key.tokenizer, "")
            let at = Key.tokenizer
            let tokenizerName = try string(tk, Key.name, at)
            let vocabHash = try hex16(tk, Key.vocabHash, at)
            // Ids are stored as u32 at most, so no vocabulary has more than 2^32 of them.
            let vocabSize = try count(tk, Key.vocabSize, at, min: 1, below: (1 << 32) + 1)
            let eos = try count(tk, Key.eosID, at, below: vocabSize)
            let pad = try count(tk, Key.padID, at, below: vocabSize)
            var special: [(text: String, id: Int)] = []
            for m in try object(tk, Key.specialTokens, at) {
                special.append((m.keyString, try count(m.value, "\(at).\(Key.specialTokens).\(m.keyString)", below: vocabSize)))
            }
            var vocabularyFile: String? = nil
            if tk[Key.file] != nil {
                let f = try string(tk, Key.file, at)
                guard DatasetDirectory.tokenizerFiles.contains(f) else { throw bad("\(at).\(Key.file)", "'\(f)' is not one of \(DatasetDirectory.tokenizerFiles.joined(separator: ", "))") }
                vocabularyFile = f
            }
            let template = try string(root, Key.template, "")
            let seqLen = try count(root, Key.seqLen, "", min: 1)
            let pack = try member(root, Key.pack, "")
            let strategy = try string(pack, Key.strategy, Key.pack), overflow = try string(pack, Key.overflow, Key.pack)
            let dtype = try string(root, Key.dtype, "")
            let want = DatasetDirectory.dtype(tokenWidth: DatasetDirectory.tokenWidth(vocabSize: vocabSize))
            guard dtype == want else { throw bad(Key.dtype, "'\(dtype)', but vocab_size \(vocabSize) needs '\(want)'") }
            var splits: [Split] = []
            for m in try object(root, Key.splits, "") {
                let at = "\(Key.splits).\(m.keyString)"
                var shards: [Shard] = []
                let list = try member(m.value, Key.shards, at)
                guard let items = list.arrayValue else { throw bad("\(at).\(Key.shards)", "is \(list.kindName), not an array") }
                for (k, s) in items.enumerated() {
                    let sat = "\(at).\(Key.shards)[\(k)]"
                    let file = try string(s, Key.file, sat)
                    guard DatasetDirectory.isShardFileName(file) else { throw bad("\(sat).\(Key.file)", "'\(file)' is not a plain .tkm file name") }
                    shards.append(Shard(file: file, records: try count(s, Key.records, sat), tokens: try count(s, Key.tokens, sat),
                                        bytes: try count(s, Key.bytes, sat), checksum: try hex16(s, Key.checksum, sat)))
                }
                let split = Split(name: m.keyString, records: try count(m.value, Key.records, at), tokens: try count(m.value, Key.tokens, at),
                                  documents: try count(m.value, Key.documents, at),
                                  paddingTokens: version.minor >= 1 ? try count(m.value, Key.paddingTokens, at) : nil,
                                  bytes: try count(m.value, Key.bytes, at), shards: shards)
                for (key, value, sum) in [(Key.records, split.records, shards.reduce(0) { $0 + $1.records }),
                                          (Key.tokens, split.tokens, shards.reduce(0) { $0 + $1.tokens }),
                                          (Key.bytes, split.bytes, shards.reduce(0) { $0 + $1.bytes })] where value != sum {
                    throw bad("\(at).\(key)", "\(value), but its shards sum to \(sum)")
                }
                splits.append(split)
            }
            guard splits.contains(where: { $0.name == "train" }) else { throw bad(Key.splits, "no 'train' split") }
            let sources = try object(root, Key.sources, "")
            var index = DatasetIndex(toolVersion: toolVersion, specHash: specHash, name: datasetName,
                                     tokenizer: Tokenizer(name: tokenizerName, vocabHash: vocabHash, vocabSize: vocabSize, eosID: eos, padID: pad,
                                                          specialTokens: special, file: vocabularyFile),
                                     template: template, seqLen: seqLen, strategy: strategy, overflow: overflow, splits: splits,
                                     sources: sources.map { ($0.keyString, JSONOut($0.value)) })
            index.formatVersion = version
            index.path = path
            index.raw = root
            return index
        }
    }

    public func split(_ name: String) throws -> Split {
        guard let s = splits.first(where: { $0.name == name }) else {
            throw TokenmillError.usage("no split '\(name)'; this dataset has: \(splits.map(\.name).joined(separator: ", "))")
        }
        return s
    }
}

/// `format_version`: `"MAJOR.MINOR"`, each one or more ASCII digits.
public struct FormatVersion: Equatable, Sendable, CustomStringConvertible {
    public var major: Int
    /// `Int.max` stands for a minor too large for an Int: still a 1.x, just a later one.
    public var minor: Int
    public init(major: Int, minor: Int) { self.major = major; self.minor = minor }
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }) else { return nil }
        major = Int(parts[0]) ?? Int.max
        minor = Int(parts[1]) ?? Int.max
    }
    /// What this code writes (and the newest minor it implements).
    public static let current = FormatVersion(major: Int(ShardLayout.versionMajor), minor: Int(ShardLayout.versionMinor))
    public var description: String { "\(major).\(minor)" }
}

/// `tokenmill verify` (FORMAT.md 2.5): `index.json` checks out (`DatasetIndex.load`); every
/// shard listed exists, every header, chunk, footer and trailer checks out, and its token
/// width, counts, size and whole-file checksum are the index's; under strategy `pad` every
/// record is padded by the rule; each split's `documents` and `padding_tokens` are what its
/// shards hold.
public enum DatasetVerifier {
    public struct Report {
        public var shards = 0, records = 0, tokens = 0, documents = 0, paddingTokens = 0, bytes = 0
    }

    /// Checks a dataset directory; each shard's chunks on `threads` workers.
    public static func verify(dir: String, threads: Int = activeProcessorCount) throws -> Report {
        let index = try DatasetIndex.load(dir: dir)
        var report = Report()
        if let f = index.tokenizer.file {
            // The vocabulary copied beside the shards is the one they were built with.
            let path = FileSystem.join(dir, f)
            guard FileSystem.fileExists(path) else { throw TokenmillError.corrupt(path: path, message: "named by index.json's tokenizer.file but missing") }
            guard XXH3.hex(XXH3.hash64(try FileSystem.readFile(path))) == index.tokenizer.vocabHash else {
                throw TokenmillError.corrupt(path: path, message: "its xxh3-64 differs from index.json's tokenizer.vocab_hash")
            }
        }
        let width = DatasetDirectory.tokenWidth(vocabSize: index.tokenizer.vocabSize)
        let pad = index.strategy == "pad" ? (seqLen: index.seqLen, padID: UInt32(index.tokenizer.padID)) : nil
        for split in index.splits {
            var contents = ShardReader.Contents()
            for s in split.shards {
                let path = FileSystem.join(dir, s.file)
                guard FileSystem.fileExists(path) else { throw TokenmillError.corrupt(path: path, message: "listed in index.json but missing") }
                // Structure first (header, trailer, footer, then every chunk), so damage is
                // reported with the chunk it hit; the whole-file checksum last.
                let reader = try ShardReader(path: path, vocabSize: index.tokenizer.vocabSize)
                let c = try reader.verifyAll(pad: pad, threads: threads)
                guard reader.tokenWidth == width else { throw TokenmillError.corrupt(path: path, message: "token width \(reader.tokenWidth) differs from index.json's dtype \(index.dtype)") }
                guard reader.recordCount == s.records else { throw TokenmillError.corrupt(path: path, message: "\(reader.recordCount) records, index.json says \(s.records)") }
                guard reader.tokenCount == s.tokens else { throw TokenmillError.corrupt(path: path, message: "\(reader.tokenCount) tokens, index.json says \(s.tokens)") }
                guard reader.fileSize == s.bytes else { throw TokenmillError.corrupt(path: path, message: "size \(reader.fileSize) differs from index.json's \(s.bytes)") }
                guard XXH3.hex(reader.fileChecksum) == s.checksum else { throw TokenmillError.corrupt(path: path, message: "file checksum differs from index.json") }
                contents.documentStarts += c.documentStarts; contents.paddedRecords += c.paddedRecords; contents.paddingTokens += c.paddingTokens
                report.shards += 1; report.bytes += s.bytes
            }
            // A 1.0 index counted the padding documents too, and has no padding_tokens.
            let documents = contents.documentStarts - (split.paddingTokens == nil ? 0 : contents.paddedRecords)
            let at = "\(DatasetIndex.Key.splits).\(split.name)"
            guard split.documents == documents else {
                throw TokenmillError.corrupt(path: index.path, message: "\(at).\(DatasetIndex.Key.documents): \(split.documents), but its shards hold \(documents) documents (\(contents.documentStarts) document starts, \(contents.paddedRecords) of them padding)")
            }
            if let p = split.paddingTokens, p != contents.paddingTokens {
                throw TokenmillError.corrupt(path: index.path, message: "\(at).\(DatasetIndex.Key.paddingTokens): \(p), but its shards hold \(contents.paddingTokens) padding tokens")
            }
            report.records += split.records; report.tokens += split.tokens
            report.documents += contents.documentStarts - contents.paddedRecords; report.paddingTokens += contents.paddingTokens
        }
        return report
    }
}
