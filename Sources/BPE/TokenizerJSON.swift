import TokenmillCore

/// Loads a Hugging Face `tokenizer.json` whose model is BPE over byte-level
/// pre-tokenization, or refuses it at load with the component that cannot be reproduced
/// exactly (`pre_tokenizer Split: ...`) — never a silently different tokenization.
///
/// Supported (each checked against the `tokenizers` library in the Python suite):
/// - model: `BPE` with `vocab`, `merges` (as "a b" strings or [a, b] pairs) and
///   `ignore_merges`; no dropout, no continuing-subword prefix or end-of-word suffix, no
///   byte fallback.
/// - normalizer: none, `NFC`, `NFKC`, or a `Sequence` holding at most one of those.
/// - pre_tokenizer: `ByteLevel` (with or without its GPT-2 regex, `add_prefix_space`),
///   `Split` (any regex the general engine accepts, or a literal string; any behaviour;
///   `invert`), `Digits`, and `Sequence`s of those ending in `ByteLevel`. The single
///   known patterns (GPT-2, cl100k, o200k, Llama 3, Qwen2 with `Isolated`) take the
///   hand-written scanners; everything else the general path (`PreTokenizerStep`).
/// - added_tokens: `special` ones are never produced from data; the others are matched
///   in text as `tokenizers` matches them (`normalized`, `lstrip`, `rstrip`).
/// Refused: other normalizers (NFD, NFKD, Lowercase, Replace, ...), other pre-tokenizers
/// (Whitespace, Metaspace, ...), `single_word` added tokens, regex constructs the engine
/// cannot reproduce (look-behind, backreferences, ...; see RegexSyntax.swift).
enum TokenizerJSON {
    struct Config {
        var pretokenizer: Pretokenizer
        var addPrefixSpace = false
        var normalization = Tokenizer.Normalization.none
    }

    /// The model a tokenizer.json without `model.type` holds, as its fields show: `merges`
    /// is BPE's, a list `vocab` Unigram's, `continuing_subword_prefix` or
    /// `max_input_chars_per_word` WordPiece's, a lone `unk_token` WordLevel's.
    static func inferredModelType(_ model: JSONValue) -> String {
        if model["merges"] != nil { return "BPE" }
        if model["vocab"]?.arrayValue != nil { return "Unigram" }
        if model["continuing_subword_prefix"] != nil || model["max_input_chars_per_word"] != nil { return "WordPiece" }
        if model["unk_token"] != nil { return "WordLevel" }
        return "BPE"
    }

