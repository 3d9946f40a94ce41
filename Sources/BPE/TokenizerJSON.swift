import TokenmillCore

/// Loads a Hugging Face `tokenizer.json` whose model is BPE over byte-level
/// pre-tokenization, or refuses it at load with the component that cannot be reproduced
/// exactly (`pre_tokenizer Split: ...`) — never a silently different tokenization.
///
/// Supported today (each checked against the `tokenizers` library in the Python suite):
/// - model: `BPE` with `vocab`, `merges` (as "a b" strings or [a, b] pairs) and
///   `ignore_merges`; no dropout, no continuing-subword prefix or end-of-word suffix, no
///   byte fallback.
/// - normalizer: none, `NFC`, `NFKC`, or a `Sequence` holding one of those.
/// - pre_tokenizer: `ByteLevel` (with or without its GPT-2 regex, `add_prefix_space`), a
///   `Split` whose regex is the GPT-2, cl100k, o200k, Llama 3 or Qwen2 pattern with
///   behavior `Isolated`,
///   or a `Sequence` of such a `Split` and `ByteLevel` without regex.
/// - added_tokens marked `special` (they are never produced from data).
/// Refused for now: other normalizers (NFD, NFKD, Lowercase, Replace, ...), other `Split` patterns, `Digits`,
/// non-special added tokens.
enum TokenizerJSON {
    struct Config {
        var pretokenizer: Pretokenizer
        var addPrefixSpace = false
        var normalization = Tokenizer.Normalization.none
    }

    static func load(path: String) throws -> Tokenizer {
        let bytes = try FileSystem.readFile(path)
        let root: JSONValue
        do { root = try JSONParser.parse(bytes) } catch {
            throw TokenmillError.badInput(path: path, line: 0, message: "invalid JSON at byte \(error.offset): \(error.message)")
        }
        func refuse(_ m: String) -> TokenmillError { .unsupported("\(path): \(m)") }

        // model
        guard let model = root["model"], model.objectValue != nil else { throw refuse("model: missing") }
        let type = model["type"]?.stringValue ?? "BPE"
        guard type == "BPE" else { throw refuse("model \(type): only BPE models are supported") }
        if let d = model["dropout"], d != .null, d.doubleValue != 0 { throw refuse("model BPE: dropout is not deterministic") }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let v = model[key], v != .null, v.stringValue != "" { throw refuse("model BPE: \(key) is not supported") }
        }
        if model["byte_fallback"]?.boolValue == true { throw refuse("model BPE: byte_fallback is not supported") }
        let ignoreMerges = model["ignore_merges"]?.boolValue ?? false

        // vocab: strings of the byte-level alphabet -> ids
        guard let vocab = model["vocab"]?.objectValue else { throw refuse("model.vocab: missing") }
        var special: [(String, UInt32)] = []
        var specialTexts = Set<String>()
        for t in root["added_tokens"]?.arrayValue ?? [] {
            guard let content = t["content"]?.stringValue, let id = t["id"]?.intValue, id >= 0 else { throw refuse("added_tokens: entry without content or id") }
            guard t["special"]?.boolValue == true else {
                throw refuse("added_tokens: non-special token \(JSONWriter.quoted(content)) (matching added tokens in text is not supported yet)")
            }
            special.append((content, UInt32(id)))
            specialTexts.insert(content)
        }
        var maxID = -1
        for m in vocab { maxID = max(maxID, m.value.intValue ?? -1) }
        for (_, id) in special { maxID = max(maxID, Int(id)) }
        guard maxID >= 0, maxID < RankTable.maxPairVocabulary else { throw refuse("model.vocab: empty or too large") }
        var tokens = [[UInt8]?](repeating: nil, count: maxID + 1)
        var idOf: [String: UInt32] = [:]
        idOf.reserveCapacity(vocab.count)
        for m in vocab {
            guard let id = m.value.intValue, id >= 0 else { throw refuse("model.vocab: id of \(JSONWriter.quoted(m.keyString)) is not a non-negative integer") }
            idOf[m.keyString] = UInt32(id)
            if specialTexts.contains(m.keyString) { continue }   // never produced by merges from data
            guard let raw = ByteLevelAlphabet.decode(m.key) else {
                throw refuse("model.vocab: token \(JSONWriter.quoted(m.keyString)) is not in the byte-level alphabet (not a byte-level BPE vocabulary)")
            }
            if tokens[id] != nil { throw refuse("model.vocab: id \(id) used twice") }
            tokens[id] = raw
        }
        var merges: [(UInt32, UInt32)] = []
        for (k, m) in (model["merges"]?.arrayValue ?? []).enumerated() {
            var parts: [String] = []
            if let s = m.stringValue {
                parts = s.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            } else if let a = m.arrayValue {
                parts = a.compactMap(\.stringValue)
            }
            guard parts.count == 2, let a = idOf[parts[0]], let b = idOf[parts[1]] else {
                throw refuse("model.merges[\(k)]: expected two vocabulary tokens")
            }
            merges.append((a, b))
        }
        let table = try RankTable(tokens: tokens, merges: merges, wholeLookups: ignoreMerges)

