import Dedup
import Ingest
import Normalize
import Packing
import BPE
import TokenmillCore

/// A validated build spec (DESIGN.md "The build spec").
///
/// Parsing is strict: an unknown key, a wrong type or a missing file is a
/// `TokenmillError.spec` (exit 2) naming the key and what was expected. Keys of the
/// DESIGN.md spec that this version does not implement yet are refused the same way, never
/// silently ignored.
/// `dedup.near`: MinHash + LSH near-duplicate removal (docs/DEDUP.md).
public struct NearDedupSpec: Sendable {
    public var threshold = 0.8
    public var ngram = 5
    public var permutations = 128
    public var on = DedupField.prompt
    public var seed: UInt64 = 1
}

/// `decontaminate`: drop records sharing an `ngram`-shingle with the eval prompts.
public struct DecontaminateSpec: Sendable {
    public var against: [String]
    public var field: String
    public var ngram: Int
}

/// `sample`: `records` records, or records up to a `tokens` budget, chosen by their
/// draws for `seed` among the records that survive filters, dedup, decontamination and
/// `take`.
public struct SampleSpec: Sendable {
    public var records: Int?
    public var tokens: Int?
    public var seed: UInt64
}

/// `mix`: target shares of the output per source, by `records` or `tokens`, as Megatron's
/// blend weights and MosaicML's stream `proportion` give them: a source short of its share
/// repeats (whole passes, then a seeded partial pass), a source with more is subsampled.
/// `total` is the output's size (default: what the mixed sources hold after dedup, so the
/// mix reshapes without growing). docs/PIPELINE.md, "Shape".
public struct MixSpec: Sendable {
    public enum Unit: String, Sendable { case records, tokens }
    public var by: Unit
    public var total: Int?
    /// Per source (in spec order), its share (normalized to sum to 1).
    public var shares: [Double]
    public var seed: UInt64
}

public struct BuildSpec {
    public struct Source {
        public var name: String
        public var pattern: String
        public var files: [String]
        public var format: SourceConfig.Format?
        public var mapping: FieldMapping
        public var skipBadRows: Bool
        public var invalidUTF8: SourceConfig.InvalidUTF8
        public var csvQuotes: SourceConfig.CSVQuotes = .strict
        public var weight: Double
        public var take: Int?
    }

    public var path: String
    public var specHash: UInt64
    public var name: String
    public var sources: [Source]
    public var normalizer: Normalizer
    public var normalize: Bool
    public var filter: RecordFilter
    /// Exact dedup on the normalized text of `on` (nil: off).
    public var exactDedup: DedupField?
    public var nearDedup: NearDedupSpec?
    public var decontaminate: DecontaminateSpec?
    public var validationFraction: Double
    public var splitSeed: UInt64
    public var tokenizer: String
    /// The EOS token's text when the spec names it (`"tokenizer": {"path", "eos"}`).
    public var tokenizerEOS: String? = nil
    /// The BOS token's text when the spec names it (`"tokenizer": {"path", "bos"}`).
    public var tokenizerBOS: String? = nil
    /// A global sample (docs/PIPELINE.md, "Shape"); nil: every record.
    public var sample: SampleSpec? = nil
    /// Target proportions per source; nil: every kept record once (times its weight).
    public var mix: MixSpec? = nil
    public var template: ChatTemplate
    public var seqLen: Int
    public var strategy: PackStrategy
    public var overflow: Overflow
    public var outputDir: String
    public var shardTokens: Int
    public var zstdLevel: Int32
    public var shuffleSeed: UInt64?

    public static func load(_ path: String) throws -> BuildSpec {
        guard FileSystem.fileExists(path) else { throw TokenmillError.spec(path: path, key: "-", message: "spec file not found") }
        let bytes = try FileSystem.readFile(path)
        let root: JSONValue
        do { root = try JSONParser.parse(bytes) } catch {
            let line = bytes.withUnsafeBufferPointer { lineNumber(of: error.offset, in: $0) }
            throw TokenmillError.spec(path: "\(path):\(line)", key: "-", message: "invalid JSON: \(error.message)")
        }
        var p = SpecParser(path: path)
        return try p.parse(root, hash: XXH3.hash64(bytes))
    }
}

struct SpecParser {
    let path: String
    var specDir: String { FileSystem.dirname(of: path) }