    static func load(path: String, threads: Int) throws -> Tokenizer {
        let bytes = try FileSystem.readFile(path)
        let root: JSONValue
        do { root = try JSONParser.parse(bytes) } catch {
            throw TokenmillError.badInput(path: path, line: 0, message: "invalid JSON at byte \(error.offset): \(error.message)")
        }
        func refuse(_ m: String) -> TokenmillError { .unsupported("\(path): \(m)") }

        // model
        guard let model = root["model"], model.objectValue != nil else { throw refuse("model: missing") }
        // Older files leave out "type"; `tokenizers` then takes the first model whose fields
        // fit (its models are an untagged union), so the refusal names that one.
        let type = model["type"]?.stringValue ?? inferredModelType(model)
        guard type == "BPE" else {
            throw refuse("model \(type)\(model["type"] == nil ? " (no \"type\"; inferred from its fields)" : ""): only BPE models are supported")
        }
        if let d = model["dropout"], d != .null, d.doubleValue != 0 { throw refuse("model BPE: dropout is not deterministic") }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let v = model[key], v != .null, v.stringValue != "" { throw refuse("model BPE: \(key) is not supported") }
        }
        if model["byte_fallback"]?.boolValue == true {
            return try sentencePiece(root, model: model, path: path, bytes: bytes, refuse)
        }
        let ignoreMerges = model["ignore_merges"]?.boolValue ?? false

        // vocab: strings of the byte-level alphabet -> ids
        guard let vocab = model["vocab"]?.objectValue else { throw refuse("model.vocab: missing") }
        var special: [(String, UInt32)] = []
        var specialTexts = Set<String>()
        var added: [(entry: AddedTokens.Entry, normalized: Bool)] = []
        var specialStrips: [UInt32: Tokenizer.Strip] = [:]
        for t in root["added_tokens"]?.arrayValue ?? [] {
            guard let content = t["content"]?.stringValue, let raw = t["id"]?.intValue, raw >= 0 else { throw refuse("added_tokens: entry without content or id") }
            let id = try tokenID(raw, "added_tokens: \(JSONWriter.quoted(content))", refuse)
            if t["special"]?.boolValue == true {
                special.append((content, id))
                let strip = Tokenizer.Strip(left: t["lstrip"]?.boolValue ?? false, right: t["rstrip"]?.boolValue ?? false,
                                            singleWord: t["single_word"]?.boolValue ?? false)
                if strip.left || strip.right || strip.singleWord { specialStrips[id] = strip }
                specialTexts.insert(content)
                continue
            }
            added.append((AddedTokens.Entry(bytes: Array(content.utf8), id: id, lstrip: t["lstrip"]?.boolValue ?? false,
                                            rstrip: t["rstrip"]?.boolValue ?? false, singleWord: t["single_word"]?.boolValue ?? false),
                          t["normalized"]?.boolValue ?? true))
        }
        // Added tokens matched before the merge; OLMo-1 also lists its whitespace-run added
        // tokens in model.vocab as raw strings, outside the byte-level alphabet: those are
        // added tokens only, never merge results.
        let addedTexts = Set(added.map { String(decoding: $0.entry.bytes, as: UTF8.self) })
        var maxID = -1
        for m in vocab { maxID = max(maxID, m.value.intValue ?? -1) }
        for (_, id) in special { maxID = max(maxID, Int(id)) }
        for a in added { maxID = max(maxID, Int(a.entry.id)) }
        guard maxID >= 0, maxID < RankTable.maxPairVocabulary else { throw refuse("model.vocab: empty or too large") }
        // The vocabulary's tables: from the compiled-vocabulary cache when a file with these
        // bytes was loaded before, which skips decoding 50-200k byte-level strings and the
        // merges (their checks passed then: a refused vocabulary never leaves an image).
        let fileHash = XXH3.hash64(bytes)
        let (table, _) = try VocabularyCache.rankTable(key: VocabularyCache.key(source: fileHash, kind: "tokenizer.json"), threads: threads) {
            var tokens = [[UInt8]?](repeating: nil, count: maxID + 1)
            var idOf: [String: UInt32] = [:]
            idOf.reserveCapacity(vocab.count)
            for m in vocab {
                guard let id = m.value.intValue, id >= 0 else { throw refuse("model.vocab: id of \(JSONWriter.quoted(m.keyString)) is not a non-negative integer") }
                idOf[m.keyString] = UInt32(id)
                if specialTexts.contains(m.keyString) { continue }   // never produced by merges from data
                guard let raw = ByteLevelAlphabet.decode(m.key) else {
                    if addedTexts.contains(m.keyString) { continue }
                    throw refuse("model.vocab: token \(JSONWriter.quoted(m.keyString)) is not in the byte-level alphabet (not a byte-level BPE vocabulary)")
                }
                if tokens[id] != nil { throw refuse("model.vocab: id \(id) used twice") }
                tokens[id] = raw
            }
            var merges: [(UInt32, UInt32)] = []
            for (k, parts) in try mergeLines(model, refuse) {
                guard parts.count == 2, let a = idOf[parts[0]], let b = idOf[parts[1]] else {
                    throw refuse("model.merges[\(k)]: expected two vocabulary tokens")
                }
                merges.append((a, b))
            }
            return (try RankTable(tokens: tokens, merges: merges, wholeLookups: ignoreMerges, threads: threads), fileHash)
        }

        let normalization = try normalizer(root["normalizer"], refuse)
        let steps = try preTokenizerSteps(root["pre_tokenizer"], refuse)
        // ByteLevel once; steps after it (Falcon) run on the byte-level alphabet's text.
        guard steps.filter({ if case .byteLevel = $0 { true } else { false } }).count == 1 else {
            throw refuse("pre_tokenizer: ByteLevel must appear once (not a byte-level BPE otherwise)")
        }
        var config = fastPath(steps) ?? Config(pretokenizer: .whole)
        config.normalization = normalization
        var general: Tokenizer.GeneralPath? = nil
        if fastPath(steps) == nil || !added.isEmpty {
            // Added tokens stored as text for decoding when the vocabulary lacks their id.
            var addedText: [UInt32: [UInt8]] = [:]
            for a in added where !table.isToken(Int(a.entry.id)) { addedText[a.entry.id] = a.entry.bytes }
            let normalize: ([UInt8]) -> [UInt8] = {
                switch normalization {
                case .none: return $0
                case .nfc: return UnicodeNormalization.nfc($0)
                case .nfkc: return UnicodeNormalization.nfkc($0)
                }
            }
            general = Tokenizer.GeneralPath(
                rawAdded: AddedTokens(added.filter { !$0.normalized }.map(\.entry)),
                normalizedAdded: AddedTokens(added.filter(\.normalized).map { var e = $0.entry; e.bytes = normalize(e.bytes); return e }),
                steps: fastPath(steps) == nil ? steps : nil, addedText: addedText)
        }

        let name = tokenizerName(path)
        // EOS as the model folder states it; a guess (for encode and decode, which need none)
        // only when nothing beside the file does — a build refuses a guess.
        let (eos, guess) = try eosOrGuess(path, special: special, candidates: ["<|endoftext|>", "</s>", "<|end_of_text|>", "<eos>", "<EOT>", "<|im_end|>"], refuse)
        return Tokenizer(name: name, ranks: table, pretokenizer: config.pretokenizer, special: special, eos: eos,
                         vocabSize: maxID + 1, vocabHash: fileHash, addPrefixSpace: config.addPrefixSpace, normalization: config.normalization,
                         general: general, eosGuess: guess, specialStrips: specialStrips)
    }