        var config = try pretokenizer(root["pre_tokenizer"], refuse)
        config.normalization = try normalizer(root["normalizer"], refuse)

        let name = tokenizerName(path)
        let eosNames = ["<|endoftext|>", "</s>", "<|end_of_text|>", "<eos>", "<EOT>", "<|im_end|>"]
        let eos = eosNames.lazy.compactMap { n in special.first { $0.0 == n }?.1 }.first ?? special.first?.1
        guard let eos else { throw refuse("added_tokens: no special token to use as EOS") }
        return Tokenizer(name: name, ranks: table, pretokenizer: config.pretokenizer, special: special, eos: eos,
                         vocabSize: maxID + 1, vocabHash: XXH3.hash64(bytes), addPrefixSpace: config.addPrefixSpace, normalization: config.normalization)
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

    static func pretokenizer(_ v: JSONValue?, _ refuse: (String) -> TokenmillError) throws -> Config {
        guard let v, v != .null else { throw refuse("pre_tokenizer: missing (a byte-level BPE needs ByteLevel)") }
        let type = v["type"]?.stringValue ?? "?"
        switch type {
        case "ByteLevel":
            let useRegex = v["use_regex"]?.boolValue ?? true
            return Config(pretokenizer: useRegex ? .r50k : .whole, addPrefixSpace: v["add_prefix_space"]?.boolValue ?? false)
        case "Split":
            return Config(pretokenizer: try split(v, refuse))
        case "Sequence":
            let items = v["pretokenizers"]?.arrayValue ?? []
            guard items.count == 2, items[0]["type"]?.stringValue == "Split", items[1]["type"]?.stringValue == "ByteLevel" else {
                throw refuse("pre_tokenizer Sequence: only [Split, ByteLevel] is supported yet")
            }
            if items[1]["use_regex"]?.boolValue ?? true {
                throw refuse("pre_tokenizer Sequence: ByteLevel after Split must have use_regex false")
            }
            return Config(pretokenizer: try split(items[0], refuse), addPrefixSpace: items[1]["add_prefix_space"]?.boolValue ?? false)
        default:
            throw refuse("pre_tokenizer \(type): not supported yet")
        }
    }

    static func split(_ v: JSONValue, _ refuse: (String) -> TokenmillError) throws -> Pretokenizer {
        guard v["behavior"]?.stringValue == "Isolated", v["invert"]?.boolValue != true else {
            throw refuse("pre_tokenizer Split: only behavior Isolated without invert is supported")
        }
        guard let pattern = v["pattern"]?["Regex"]?.stringValue else { throw refuse("pre_tokenizer Split: only Regex patterns are supported") }
        guard let p = knownPatterns[pattern] else {
            throw refuse("pre_tokenizer Split: pattern \(JSONWriter.quoted(String(pattern.prefix(60)))) is not one the scanners implement (general regex support is pending)")
        }
        return p
    }
}
