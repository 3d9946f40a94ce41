import BPE
import ShardFormat
import TokenmillCore

/// `tokenmill inspect DIR [--split S] [--seq N]`: a summary, or sequence N decoded with
/// its documents separated and the trained-on (loss) spans between ⟦ and ⟧.
enum InspectCommand {
    static func run(_ args: ArraySlice<String>) throws {
        let a = try Arguments(args, valued: ["--split", "--seq"], flags: [])
        guard a.positionals.count == 1 else { throw TokenmillError.usage("tokenmill inspect DIR [--split S] [--seq N]") }
        let dir = a.positionals[0]
        let index = try DatasetIndex.load(dir: dir)
        var out = ""
        if let seqText = a.options["--seq"] {
            guard let n = Int(seqText), n >= 0 else { throw TokenmillError.usage("--seq expects a sequence number >= 0") }
            let split = try index.split(a.options["--split"] ?? "train")
            out = try showSequence(n, split: split, index: index, dir: dir)
        } else {
            out += "\(index.name): tokenizer \(index.tokenizer.name) (vocab \(index.tokenizer.vocabSize), \(index.dtype)), template \(index.template), "
            out += "\(index.strategy) packing, seq_len \(index.seqLen)\n"
            for s in index.splits {
                let padding = (s.paddingTokens ?? 0) > 0 ? " (\(s.paddingTokens!) of them padding)" : ""
                out += "  \(s.name): \(s.records) sequences, \(s.documents) documents, \(s.tokens) tokens\(padding), \(s.shards.count) shard\(s.shards.count == 1 ? "" : "s")\n"
            }
            for m in index.raw[DatasetIndex.Key.sources]?.objectValue ?? [] {
                // Counts, and the filter reasons (an object of reason -> count) after them.
                let fields = (m.value.objectValue ?? []).map { f -> String in
                    if let reasons = f.value.objectValue {
                        return "\(f.keyString) {" + reasons.map { "\($0.keyString) \($0.value.intValue ?? 0)" }.joined(separator: ", ") + "}"
                    }
                    return "\(f.keyString) \(f.value.intValue ?? 0)"
                }.joined(separator: ", ")
                out += "  source \(m.keyString): \(fields)\n"
            }
        }
        var b = Array(out.utf8)
        b.withUnsafeMutableBytes { FileSystem.writeStdout(UnsafeRawBufferPointer($0)) }
    }

    static func showSequence(_ n: Int, split: DatasetIndex.Split, index: DatasetIndex, dir: String) throws -> String {
        var base = 0
        for s in split.shards {
            if n < base + s.records {
                let reader = try ShardReader(path: FileSystem.join(dir, s.file), vocabSize: index.tokenizer.vocabSize)
                let rec = try reader.record(n - base)
                // A tokenizer.json build carries its vocabulary; a built-in one is named.
                let source = index.tokenizer.file.map { FileSystem.join(dir, $0) } ?? index.tokenizer.name
                var tokenizer = try TokenizerLoader.load(source)
                guard XXH3.hex(tokenizer.vocabHash) == index.tokenizer.vocabHash else {
                    throw TokenmillError.corrupt(path: FileSystem.join(dir, DatasetDirectory.indexFile),
                                                 message: "the vocabulary \(source) has another hash than tokenizer.vocab_hash \(index.tokenizer.vocabHash): it is not the one the shards were built with")
                }
                let extra = index.tokenizer.specialTokens.filter { tokenizer.specialID($0.text) == nil }.map { ($0.text, UInt32($0.id)) }
                if !extra.isEmpty { tokenizer = try tokenizer.addingSpecialTokens(extra) }
                let trained = rec.lossMask.reduce(0) { $0 + Int($1) }
                // Under pad, a second document start is where the padding begins (FORMAT.md 1.2).
                let padded = index.strategy == "pad" && rec.docStarts.count == 2
                let documents = rec.docStarts.count - (padded ? 1 : 0)
                var out = "sequence \(n) of \(split.name) (\(s.file) record \(n - base)): \(rec.tokens.count) tokens, \(documents) document\(documents == 1 ? "" : "s")\(padded ? " and padding" : ""), \(trained) trained on (between ⟦ ⟧)\n"
                let bounds = rec.docStarts.map(Int.init) + [rec.tokens.count]
                for d in 0..<rec.docStarts.count {
                    let what = padded && d == 1 ? "padding" : "document \(d)"
                    out += "──── \(what): tokens \(bounds[d])..<\(bounds[d + 1])\n"
                    var t = bounds[d]
                    while t < bounds[d + 1] {
                        var e = t
                        while e < bounds[d + 1] && rec.lossMask[e] == rec.lossMask[t] { e += 1 }
                        let text = String(decoding: try tokenizer.decode(Array(rec.tokens[t..<e])), as: UTF8.self)
                        out += rec.lossMask[t] == 1 ? "⟦\(text)⟧" : text
                        t = e
                    }
                    out += "\n"
                }
                return out
            }
            base += s.records
        }
        throw TokenmillError.usage("sequence \(n) out of range: split \(split.name) has \(split.records) sequences")
    }
}