    /// Whether no text can hold `pattern` after the normalizer `steps`: a step replaces it
    /// with text that does not contain it, and every later step only replaces a non-empty
    /// string with a non-empty one of characters `pattern` lacks (so it can neither make an
    /// occurrence nor join two pieces of one).
    /// Whether `bytes` holds `part` somewhere (a plain search: these are a few bytes long).
    static func holds(_ bytes: [UInt8], _ part: [UInt8]) -> Bool {
        guard !part.isEmpty, part.count <= bytes.count else { return part.isEmpty }
        for i in 0...(bytes.count - part.count) where bytes[i..<(i + part.count)].elementsEqual(part) { return true }
        return false
    }

    static func normalizerRemoves(_ pattern: [UInt8], _ steps: [SentencePieceBPE.NormalizerStep]) -> Bool {
        let patternText = String(decoding: pattern, as: UTF8.self)
        guard let k = steps.lastIndex(where: { if case .replace(let a, let b) = $0 { a == pattern && !Self.holds(b, pattern) } else { false } }) else { return false }
        for step in steps[(k + 1)...] {
            switch step {
            case .prepend(let p):
                if String(decoding: p, as: UTF8.self).unicodeScalars.contains(where: { patternText.unicodeScalars.contains($0) }) { return false }
            case .replace(let a, let b):
                if a.isEmpty || b.isEmpty { return false }
                if String(decoding: b, as: UTF8.self).unicodeScalars.contains(where: { patternText.unicodeScalars.contains($0) }) { return false }
            }
        }
        return true
    }

    /// A token id from the file: one past the largest vocabulary Tokenmill takes is
    /// refused by name (converting an id past UInt32 to one trapped: found by fuzzing).
    static func tokenID(_ id: Int, _ what: String, _ refuse: (String) -> TokenmillError) throws -> UInt32 {
        guard id >= 0, id < RankTable.maxPairVocabulary, let v = UInt32(exactly: id) else {
            throw refuse("\(what): id \(id) is past the largest vocabulary Tokenmill takes (\(RankTable.maxPairVocabulary) ids)")
        }
        return v
    }

