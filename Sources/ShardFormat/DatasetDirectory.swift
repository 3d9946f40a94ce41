import TokenmillCore

/// The dataset directory around the shards (FORMAT.md 2): what the shard files are called,
/// where one shard ends and the next begins, how a sequence is padded under strategy
/// `pad`, and which token width a vocabulary needs. `DatasetIndex` is its `index.json`.
public enum DatasetDirectory {
    /// Written last: the dataset exists once this file does.
    public static let indexFile = "index.json"
    public static let shardSuffix = ".tkm"
    /// Names a copy of a non-built-in vocabulary may have beside the shards (a tokenizer.json,
    /// or a SentencePiece model file; a .tiktoken file is named after its encoding, which
    /// index.json's name gives).
    public static let tokenizerFiles = ["tokenizer.json", "tokenizer.model"]

    /// `SPLIT-NNNNN.tkm`: shard `k` (from 0) of `split`, `k` in decimal zero-padded to at
    /// least five digits (`train-00000.tkm`, …, `train-99999.tkm`, `train-100000.tkm`).
    public static func shardName(split: String, index k: Int) -> String {
        precondition(k >= 0)
        let digits = String(k)
        return "\(split)-\(String(repeating: "0", count: max(0, 5 - digits.count)))\(digits)\(shardSuffix)"
    }

    /// What `index.json` may name as a shard file: a plain name inside the directory, of
    /// ASCII letters, digits, `_`, `.` and `-`, not starting with `.` (no path, no
    /// temporary or hidden file), ending `.tkm`.
    public static func isShardFileName(_ name: String) -> Bool {
        let b = Array(name.utf8)
        guard b.count > shardSuffix.utf8.count, name.hasSuffix(shardSuffix), b[0] != UInt8(ascii: ".") else { return false }
        return b.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
                || c == UInt8(ascii: "_") || c == UInt8(ascii: ".") || c == UInt8(ascii: "-")
        }
    }

    /// The shard-cutting rule: the records of a split go, in order, into the open shard,
    /// and a shard is closed once it holds at least `shardTokens` tokens (padding
    /// included); the last shard holds what is left. Every shard has at least one record;
    /// no records, no shards. Returns each shard's range of record indexes.
    public static func shardRanges(recordTokens: [Int], shardTokens: Int) -> [Range<Int>] {
        precondition(shardTokens >= 1)
        return closingRanges(sizes: recordTokens, limit: shardTokens)
    }

    /// The rule shards and chunks share: items go, in order, into the open group, which is
    /// closed once its sizes sum to at least `limit`; the last group holds what is left.
    /// Returns each group's range of item indexes.
    static func closingRanges(sizes: [Int], limit: Int) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        var start = 0, total = 0
        for (i, n) in sizes.enumerated() {
            total += n
            if total >= limit {
                ranges.append(start..<(i + 1))
                start = i + 1; total = 0
            }
        }
        if start < sizes.count { ranges.append(start..<sizes.count) }
        return ranges
    }

    /// The token width a vocabulary of `vocabSize` ids needs: 2 (u16) when every id fits,
    /// that is `vocabSize <= 65536`, else 4 (u32).
    public static func tokenWidth(vocabSize: Int) -> Int { vocabSize <= 65536 ? 2 : 4 }

    /// `index.json`'s `dtype` for a token width: `uint16` or `uint32`.
    public static func dtype(tokenWidth: Int) -> String { tokenWidth == 2 ? "uint16" : "uint32" }
}

/// Padding under strategy `pad` (FORMAT.md 1.2): a sequence shorter than `seq_len` is
/// filled up with `pad_id`, loss 0, and the padding is one more document (a document start
/// where it begins), so position ids restart over it and varlen attention keeps it apart.
public enum SequencePadding {
    /// The stored length of a sequence of `length` tokens under `pad`.
    public static func paddedLength(_ length: Int, seqLen: Int) -> Int { max(length, seqLen) }

    /// Pads `record` to `seqLen` tokens; returns the padding tokens added (0 when the
    /// record already holds `seqLen` or more: it then gets no padding document).
    @discardableResult
    public static func pad(_ record: inout SequenceRecord, seqLen: Int, padID: UInt32) -> Int {
        let n = seqLen - record.tokens.count
        guard n > 0 else { return 0 }
        record.docStarts.append(UInt32(record.tokens.count))
        record.tokens.append(contentsOf: repeatElement(padID, count: n))
        record.lossMask.append(contentsOf: repeatElement(0, count: n))
        return n
    }

    /// The padding of a record stored under `pad`, as a reader finds it: the record holds
    /// exactly `seqLen` tokens and 1 document (it fills `seqLen`: no padding) or 2, the
    /// second being the padding: `padID` repeated to the end, loss 0. Returns the padding's
    /// token count, or what breaks the rule.
    public static func storedPadding(_ r: SequenceRecord, seqLen: Int, padID: UInt32) -> Result<Int, ChunkFailure> {
        storedPadding(tokens: r.tokens[...], loss: r.lossMask[...], documentStarts: r.docStarts.map { Int($0) }[...], seqLen: seqLen, padID: padID)
    }

    /// The same rule on a record of a `FlatChunk`: its tokens, loss flags and document
    /// starts, all indexed alike (offsets into the chunk's arrays).
    public static func storedPadding(tokens: ArraySlice<UInt32>, loss: ArraySlice<UInt8>, documentStarts: ArraySlice<Int>, seqLen: Int,
                                     padID: UInt32) -> Result<Int, ChunkFailure> {
        guard tokens.count == seqLen else {
            return .failure(ChunkFailure("\(tokens.count) tokens, but under pack.strategy pad every sequence holds seq_len (\(seqLen))"))
        }
        switch documentStarts.count {
        case 1: return .success(0)
        case 2:
            let p = documentStarts[documentStarts.startIndex + 1]
            for t in p..<tokens.endIndex where tokens[t] != padID || loss[t] != 0 {
                return .failure(ChunkFailure("token \(t - tokens.startIndex) of the padding document (from \(p - tokens.startIndex)) is not pad_id \(padID) with loss 0"))
            }
            return .success(tokens.endIndex - p)
        default:
            return .failure(ChunkFailure("\(documentStarts.count) documents, but under pack.strategy pad a sequence holds 1, or 2 with padding"))
        }
    }
}