    func err(_ key: String, _ m: String) -> TokenmillError { .spec(path: path, key: key, message: m) }

    func object(_ v: JSONValue?, _ key: String, allowed: [String], notYet: [String: String] = [:]) throws -> [JSONMember] {
        guard let v else { return [] }
        guard let m = v.objectValue else { throw err(key, "expected an object, found \(v.kindName)") }
        for member in m {
            let k = member.keyString
            if let issue = notYet[k] { throw err(key.isEmpty ? k : "\(key).\(k)", "not supported yet (\(issue))") }
            if !allowed.contains(k) {
                throw err(key.isEmpty ? k : "\(key).\(k)", "unknown key; expected one of: \(allowed.joined(separator: ", "))")
            }
        }
        return m
    }

    func value(_ m: [JSONMember], _ k: String) -> JSONValue? { m.first { $0.keyString == k }?.value }

    func string(_ m: [JSONMember], _ k: String, _ key: String) throws -> String? {
        guard let v = value(m, k) else { return nil }
        guard let s = v.stringValue else { throw err(key, "expected a string, found \(v.kindName)") }
        return s
    }

    func bool(_ m: [JSONMember], _ k: String, _ key: String, default d: Bool) throws -> Bool {
        guard let v = value(m, k) else { return d }
        guard let b = v.boolValue else { throw err(key, "expected true or false, found \(v.kindName)") }
        return b
    }

    func int(_ m: [JSONMember], _ k: String, _ key: String, min lo: Int) throws -> Int? {
        guard let v = value(m, k) else { return nil }
        guard let i = v.intValue, i >= lo else { throw err(key, "expected an integer >= \(lo)") }
        return i
    }

    func double(_ m: [JSONMember], _ k: String, _ key: String, range: ClosedRange<Double>) throws -> Double? {
        guard let v = value(m, k) else { return nil }
        guard let d = v.doubleValue, range.contains(d) else { throw err(key, "expected a number in \(range.lowerBound)...\(range.upperBound)") }
        return d
    }