    /// `model.merges` as lines of token strings: a `"a b"` string split at its spaces, or an
    /// array of strings (the caller checks there are two, and that they are tokens).
    static func mergeLines(_ model: JSONValue, _ refuse: (String) -> TokenmillError) throws -> [(Int, [String])] {
        if let m = model["merges"], m != .null, m.arrayValue == nil { throw refuse("model.merges: expected a list, found \(m.kindName)") }
        return (model["merges"]?.arrayValue ?? []).enumerated().map { k, m in
            // Split at the space byte, not at Characters: a space followed by a combining
            // scalar (U+200D in ChatGLM's "\u{200D} \u{200D}") is one Character.
            if let s = m.stringValue { return (k, s.utf8.split(separator: 0x20, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }) }
            return (k, m.arrayValue?.compactMap(\.stringValue) ?? [])
        }
    }

    /// The EOS the model folder states (`statedEOS`), else the first of `candidates` the
    /// tokenizer has (a special token, or what `also` finds), else its first special token,
    /// with why that is only a guess (a build refuses a guess).
    static func eosOrGuess(_ path: String, special: [(String, UInt32)], candidates: [String], _ refuse: (String) -> TokenmillError,
                           also: (String) -> UInt32? = { _ in nil }) throws -> (UInt32, String?) {
        if let stated = try statedEOS(beside: path, special: special) { return (stated, nil) }
        var found: UInt32? = nil
        for n in candidates where found == nil { found = special.first { $0.0 == n }?.1 ?? also(n) }
        guard let eos = found ?? special.first?.1 else {
            throw refuse("added_tokens: no special token to use as EOS")
        }
        return (eos, "no tokenizer_config.json, special_tokens_map.json or generation_config.json beside \(path) names its EOS")
    }

