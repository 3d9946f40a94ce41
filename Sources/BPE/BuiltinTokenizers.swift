#if canImport(Glibc)
import Glibc
#endif
import TokenmillCore

/// The tiktoken encodings shipped with Tokenmill (ranks files are package resources) and
/// loading of `.tiktoken` files by path.
public enum TokenizerLoader {
    struct Builtin {
        let file: String
        let pretokenizer: Pretokenizer
        let special: [(String, UInt32)]
        let vocabSize: Int
        /// Where chat templates put `<|im_start|>`/`<|im_end|>` when the vocabulary lacks them.
        let chatIDs: (UInt32, UInt32)
    }

    static let builtins: [String: Builtin] = [
        "gpt2": Builtin(file: "gpt2.tiktoken", pretokenizer: .r50k, special: [("<|endoftext|>", 50256)], vocabSize: 50257, chatIDs: (50257, 50258)),
        "r50k_base": Builtin(file: "gpt2.tiktoken", pretokenizer: .r50k, special: [("<|endoftext|>", 50256)], vocabSize: 50257, chatIDs: (50257, 50258)),
        "p50k_base": Builtin(file: "p50k_base.tiktoken", pretokenizer: .r50k, special: [("<|endoftext|>", 50256)], vocabSize: 50281, chatIDs: (50281, 50282)),
        "cl100k_base": Builtin(file: "cl100k_base.tiktoken", pretokenizer: .cl100k,
                               special: [("<|endoftext|>", 100257), ("<|fim_prefix|>", 100258), ("<|fim_middle|>", 100259),
                                         ("<|fim_suffix|>", 100260), ("<|endofprompt|>", 100276)],
                               vocabSize: 100277, chatIDs: (100264, 100265)),
        "o200k_base": Builtin(file: "o200k_base.tiktoken", pretokenizer: .o200k,
                              special: [("<|endoftext|>", 199999), ("<|endofprompt|>", 200018)],
                              vocabSize: 200019, chatIDs: (200264, 200265)),
    ]

    public static var builtinNames: [String] { builtins.keys.sorted() }

    /// Loads `spec`: a built-in name, or a path to a `.tiktoken` file named after a
    /// built-in encoding (its pattern and special tokens are then used).
    /// The tokenizer.json a tokenizer spec names (the file, or the one in a model folder);
    /// nil for built-in names and .tiktoken files, whose encoding name identifies them.
    public static func tokenizerJSONPath(_ spec: String) -> String? {
        if builtins[spec] != nil || spec.hasSuffix(".tiktoken") || spec.hasSuffix(".model") { return nil }
        if FileSystem.isDirectory(spec) { return FileSystem.join(spec, "tokenizer.json") }
        return spec.hasSuffix(".json") ? spec : nil
    }

    /// `threads` caps the workers that build the vocabulary's tables (a build's
    /// `--threads`: a one-thread build uses one core from its first instruction).
    /// The BOS a Hugging Face model folder states (`tokenizer_config.json`'s `bos_token`,
    /// else `special_tokens_map.json`'s: a string, or an object with `content`); nil for
    /// built-in vocabularies and folders that state none.
    public static func statedBOS(_ spec: String) -> String? {
        guard let path = tokenizerJSONPath(spec) else { return nil }
        let dir = FileSystem.dirname(of: path)
        for file in ["tokenizer_config.json", "special_tokens_map.json"] {
            let p = FileSystem.join(dir, file)
            guard FileSystem.fileExists(p), let b = try? FileSystem.readFile(p), let v = try? JSONParser.parse(b),
                  let e = v["bos_token"], e != .null, let text = e.stringValue ?? e["content"]?.stringValue else { continue }
            return text
        }
        return nil
    }

    /// A name of a vocabulary this tool ships (its load depends on nothing the user wrote).
    public static func isBuiltin(_ spec: String) -> Bool { builtins[spec] != nil }

    /// The special tokens of a built-in vocabulary, known without loading it.
    public static func builtinSpecialTokens(_ spec: String) -> [String]? { builtins[spec]?.special.map(\.0) }