    mutating func parse(_ root: JSONValue, hash: UInt64) throws -> BuildSpec {
        let top = try object(root, "", allowed: ["name", "comment", "sources", "normalize", "filter", "dedup", "decontaminate", "sample", "mix", "split", "invalid_utf8", "tokenizer", "template", "pack", "output", "on_error"],
                             notYet: [:])
        if root.objectValue == nil { throw err("-", "the spec must be a JSON object") }
        let name = try string(top, "name", "name") ?? FileSystem.basename(of: path)
        let topSkip = try onError(top, "on_error") ?? false
        func utf8Policy(_ m: [JSONMember], _ key: String) throws -> SourceConfig.InvalidUTF8? {
            guard let v = try string(m, "invalid_utf8", key) else { return nil }
            guard let p = SourceConfig.InvalidUTF8(rawValue: v) else { throw err(key, "expected \"repair\" or \"reject\", found \"\(v)\"") }
            return p
        }
        let topUTF8 = try utf8Policy(top, "invalid_utf8") ?? .repair

        // sources
        guard let srcValue = value(top, "sources") else { throw err("sources", "missing: give at least one source") }
        guard let srcList = srcValue.arrayValue, !srcList.isEmpty else { throw err("sources", "expected a non-empty array of sources") }
        var sources: [BuildSpec.Source] = []
        for (i, s) in srcList.enumerated() {
            let key = "sources[\(i)]"
            let m = try object(s, key, allowed: ["name", "path", "format", "map", "weight", "take", "on_error", "invalid_utf8", "csv_quotes", "split", "comment"])
            if s.objectValue == nil { throw err(key, "expected an object") }
            guard let pattern = try string(m, "path", "\(key).path") else { throw err("\(key).path", "missing") }
            let sname = try string(m, "name", "\(key).name") ?? "source\(i)"
            if sources.contains(where: { $0.name == sname }) { throw err("\(key).name", "duplicate source name '\(sname)'") }
            var format: SourceConfig.Format? = nil
            if let f = try string(m, "format", "\(key).format") {
                guard let ff = SourceConfig.Format(rawValue: f) else {
                    throw err("\(key).format", "'\(f)' is not supported yet; expected one of \(SourceConfig.Format.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                format = ff
            }
            let resolved = FileSystem.join(specDir, pattern)
            let split = try string(m, "split", "\(key).split")
            var files: [String]
            if FileSystem.isDirectory(resolved) {
                // A Hugging Face dataset folder: the files of one split.
                do { files = try DatasetFolder.files(in: resolved, split: split) } catch let e as TokenmillError {
                    throw err("\(key).path", e.description)
                }
            } else {
                if split != nil { throw err("\(key).split", "a split selects files of a dataset folder; '\(pattern)' is not a folder") }
                files = try FileSystem.glob(resolved)
            }
            if files.isEmpty || !files.allSatisfy(FileSystem.fileExists) {
                throw err("\(key).path", "no file matches '\(resolved)' (paths are relative to the spec's folder)")
            }
            if format == nil {
                for f in files where SourceConfig.inferFormat(f) == nil {
                    throw err("\(key).path", "cannot infer the format of '\(f)' (known: .jsonl, .json, .csv, .parquet, .txt, each optionally .gz/.zst); give \"format\"")
                }
            }
            let mapping = try parseMap(value(m, "map"), "\(key).map")
            let weight = try double(m, "weight", "\(key).weight", range: 0...1000) ?? 1
            let take = try int(m, "take", "\(key).take", min: 0)
            let skip = try onError(m, "\(key).on_error") ?? topSkip
            let utf8 = try utf8Policy(m, "\(key).invalid_utf8") ?? topUTF8
            var quotes = SourceConfig.CSVQuotes.strict
            if let q = try string(m, "csv_quotes", "\(key).csv_quotes") {
                guard let v = SourceConfig.CSVQuotes(rawValue: q) else { throw err("\(key).csv_quotes", "expected \"strict\" or \"lenient\", found \"\(q)\"") }
                quotes = v
            }
            sources.append(.init(name: sname, pattern: pattern, files: files, format: format, mapping: mapping, skipBadRows: skip,
                                 invalidUTF8: utf8, csvQuotes: quotes, weight: weight, take: take))
        }

        // normalize
        var normalizer = Normalizer()
        var normalize = true
        if let nv = value(top, "normalize") {
            if case .bool(let b) = nv { normalize = b } else {
                let m = try object(nv, "normalize", allowed: ["unicode", "newlines", "strip_control", "trim"])
                if let u = try string(m, "unicode", "normalize.unicode") {
                    guard u == "NFC" || u == "none" else { throw err("normalize.unicode", "'\(u)' is not supported; expected NFC or none") }
                    normalizer.nfc = u == "NFC"
                }
                normalizer.newlines = try bool(m, "newlines", "normalize.newlines", default: true)
                normalizer.stripControl = try bool(m, "strip_control", "normalize.strip_control", default: true)
                normalizer.trim = try bool(m, "trim", "normalize.trim", default: true)
            }
        }

        // filter
        var filter = RecordFilter()
        if let fv = value(top, "filter") {
            let m = try object(fv, "filter", allowed: ["min_chars", "max_chars", "min_words", "max_non_text_ratio", "drop_empty_response", "allow_empty_turns"])
            filter.minChars = try int(m, "min_chars", "filter.min_chars", min: 0) ?? 1
            filter.maxChars = try int(m, "max_chars", "filter.max_chars", min: 1) ?? Int.max
            filter.dropEmptyResponse = try bool(m, "drop_empty_response", "filter.drop_empty_response", default: true)
            filter.allowEmptyTurns = try bool(m, "allow_empty_turns", "filter.allow_empty_turns", default: false)
            filter.minWords = try int(m, "min_words", "filter.min_words", min: 0) ?? 0
            filter.maxNonTextRatio = try double(m, "max_non_text_ratio", "filter.max_non_text_ratio", range: 0...1) ?? 1
        }

        // dedup
        var exact: DedupField? = .all
        var near: NearDedupSpec? = nil
        func field(_ m: [JSONMember], _ key: String, default d: DedupField) throws -> DedupField {
            guard let o = try string(m, "on", key) else { return d }
            guard let f = DedupField(rawValue: o) else { throw err(key, "expected one of prompt, response, all; found \"\(o)\"") }
            return f
        }
        if let dv = value(top, "dedup") {
            if case .bool(let b) = dv { exact = b ? .all : nil } else {
                let m = try object(dv, "dedup", allowed: ["exact", "near"])
                if let ev = value(m, "exact") {
                    if case .bool(let b) = ev { exact = b ? .all : nil } else {
                        let em = try object(ev, "dedup.exact", allowed: ["on"])
                        exact = try field(em, "dedup.exact.on", default: .all)
                    }
                }
                if let nv = value(m, "near"), nv != .bool(false) {
                    var n = NearDedupSpec()
                    if nv != .bool(true) {
                        let nm = try object(nv, "dedup.near", allowed: ["threshold", "ngram", "permutations", "on", "seed"])
                        if let t = try double(nm, "threshold", "dedup.near.threshold", range: 0...1) {
                            guard t > 0 else { throw err("dedup.near.threshold", "expected a number in (0, 1]") }
                            n.threshold = t
                        }
                        n.ngram = try int(nm, "ngram", "dedup.near.ngram", min: 1) ?? n.ngram
                        if let p = try int(nm, "permutations", "dedup.near.permutations", min: 8) {
                            guard p % 8 == 0, p <= 1024 else { throw err("dedup.near.permutations", "expected a multiple of 8 from 8 to 1024 (signatures are computed 8 lanes at a time)") }
                            n.permutations = p
                        }
                        n.on = try field(nm, "dedup.near.on", default: .prompt)
                        n.seed = UInt64(try int(nm, "seed", "dedup.near.seed", min: 0) ?? 1)
                    }
                    near = n
                }
            }
        }
        var decontaminate: DecontaminateSpec? = nil
        if let dv = value(top, "decontaminate") {
            let m = try object(dv, "decontaminate", allowed: ["against", "field", "ngram"])
            guard let list = value(m, "against")?.arrayValue, !list.isEmpty else { throw err("decontaminate.against", "expected a non-empty array of eval files") }
            var files: [String] = []
            for (k, f) in list.enumerated() {
                guard let path = f.stringValue else { throw err("decontaminate.against[\(k)]", "expected a file path") }
                let resolved = FileSystem.join(specDir, path)
                guard FileSystem.fileExists(resolved) else { throw err("decontaminate.against[\(k)]", "'\(resolved)' does not exist (paths are relative to the spec's folder)") }
                files.append(resolved)
            }
            let fieldName = try string(m, "field", "decontaminate.field") ?? "instruction"
            let ngram = try int(m, "ngram", "decontaminate.ngram", min: 1) ?? 13
            decontaminate = DecontaminateSpec(against: files, field: fieldName, ngram: ngram)
        }

        // sample: a global, seeded sample of the records that survive dedup (and take)
        var sample: SampleSpec? = nil
        if let sv = value(top, "sample") {
            let m = try object(sv, "sample", allowed: ["records", "tokens", "seed"])
            let records = try int(m, "records", "sample.records", min: 0), tokens = try int(m, "tokens", "sample.tokens", min: 0)
            guard (records == nil) != (tokens == nil) else { throw err("sample", "give exactly one of \"records\" (a count) or \"tokens\" (a budget)") }
            sample = SampleSpec(records: records, tokens: tokens, seed: UInt64(try int(m, "seed", "sample.seed", min: 0) ?? 0))
        }

        // mix: target proportions per source
        var mix: MixSpec? = nil
        if let mv = value(top, "mix") {
            let m = try object(mv, "mix", allowed: ["by", "total", "proportions", "seed"])
            let byName = try string(m, "by", "mix.by") ?? "records"
            guard let by = MixSpec.Unit(rawValue: byName) else { throw err("mix.by", "expected \"records\" or \"tokens\"") }
            let total = try int(m, "total", "mix.total", min: 1)
            guard let pv = value(m, "proportions") else { throw err("mix.proportions", "missing: an object of source name to its share, e.g. {\"alpaca\": 0.5, \"aa\": 0.5}") }
            let pm = try object(pv, "mix.proportions", allowed: sources.map(\.name))
            var shares = [Double](repeating: 0, count: sources.count)
            for (i, s) in sources.enumerated() {
                guard let share = try double(pm, s.name, "mix.proportions.\(s.name)", range: 0...1e9) else {
                    throw err("mix.proportions", "source '\(s.name)' has no share: give every source one (0 drops it)")
                }
                shares[i] = share
            }
            let sum = shares.reduce(0, +)
            guard sum > 0 else { throw err("mix.proportions", "the shares sum to 0") }
            if abs(sum - 1) > 1e-12 { shares = shares.map { $0 / sum } }
            for s in sources where s.weight != 1 {
                throw err("sources.\(s.name).weight", "with \"mix\" the proportions decide repetition; drop the source's weight")
            }
            guard sample == nil else { throw err("mix", "\"mix\" and \"sample\" both choose the output's records: use one (mix.total sets the size)") }
            mix = MixSpec(by: by, total: total, shares: shares, seed: UInt64(try int(m, "seed", "mix.seed", min: 0) ?? 0))
        }

        // split
        var validation = 0.0, splitSeed: UInt64 = 0
        if let sv = value(top, "split") {
            let m = try object(sv, "split", allowed: ["validation", "seed"])
            validation = try double(m, "validation", "split.validation", range: 0...1) ?? 0
            splitSeed = UInt64(try int(m, "seed", "split.seed", min: 0) ?? 0)
        }

        // "tokenizer": a name or path, or {"path": ..., "eos": ...} to name the EOS of a
        // tokenizer.json whose folder does not (EOS is never guessed for a build).
        var tokenizer = "cl100k_base"
        var tokenizerEOS: String? = nil, tokenizerBOS: String? = nil
        if let tv = value(top, "tokenizer"), tv.objectValue != nil {
            let m = try object(tv, "tokenizer", allowed: ["path", "eos", "bos"])
            guard let p = try string(m, "path", "tokenizer.path") else { throw err("tokenizer.path", "missing: the tokenizer's name, .tiktoken file, tokenizer.json or model folder") }
            tokenizer = p
            tokenizerEOS = try string(m, "eos", "tokenizer.eos")
            tokenizerBOS = try string(m, "bos", "tokenizer.bos")
        } else if let t = try string(top, "tokenizer", "tokenizer") {
            tokenizer = t
        }
        // A file or folder (not a built-in name) is relative to the spec, like sources.
        if tokenizer.contains("/" as Character) || tokenizer.hasSuffix(".json") || tokenizer.hasSuffix(".tiktoken") || FileSystem.isDirectory(FileSystem.join(specDir, tokenizer)) {
            tokenizer = FileSystem.join(specDir, tokenizer)
            guard FileSystem.fileExists(tokenizer) else { throw err("tokenizer", "'\(tokenizer)' does not exist (paths are relative to the spec's folder)") }
        }
        var template = try parseTemplate(value(top, "template"))
        // A custom template's `"bos": true` is the tokenizer's BOS, never guessed: the spec's
        // tokenizer.bos, else the bos_token its model folder states.
        if var c = template.custom, c.bosFromTokenizer {
            guard let bos = tokenizerBOS ?? TokenizerLoader.statedBOS(tokenizer) else {
                throw err("tokenizer.bos", "template.bos is true, but nothing states the tokenizer's BOS: name it, \"tokenizer\": {\"path\": \"\(tokenizer)\", \"bos\": \"<the BOS token>\"}")
            }
            c.bos = bos
            if !c.specialTokens.contains(bos) { c.specialTokens.insert(bos, at: 0) }
            template.custom = c
        }

        // pack
        var seqLen = 2048
        var strategy = PackStrategy.bestFit
        var overflow = Overflow.split
        if let pv = value(top, "pack") {
            let m = try object(pv, "pack", allowed: ["seq_len", "strategy", "overflow"])
            seqLen = try int(m, "seq_len", "pack.seq_len", min: 1) ?? seqLen
            if let s = try string(m, "strategy", "pack.strategy") {
                guard let st = PackStrategy(rawValue: s) else { throw err("pack.strategy", "unknown strategy '\(s)'; expected one of: \(PackStrategy.allCases.map(\.rawValue).joined(separator: ", "))") }
                strategy = st
            }
            if let o = try string(m, "overflow", "pack.overflow") {
                guard let ov = Overflow(rawValue: o) else { throw err("pack.overflow", "unknown overflow '\(o)'; expected split, truncate or drop") }
                overflow = ov
            }
        }
        if seqLen > 1 << 24 { throw err("pack.seq_len", "at most \(1 << 24)") }

        // output
        var outDir = "out/" + name
        var shardTokens = 1 << 26
        var level: Int32 = 3
        var shuffle: UInt64? = nil
        if let ov = value(top, "output") {
            let m = try object(ov, "output", allowed: ["dir", "shard_tokens", "zstd_level", "shuffle_seed"])
            if let d = try string(m, "dir", "output.dir") { outDir = d }
            shardTokens = try int(m, "shard_tokens", "output.shard_tokens", min: 1) ?? shardTokens
            if let l = try int(m, "zstd_level", "output.zstd_level", min: 1) {
                guard l <= 22 else { throw err("output.zstd_level", "expected 1...22") }
                level = Int32(l)
            }
            if let s = try int(m, "shuffle_seed", "output.shuffle_seed", min: 0) { shuffle = UInt64(s) }
        }
        outDir = FileSystem.join(specDir, outDir)

        var spec = BuildSpec(path: path, specHash: hash, name: name, sources: sources, normalizer: normalizer, normalize: normalize,
                             filter: filter, exactDedup: exact, nearDedup: near, decontaminate: decontaminate, validationFraction: validation, splitSeed: splitSeed,
                             tokenizer: tokenizer, template: template, seqLen: seqLen, strategy: strategy, overflow: overflow,
                             outputDir: outDir, shardTokens: shardTokens, zstdLevel: level, shuffleSeed: shuffle)
        spec.tokenizerEOS = tokenizerEOS
        spec.tokenizerBOS = tokenizerBOS
        spec.sample = sample
        spec.mix = mix
        return spec
    }

    /// `"template"`: a built-in's name, or an object: `{"name": built-in, "loss": ...}` or a
    /// custom template (docs/TEMPLATES.md, "Custom templates").
    func parseTemplate(_ v: JSONValue?) throws -> ChatTemplate {
        let names = ChatTemplate.builtinNames.joined(separator: ", ")
        guard let v else { return ChatTemplate(kind: .chatml) }
        if let name = v.stringValue {
            guard let t = ChatTemplate.builtin(name) else { throw err("template", "unknown template '\(name)'; expected one of: \(names), or an object defining one") }
            return t
        }
        let parts = ["system", "user", "assistant"]
        let m = try object(v, "template", allowed: ["name", "loss", "bos", "eos", "default_system", "special_tokens"] + parts)
        let name = try string(m, "name", "template.name")
        let isCustom = m.contains { ["bos", "eos", "default_system", "special_tokens", "system", "user", "assistant"].contains($0.keyString) }
        var t: ChatTemplate
        if isCustom {
            if let name, ChatTemplate.builtin(name) != nil {
                throw err("template.name", "'\(name)' is a built-in template's name; a custom template needs a name of its own")
            }
            var c = CustomTemplate(name: name ?? "custom")
            if let specials = value(m, "special_tokens") {
                guard let list = specials.arrayValue?.compactMap(\.stringValue), list.count == specials.arrayValue?.count,
                      !list.contains(where: \.isEmpty), Set(list).count == list.count else {
                    throw err("template.special_tokens", "expected a list of distinct, non-empty token texts")
                }
                c.specialTokens = list
            }
            if let b = value(m, "bos"), b.boolValue == true {
                c.bosFromTokenizer = true   // resolved once the tokenizer is known
            } else if let bos = try string(m, "bos", "template.bos") {
                c.bos = bos
                if !c.specialTokens.contains(bos) { c.specialTokens.insert(bos, at: 0) }
            }
            if let e = try string(m, "eos", "template.eos") {
                guard let placement = CustomTemplate.EOSPlacement(rawValue: e) else {
                    throw err("template.eos", "expected \"assistant\" (after each assistant turn), \"end\" (once, at the end) or \"none\"")
                }
                c.eos = placement
            }
            if let d = try string(m, "default_system", "template.default_system") { c.defaultSystem = Array(d.utf8) }
            func part(_ role: String, _ side: String, loss defaultLoss: Bool) throws -> CustomTemplate.Part {
                guard let rv = value(m, role) else { return CustomTemplate.Part(loss: defaultLoss) }
                let rm = try object(rv, "template.\(role)", allowed: ["before", "after"])
                guard let pv = value(rm, side) else { return CustomTemplate.Part(loss: defaultLoss) }
                if let s = pv.stringValue { return CustomTemplate.Part(s, loss: defaultLoss) }
                let key = "template.\(role).\(side)"
                let pm = try object(pv, key, allowed: ["text", "loss"])
                guard let text = try string(pm, "text", "\(key).text") else { throw err("\(key).text", "missing: the part's text") }
                return CustomTemplate.Part(text, loss: try bool(pm, "loss", "\(key).loss", default: defaultLoss))
            }
            c.systemBefore = try part("system", "before", loss: false); c.systemAfter = try part("system", "after", loss: false)
            c.userBefore = try part("user", "before", loss: false); c.userAfter = try part("user", "after", loss: false)
            // The assistant's end marker is trained (the model must learn to stop); its
            // opening is not.
            c.assistantBefore = try part("assistant", "before", loss: false); c.assistantAfter = try part("assistant", "after", loss: true)
            t = ChatTemplate(custom: c)
        } else {
            guard let name else { throw err("template.name", "missing: a built-in template (\(names)), or define one with system/user/assistant parts") }
            guard let b = ChatTemplate.builtin(name) else { throw err("template.name", "unknown template '\(name)'; expected one of: \(names)") }
            t = b
        }
        if let scope = try string(m, "loss", "template.loss") {
            guard let s = ChatTemplate.LossScope(rawValue: scope) else {
                throw err("template.loss", "expected \"all_turns\" (every assistant turn) or \"last_turn\" (only the conversation's last)")
            }
            t.lossScope = s
        }
        return t
    }

    func onError(_ m: [JSONMember], _ key: String) throws -> Bool? {
        guard let s = try string(m, "on_error", key) else { return nil }
        switch s {
        case "fail": return false
        case "skip": return true
        default: throw err(key, "expected \"fail\" or \"skip\", found \"\(s)\"")
        }
    }

    func parseMap(_ v: JSONValue?, _ key: String) throws -> FieldMapping {
        let m = try object(v, key, allowed: ["prompt", "response", "system", "text", "messages", "role", "content", "roles", "group_by", "order_by"])
        guard v != nil else { throw err(key, "missing: say which fields hold prompt/response, messages or text") }
        /// A map value: a field name or template, or an object: `{"field" | "template":
        /// ..., "replace": {"from": "to", ...}}`, or `{"pick": [field, ...], "by": field,
        /// "require": [field, ...], "reason": name}` (prompt, response, system, text only).
        func val(_ k: String, pickable: Bool = false) throws -> FieldMapping.Value? {
            let at = "\(key).\(k)"
            guard let raw = value(m, k) else { return nil }
            func parse(_ s: String, _ where_: String) throws -> FieldMapping.Value {
                do { return try FieldMapping.Value.parse(s) } catch let e as MappingError { throw err(where_, e.message) }
            }
            if let s = raw.stringValue { return try parse(s, at) }
            guard raw.objectValue != nil else { throw err(at, "expected a field name, a template, or an object with \"field\", \"template\" or \"pick\"") }
            let o = try object(raw, at, allowed: ["field", "template", "replace", "pick", "by", "require", "reason"])
            var v: FieldMapping.Value
            if let choices = value(o, "pick") {
                guard pickable else { throw err("\(at).pick", "a pick maps prompt, response, system or text") }
                guard let list = choices.arrayValue, list.count >= 2, list.allSatisfy({ $0.stringValue != nil }) else {
                    throw err("\(at).pick", "expected a list of two or more field names or templates")
                }
                guard let by = try string(o, "by", "\(at).by") else { throw err("\(at).by", "missing: the field whose value (0, 1, ...) says which to pick") }
                var require: [[String]]? = nil
                if let r = value(o, "require") {
                    guard let names = r.arrayValue?.compactMap(\.stringValue), names.count == list.count, r.arrayValue?.count == list.count else {
                        throw err("\(at).require", "expected one field name per choice (\(list.count)): the flag that must be true to keep the pick")
                    }
                    require = names.map { $0.split(separator: ".").map(String.init) }
                }
                if try string(o, "reason", "\(at).reason") != nil && require == nil { throw err("\(at).reason", "only with 'require'") }
                let reason = try string(o, "reason", "\(at).reason") ?? "pick_required_false"
                if value(o, "field") != nil || value(o, "template") != nil { throw err(at, "give 'pick' or 'field'/'template', not both") }
                v = FieldMapping.Value(parts: [], pick: .init(choices: try list.enumerated().map { try parse($1.stringValue!, "\(at).pick[\($0)]") },
                                                              by: by.split(separator: ".").map(String.init), require: require, reason: reason))
            } else {
                for x in ["by", "require", "reason"] where value(o, x) != nil { throw err("\(at).\(x)", "only with 'pick'") }
                let f = try string(o, "field", "\(at).field"), t = try string(o, "template", "\(at).template")
                guard (f == nil) != (t == nil) else { throw err(at, "give one of 'field' or 'template'") }
                if let f {
                    v = FieldMapping.Value(parts: [.field(f.split(separator: ".", omittingEmptySubsequences: false).map(String.init))])
                } else {
                    v = try parse(t!, "\(at).template")
                }
            }
            if let r = value(o, "replace") {
                guard let members = r.objectValue else { throw err("\(at).replace", "expected an object of \"from\": \"to\" strings") }
                for member in members {
                    guard let to = member.value.stringValue, !member.keyString.isEmpty else {
                        throw err("\(at).replace.\(member.keyString)", "expected a non-empty string to replace with a string")
                    }
                    v.replacements.append(.init(from: Array(member.keyString.utf8), to: Array(to.utf8)))
                }
            }
            return v
        }
        var mapping = FieldMapping(prompt: try val("prompt", pickable: true), response: try val("response", pickable: true),
                                   system: try val("system", pickable: true), text: try val("text", pickable: true))
        func roleNames() throws -> [String: FieldMapping.Chat.Role] {
            var roles = FieldMapping.Chat.defaultRoles
            guard let rv = value(m, "roles") else { return roles }
            guard let members = rv.objectValue else { throw err("\(key).roles", "expected an object mapping role names to system, user or assistant") }
            for member in members {
                guard let target = member.value.stringValue, let role = FieldMapping.Chat.Role(rawValue: target) else {
                    throw err("\(key).roles.\(member.keyString)", "expected \"system\", \"user\" or \"assistant\"")
                }
                roles[member.keyString] = role
                roles[member.keyString.lowercased()] = role
            }
            return roles
        }
        if let by = try val("group_by") {
            if mapping.prompt != nil || mapping.response != nil || mapping.text != nil || value(m, "messages") != nil {
                throw err(key, "a row-per-turn source maps 'group_by', 'content' (and 'order_by', 'role', 'roles', 'system'), not prompt/response/text/messages")
            }
            guard let content = try val("content") else { throw err("\(key).content", "missing: which field holds a turn's text") }
            var group = TurnGroup(by: by, order: try val("order_by"), content: content)
            if mapping.system?.pick != nil { throw err("\(key).system", "a pick maps a row's prompt, response, system or text, not a row-per-turn source's system") }
            group.system = mapping.system
            group.roleField = try val("role")
            group.roles = try roleNames()
            if value(m, "roles") != nil && group.roleField == nil { throw err("\(key).roles", "needs 'role' (the field naming the speaker)") }
            return FieldMapping(group: group)
        }
        if value(m, "order_by") != nil { throw err("\(key).order_by", "only with 'group_by'") }
        if let messages = try string(m, "messages", "\(key).messages") {
            if mapping.prompt != nil || mapping.response != nil || mapping.text != nil {
                throw err(key, "a chat record maps 'messages' (with 'role', 'content', 'roles'), not prompt/response/text")
            }
            var chat = FieldMapping.Chat(messages: messages.split(separator: ".").map(String.init))
            chat.roleKey = try string(m, "role", "\(key).role") ?? "role"
            chat.contentKey = try string(m, "content", "\(key).content") ?? "content"
            chat.roles = try roleNames()
            mapping.chat = chat
            return mapping
        }
        for k in ["role", "content", "roles"] where value(m, k) != nil {
            throw err("\(key).\(k)", "only with 'messages' (a chat list) or 'group_by' (a row a turn)")
        }
        if mapping.text != nil {
            if mapping.prompt != nil || mapping.response != nil || mapping.system != nil {
                throw err(key, "a text record maps only 'text'; an instruction record maps prompt and response")
            }
        } else if mapping.prompt == nil || mapping.response == nil {
            throw err(key, "needs both 'prompt' and 'response' (or 'messages', or 'text')")
        }
        return mapping
    }
}