    /// A SentencePiece-style BPE file (`byte_fallback`): `Prepend("▁")` + `Replace(" ", "▁")`
    /// normalizer, no pre-tokenizer, `<0xNN>` byte tokens (`SentencePieceBPE`). Other shapes
    /// of such files (a Metaspace pre-tokenizer, normalized added tokens) are refused by name.
    static func sentencePiece(_ root: JSONValue, model: JSONValue, path: String, bytes: [UInt8],
                              _ refuse: (String) -> TokenmillError) throws -> Tokenizer {
        var steps: [SentencePieceBPE.NormalizerStep] = []
        if let n = root["normalizer"], n != .null {
            let parts = n["type"]?.stringValue == "Sequence" ? (n["normalizers"]?.arrayValue ?? []) : [n]
            for part in parts {
                switch part["type"]?.stringValue {
                case "Prepend":
                    guard let s = part["prepend"]?.stringValue else { throw refuse("normalizer Prepend: no prepend") }
                    steps.append(.prepend(Array(s.utf8)))
                case "Replace":
                    guard let a = part["pattern"]?["String"]?.stringValue, !a.isEmpty, let c = part["content"]?.stringValue else {
                        throw refuse("normalizer Replace: only String patterns are supported with byte_fallback")
                    }
                    steps.append(.replace(Array(a.utf8), Array(c.utf8)))
                default:
                    throw refuse("normalizer \(part["type"]?.stringValue ?? "?") with byte_fallback: not supported yet")
                }
            }
        }
        var metaspace: SentencePieceBPE.Metaspace? = nil
        if let p = root["pre_tokenizer"], p != .null, p["type"]?.stringValue == "Split", let pattern = p["pattern"]?["String"]?.stringValue,
           Self.normalizerRemoves(Array(pattern.utf8), steps) {
            // ChatGLM's Split on "<!dummy-prefix!>": the normalizer has already replaced every
            // occurrence, and nothing after it can make one again, so the split never cuts.
        } else if let p = root["pre_tokenizer"], p != .null {
            guard p["type"]?.stringValue == "Metaspace" else {
                throw refuse("pre_tokenizer \(p["type"]?.stringValue ?? "?") with byte_fallback: not supported yet (SentencePiece-style files with a Prepend/Replace normalizer and no pre-tokenizer, or a Metaspace pre-tokenizer and no normalizer, are)")
            }
            guard let r = p["replacement"]?.stringValue, r.unicodeScalars.count == 1 else { throw refuse("pre_tokenizer Metaspace: replacement must be one character") }
            // Files written before `prepend_scheme` existed say `add_prefix_space` (true: always).
            let schemeName = p["prepend_scheme"]?.stringValue ?? ((p["add_prefix_space"]?.boolValue ?? true) ? "always" : "never")
            guard let scheme = SentencePieceBPE.Metaspace.Scheme(rawValue: schemeName) else { throw refuse("pre_tokenizer Metaspace: prepend_scheme \(JSONWriter.quoted(schemeName)) is unknown") }
            metaspace = SentencePieceBPE.Metaspace(replacement: Array(r.utf8), scheme: scheme, split: p["split"]?.boolValue ?? true)
            if let n = root["normalizer"], n != .null {
                throw refuse("normalizer \(n["type"]?.stringValue ?? "?") with a Metaspace pre-tokenizer and byte_fallback: not supported yet")
            }
        }
        guard let vocabJSON = model["vocab"]?.objectValue else { throw refuse("model.vocab: missing") }
        var vocab: [[UInt8]: UInt32] = [:]
        vocab.reserveCapacity(vocabJSON.count)
        var maxID = -1
        for m in vocabJSON {
            guard let id = m.value.intValue, id >= 0 else { throw refuse("model.vocab: id of \(JSONWriter.quoted(m.keyString)) is not a non-negative integer") }
            vocab[Array(m.keyString.utf8)] = try tokenID(id, "model.vocab: \(JSONWriter.quoted(m.keyString))", refuse)
            maxID = max(maxID, id)
        }
        var index = ByteKeyIndex(capacity: vocab.count)
        for (t, id) in vocab { t.withUnsafeBytes { _ = index.insert($0, id) } }
        var merges: [UInt64: (rank: UInt32, id: UInt32)] = [:]
        merges.reserveCapacity(vocab.count * 2)
        for (k, parts) in try mergeLines(model, refuse) {
            // "a b" strings whose tokens hold spaces cannot be split (tokenizers refuses
            // such files too: Llama 2's).
            guard parts.count == 2, let a = index.find(parts[0]), let b = index.find(parts[1]),
                  let c = index.find(parts[0] + parts[1]) else {
                throw refuse("model.merges[\(k)]: expected two vocabulary tokens whose join is one")
            }
            let key = UInt64(a) << 32 | UInt64(b)
            if merges[key] == nil { merges[key] = (UInt32(k), c) }   // the first line of a pair wins
        }
        var unk: UInt32? = nil
        if let u = model["unk_token"]?.stringValue {
            guard let id = vocab[Array(u.utf8)] else { throw refuse("model.unk_token \(JSONWriter.quoted(u)) is not in the vocabulary") }
            unk = id
        }
        var special: [(String, UInt32)] = []
        var added: [AddedTokens.Entry] = []
        var specialStrips: [UInt32: Tokenizer.Strip] = [:]
        for t in root["added_tokens"]?.arrayValue ?? [] {
            guard let content = t["content"]?.stringValue, let raw = t["id"]?.intValue, raw >= 0 else { throw refuse("added_tokens: entry without content or id") }
            let id = try tokenID(raw, "added_tokens: \(JSONWriter.quoted(content))", refuse)
            maxID = max(maxID, raw)
            let strip = Tokenizer.Strip(left: t["lstrip"]?.boolValue ?? false, right: t["rstrip"]?.boolValue ?? false,
                                        singleWord: t["single_word"]?.boolValue ?? false)
            if t["special"]?.boolValue == true {
                special.append((content, id))
                if strip.left || strip.right || strip.singleWord { specialStrips[id] = strip }
                continue
            }
            if t["normalized"]?.boolValue ?? true {
                throw refuse("added_tokens: normalized token \(JSONWriter.quoted(content)) with byte_fallback: not supported yet")
            }
            added.append(AddedTokens.Entry(bytes: Array(content.utf8), id: id, lstrip: strip.left, rstrip: strip.right, singleWord: strip.singleWord))
        }
        let sp = SentencePieceBPE(vocab: vocab, merges: merges, unk: unk, fuseUnk: model["fuse_unk"]?.boolValue ?? false,
                                  normalizerSteps: steps, added: AddedTokens(added), metaspace: metaspace)
        // The byte-level engine's table is not used for this model; a table of the 256
        // bytes keeps the Tokenizer whole (decoding goes through the model's own table).
        let table = try RankTable(tokens: (0..<256).map { [UInt8($0)] }, threads: 1)
        // A SentencePiece file's "</s>" may be an ordinary vocabulary entry.
        let (eos, guess) = try eosOrGuess(path, special: special, candidates: ["</s>", "<|endoftext|>", "<eos>"], refuse) { vocab[Array($0.utf8)] }
        return Tokenizer(name: tokenizerName(path), ranks: table, pretokenizer: .whole, special: special, eos: eos,
                         vocabSize: maxID + 1, vocabHash: XXH3.hash64(bytes), eosGuess: guess, specialStrips: specialStrips, sentencePiece: sp)
    }

