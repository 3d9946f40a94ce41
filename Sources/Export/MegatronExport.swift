import TokenmillCore

/// Megatron-LM's indexed dataset (`megatron/core/datasets/indexed_dataset.py`, `MMIDIDX`
/// version 1): `PREFIX.bin` holds the token ids of every sequence back to back;
/// `PREFIX.idx` the header, each sequence's length (int32) and byte offset (int64), and
/// the document indices (int64: the sequence where each document starts, then the
/// sequence count). docs/EXPORT.md has the layout.
///
/// The dtype follows Megatron's `DType.optimal_dtype(vocab_size)`: uint16 below 65,500
/// ids, else int32. Megatron's format has no loss mask; a second indexed dataset,
/// `PREFIX_loss_mask`, holds it (uint8 0/1, same sequences), so SFT data keeps it.
final class MegatronWriter: PositionedWriter {
    static let magic: [UInt8] = Array("MMIDIDX".utf8) + [0, 0]
    /// Megatron's DType codes.
    static let uint8Code: UInt8 = 1, int32Code: UInt8 = 4, uint16Code: UInt8 = 8

    static func dtype(vocabSize: Int) -> (code: UInt8, width: Int) { vocabSize < 65_500 ? (uint16Code, 2) : (int32Code, 4) }

    let prefix: String
    let tokens: OutputFile
    let loss: OutputFile
    let dtype: (code: UInt8, width: Int)
    var lengths: [Int32] = []
    var documentIndices: [Int64] = [0]

    init(prefix: String, vocabSize: Int) throws {
        self.prefix = prefix
        dtype = Self.dtype(vocabSize: vocabSize)
        tokens = try OutputFile(prefix + ".bin")
        loss = try OutputFile(prefix + "_loss_mask.bin")
    }

    /// The batch's samples, in order: each one sequence that is one document. Returns
    /// where its tokens go (in tokens).
    func place(_ b: SampleBatch) throws -> Int {
        guard b.tokens.count == b.loss.count else { throw TokenmillError.corrupt(path: prefix, message: "tokens and loss flags differ in count") }
        for k in 0..<b.count {
            let n = b.range(k).count
            guard n <= Int(Int32.max) else { throw TokenmillError.unsupported("\(prefix): a sample of \(n) tokens exceeds Megatron's int32 lengths") }
            lengths.append(Int32(n))
            documentIndices.append(Int64(lengths.count))
        }
        _ = loss.reserve(b.tokens.count)
        return tokens.reserve(b.tokens.count * dtype.width) / dtype.width
    }

    var positionedFiles: [OutputFile] { [tokens, loss] }

    func write(_ b: SampleBatch, at token: Int) throws {
        try tokens.writeTokens(b.tokens, width: dtype.width, at: token * dtype.width)
        try b.loss.withUnsafeBytes { try loss.write($0, at: token) }
    }

    static func index(code: UInt8, width: Int, lengths: [Int32], documentIndices: [Int64]) -> [UInt8] {
        var w = ByteWriter(capacity: 34 + lengths.count * 12 + documentIndices.count * 8)
        magic.withUnsafeBytes { w.raw($0) }
        w.u64(1)
        w.u8(code)
        w.u64(UInt64(lengths.count))
        w.u64(UInt64(documentIndices.count))
        for n in lengths { w.u32(UInt32(bitPattern: n)) }
        var pointer: Int64 = 0
        for n in lengths { w.u64(UInt64(bitPattern: pointer)); pointer += Int64(n) * Int64(width) }
        for d in documentIndices { w.u64(UInt64(bitPattern: d)) }
        return w.bytes
    }

    /// Writes both index files and commits all four; returns the bytes written.
    func finish() throws -> Int {
        let idx = try OutputFile(prefix + ".idx")
        try idx.write(Self.index(code: dtype.code, width: dtype.width, lengths: lengths, documentIndices: documentIndices))
        let lossIdx = try OutputFile(prefix + "_loss_mask.idx")
        try lossIdx.write(Self.index(code: Self.uint8Code, width: 1, lengths: lengths, documentIndices: documentIndices))
        try tokens.commit(); try loss.commit(); try idx.commit(); try lossIdx.commit()
        return tokens.size + loss.size + idx.size + lossIdx.size
    }
}