    public static func load(_ spec: String, threads: Int = activeProcessorCount) throws -> Tokenizer {
        if let b = builtins[spec] {
            let path = try resourcePath(b.file)
            return try load(name: spec, path: path, builtin: b, threads: threads)
        }
        if spec.hasSuffix(".json") || FileSystem.isDirectory(spec) {
            let path = FileSystem.isDirectory(spec) ? FileSystem.join(spec, "tokenizer.json") : spec
            guard FileSystem.fileExists(path) else { throw TokenmillError.io(path: path, message: "tokenizer file not found") }
            return try TokenizerJSON.load(path: path, threads: threads)
        }
        if spec.hasSuffix(".model") {
            guard FileSystem.fileExists(spec) else { throw TokenmillError.io(path: spec, message: "tokenizer file not found") }
            return try SentencePieceModelFile.load(path: spec, threads: threads)
        }
        if spec.hasSuffix(".tiktoken") {
            var base = FileSystem.basename(of: spec)
            base.removeLast(".tiktoken".count)
            guard let b = builtins[base] else {
                throw TokenmillError.unsupported("tokenizer \(spec): a .tiktoken file must be named after an encoding whose pattern is known (\(builtinNames.joined(separator: ", ")))")
            }
            guard FileSystem.fileExists(spec) else { throw TokenmillError.io(path: spec, message: "tokenizer file not found") }
            return try load(name: base, path: spec, builtin: b, threads: threads)
        }
        throw TokenmillError.unsupported("tokenizer '\(spec)': expected one of \(builtinNames.joined(separator: ", ")), a .tiktoken file, a tokenizer.json, a SentencePiece .model file or a folder holding a tokenizer.json")
    }

    static func load(name: String, path: String, builtin b: Builtin, threads: Int) throws -> Tokenizer {
        // Mapped, not read: the key needs only its hash, and a cached image its bytes never
        // (3.6 MB copied into fresh memory was a fifth of a short run's vocabulary load).
        let file = try FileSystem.map(path)
        let hash = XXH3.hash64(UnsafeRawBufferPointer(file.bytes))
        let (table, _) = try VocabularyCache.rankTable(key: VocabularyCache.key(source: hash, kind: "tiktoken"), threads: threads) {
            (try RankTable(tokens: try TiktokenFile.parse(Array(file.bytes), path: path, threads: threads), threads: threads), hash)
        }
        let eos = b.special[0].1
        return Tokenizer(name: name, ranks: table, pretokenizer: b.pretokenizer, special: b.special, eos: eos,
                         vocabSize: max(b.vocabSize, table.count), vocabHash: hash)
    }

    /// Ids for `<|im_start|>`/`<|im_end|>` on this vocabulary when it lacks them.
    public static func chatTokenIDs(for tokenizer: Tokenizer) -> (UInt32, UInt32) {
        if let b = builtins[tokenizer.name] { return b.chatIDs }
        let next = UInt32(tokenizer.vocabSize)
        return (next, next + 1)
    }

    /// Finds a resource file: `$TOKENMILL_RESOURCES`, then the SwiftPM resource folder next
    /// to the executable, then the source tree this binary was built from.
    static func resourcePath(_ file: String) throws -> String {
        var candidates: [String] = []
        if let env = getenv("TOKENMILL_RESOURCES") { candidates.append(FileSystem.join(String(cString: env), file)) }
        if let exeDir = executableDirectory() {
            candidates.append(FileSystem.join(exeDir, "tokenmill_BPE.resources/" + file))
            candidates.append(FileSystem.join(exeDir, "../share/tokenmill/" + file))
        }
        let source = FileSystem.dirname(of: #filePath)
        candidates.append(FileSystem.join(source, "Resources/" + file))
        for c in candidates where FileSystem.fileExists(c) { return c }
        throw TokenmillError.io(path: file, message: "built-in vocabulary not found (looked in \(candidates.joined(separator: ", "))); set TOKENMILL_RESOURCES to the folder holding it")
    }
}