    /// The EOS the files of a Hugging Face model folder name, in the order transformers
    /// reads them: `tokenizer_config.json`'s `eos_token`, `special_tokens_map.json`'s
    /// `eos_token` (a string, or an object with `content`), then `generation_config.json`'s
    /// `eos_token_id` (an id, or a list whose first entry counts). nil when none does; a
    /// named token that is not one of the tokenizer's special tokens is an error.
    static func statedEOS(beside path: String, special: [(String, UInt32)]) throws -> UInt32? {
        let dir = FileSystem.dirname(of: path)
        func json(_ name: String) -> (String, JSONValue)? {
            let p = FileSystem.join(dir, name)
            guard FileSystem.fileExists(p), let b = try? FileSystem.readFile(p), let v = try? JSONParser.parse(b) else { return nil }
            return (p, v)
        }
        for file in ["tokenizer_config.json", "special_tokens_map.json"] {
            guard let (p, v) = json(file), let e = v["eos_token"], e != .null else { continue }
            guard let text = e.stringValue ?? e["content"]?.stringValue else { continue }
            guard let id = special.first(where: { $0.0 == text })?.1 else {
                throw TokenmillError.unsupported("\(p): eos_token '\(text)' is not one of the tokenizer's added special tokens")
            }
            return id
        }
        if let (_, v) = json("generation_config.json"), let e = v["eos_token_id"] {
            if let raw = e.intValue ?? e.arrayValue?.first?.intValue, let id = UInt32(exactly: raw), special.contains(where: { $0.1 == id }) { return id }
        }
        return nil
    }

    static func tokenizerName(_ path: String) -> String {
        var base = FileSystem.basename(of: path)
        if base == "tokenizer.json" { return FileSystem.basename(of: FileSystem.dirname(of: path)) }
        if base.hasSuffix(".json") { base.removeLast(5) }
        if base.hasSuffix(".tokenizer") { base.removeLast(10) }
        return base
    }

    static func normalizer(_ v: JSONValue?, _ refuse: (String) -> TokenmillError) throws -> Tokenizer.Normalization {
        guard let v, v != .null else { return .none }
        let type = v["type"]?.stringValue ?? "?"
        switch type {
        case "NFC": return .nfc
        case "NFKC": return .nfkc
        case "Sequence":
            let items = try (v["normalizers"]?.arrayValue ?? []).map { try normalizer($0, refuse) }.filter { $0 != .none }
            guard items.count <= 1 else { throw refuse("normalizer Sequence: more than one Unicode normalization is not supported") }
            return items.first ?? .none
        default: throw refuse("normalizer \(type): not supported yet")
        }
    }

    /// The pre-tokenization patterns the hand-written scanners implement, as they appear
    /// in tokenizer.json files (tiktoken's form, and with `{1,3}` without the possessive
    /// `+`, which Oniguruma would misread).
    static let knownPatterns: [String: Pretokenizer] = [
        #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#: .r50k,
        #"'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"#: .r50k,
        #"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"#: .cl100k,
        #"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"#: .cl100k,
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#: .llama3,
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#: .qwen2,
        #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#: .o200k,
    ]

    /// The pre-tokenizer as a flat list of steps (`Sequence`s flattened).
    static func preTokenizerSteps(_ v: JSONValue?, _ refuse: (String) -> TokenmillError) throws -> [PreTokenizerStep] {
        guard let v, v != .null else { throw refuse("pre_tokenizer: missing (a byte-level BPE needs ByteLevel)") }
        let type = v["type"]?.stringValue ?? "?"
        switch type {
        case "ByteLevel":
            return [.byteLevel(addPrefixSpace: v["add_prefix_space"]?.boolValue ?? false, useRegex: v["use_regex"]?.boolValue ?? true)]
        case "Split":
            return [try split(v, refuse)]
        case "Digits":
            return [.digits(individual: v["individual_digits"]?.boolValue ?? false)]
        case "Punctuation":
            // tokenizers' is_punc: ASCII punctuation (Rust's is_ascii_punctuation, symbols
            // such as $ + < = included) or a Unicode punctuation category (P*); default
            // behaviour Isolated (Falcon uses Contiguous).
            let b = v["behavior"]?.stringValue ?? "Isolated"
            guard let behavior = SplitBehavior(rawValue: b) else {
                throw refuse("pre_tokenizer Punctuation: behavior \(b) is not one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous")
            }
            do {
                return [.split(.regex(try SplitRegex(#"[\p{P}\x{21}-\x{2F}\x{3A}-\x{40}\x{5B}-\x{60}\x{7B}-\x{7E}]"#)), behavior, invert: false)]
            } catch {
                throw refuse("pre_tokenizer Punctuation: \(error.message)")
            }
        case "Sequence":
            return try (v["pretokenizers"]?.arrayValue ?? []).flatMap { try preTokenizerSteps($0, refuse) }
        default:
            throw refuse("pre_tokenizer \(type): not supported (byte-level BPE takes ByteLevel, Split, Digits, Punctuation and Sequence)")
        }
    }

    /// The hand-written scanner path, when the steps are exactly what it implements.
    static func fastPath(_ steps: [PreTokenizerStep]) -> Config? {
        switch steps.count {
        case 1:
            if case .byteLevel(let prefix, let regex) = steps[0] { return Config(pretokenizer: regex ? .r50k : .whole, addPrefixSpace: prefix) }
        case 2:
            if case .split(.scanner(let p), .isolated, false) = steps[0], case .byteLevel(false, false) = steps[1] {
                return Config(pretokenizer: p)
            }
        default: break
        }
        return nil
    }

    static func split(_ v: JSONValue, _ refuse: (String) -> TokenmillError) throws -> PreTokenizerStep {
        guard let b = v["behavior"]?.stringValue, let behavior = SplitBehavior(rawValue: b) else {
            throw refuse("pre_tokenizer Split: behavior \(v["behavior"]?.stringValue ?? "missing") is not one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous")
        }
        let invert = v["invert"]?.boolValue ?? false
        let pattern: SplitPattern
        if let regex = v["pattern"]?["Regex"]?.stringValue {
            if let known = knownPatterns[regex] {
                pattern = .scanner(known)
            } else {
                do { pattern = .regex(try SplitRegex(regex)) } catch {
                    throw refuse("pre_tokenizer Split: \(error.message) in \(JSONWriter.quoted(String(regex.prefix(80))))")
                }
            }
        } else if let literal = v["pattern"]?["String"]?.stringValue {
            // tokenizers escapes the string into a regex; so does this.
            guard !literal.isEmpty else { throw refuse("pre_tokenizer Split: empty String pattern") }
            let escaped = literal.unicodeScalars.map { "\\x{\(String($0.value, radix: 16))}" }.joined()
            do { pattern = .regex(try SplitRegex(escaped)) } catch {
                throw refuse("pre_tokenizer Split: \(error.message)")
            }
        } else {
            throw refuse("pre_tokenizer Split: pattern must be {\"Regex\": ...} or {\"String\": ...}")
        }
        return .split(pattern, behavior, invert: invert)
    }
}
