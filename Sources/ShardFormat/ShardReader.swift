import TokenmillCore

/// Reads and checks a shard file. Trusts nothing: the header, trailer and footer are
/// validated on open (magic, version, reserved zeros, checksums, chunk tiling, totals);
/// each chunk's checksum and layout when it is read. Every failure is a
/// `TokenmillError.corrupt` naming the file and the chunk or field.
public final class ShardReader {
    public struct Chunk {
        public var offset: Int
        public var compressedSize: Int
        public var decompressedSize: Int
        public var records: Int
        public var tokens: Int
        public var checksum: UInt64
        public var firstRecord: Int
    }

    public let path: String
    /// The header's version_minor. A file of a minor above `ShardLayout.versionMinor` may
    /// use its reserved fields; this reader then ignores them (FORMAT.md 1.7).
    public let versionMinor: Int
    public let tokenWidth: Int
    public let recordCount: Int
    public let tokenCount: Int
    public let chunks: [Chunk]
    /// xxh3-64 of the whole file (what `index.json` lists); computed on demand, since only
    /// `verify` needs it and reading records must not hash every byte on open.
    public var fileChecksum: UInt64 { XXH3.hash64(data) }
    public let fileSize: Int
    let vocabSize: Int?
    /// The file, mapped: chunks are read where they lie in the page cache (copying a
    /// whole shard into the heap first was a serial tenth of an export).
    let file: MappedFile
    var data: UnsafeRawBufferPointer { UnsafeRawBufferPointer(file.bytes) }

    public init(path: String, vocabSize: Int? = nil) throws {
        self.path = path
        self.vocabSize = vocabSize
        file = try FileSystem.map(path)
        let data = UnsafeRawBufferPointer(file.bytes)
        fileSize = data.count
        func bad(_ m: String) -> TokenmillError { .corrupt(path: path, message: m) }
        guard data.count >= ShardLayout.headerSize + ShardLayout.trailerSize + ShardLayout.footerFixedSize else {
            throw bad("file is \(data.count) bytes, too small to be a shard")
        }
        // Header
        guard Array(data[0..<8]) == ShardLayout.magic else { throw bad("header: bad magic (not a .tkm shard)") }
        var r = ByteReader(Array(data[0..<32]), offset: 8)
        let major = r.u16()!, minor = r.u16()!
        guard major == ShardLayout.versionMajor else { throw bad("header: format version \(major).x, this reader reads \(ShardLayout.versionMajor).x") }
        versionMinor = Int(minor)
        // Reserved fields are zero in every minor this reader knows; a later minor may use
        // them only in ways this reader can ignore.
        let reservedZero = minor <= ShardLayout.versionMinor
        let width = Int(data[12])
        guard width == 2 || width == 4 else { throw bad("header: token width \(width), expected 2 or 4") }
        if reservedZero { for i in 13..<24 where data[i] != 0 { throw bad("header: reserved byte \(i) is not zero (version 1.\(minor))") } }
        r.offset = 24
        let headerSum = r.u64()!
        guard headerSum == XXH3.hash64(UnsafeRawBufferPointer(rebasing: data[0..<24])) else {
            throw bad("header: checksum mismatch")
        }
        tokenWidth = width
        // Trailer
        let t0 = data.count - ShardLayout.trailerSize
        guard Array(data[(t0 + 24)..<(t0 + 32)]) == ShardLayout.trailerMagic else { throw bad("trailer: bad magic (file truncated?)") }
        r = ByteReader(Array(data[t0...]))
        let footerOffset = r.u64()!, footerSize = r.u64()!, footerSum = r.u64()!
        guard footerSize >= UInt64(ShardLayout.footerFixedSize), footerOffset >= UInt64(ShardLayout.headerSize),
              footerOffset <= UInt64(t0), footerSize == UInt64(t0) - footerOffset else {
            throw bad("trailer: footer offset \(footerOffset) and size \(footerSize) do not fit the file")
        }
        let fo = Int(footerOffset), fs = Int(footerSize)
        guard footerSum == XXH3.hash64(UnsafeRawBufferPointer(rebasing: data[fo..<(fo + fs)])) else {
            throw bad("footer: checksum mismatch")
        }
        // Footer
        r = ByteReader(Array(data[fo..<(fo + fs)]))
        let records = r.u64()!, tokens = r.u64()!
        let count = Int(r.u32()!)
        let footerReserved = r.u32()!
        guard !reservedZero || footerReserved == 0 else { throw bad("footer: reserved field is not zero (version 1.\(minor))") }
        guard fs == ShardLayout.footerFixedSize + ShardLayout.chunkEntrySize * count else {
            throw bad("footer: \(count) chunks do not fit a footer of \(fs) bytes")
        }
        var chunks: [Chunk] = []
        var expectOffset = ShardLayout.headerSize
        var sumRecords = 0, sumTokens = 0
        for k in 0..<count {
            let off = Int(r.u64()!), cs = Int(r.u32()!), ds = Int(r.u32()!), rc = Int(r.u32()!)
            let reserved = r.u32()!
            let tc = r.u64()!, sum = r.u64()!
            guard !reservedZero || reserved == 0 else { throw bad("footer: chunk \(k): reserved field is not zero (version 1.\(minor))") }
            guard off == expectOffset, cs > 0, off + cs <= fo else { throw bad("footer: chunk \(k): offset \(off) size \(cs) break the chunk tiling") }
            guard rc > 0, tc <= UInt64(Int32.max), ds > 0 else { throw bad("footer: chunk \(k): implausible counts") }
            chunks.append(Chunk(offset: off, compressedSize: cs, decompressedSize: ds, records: rc, tokens: Int(tc), checksum: sum, firstRecord: sumRecords))
            expectOffset = off + cs
            sumRecords += rc; sumTokens += Int(tc)
        }
        guard expectOffset == fo else { throw bad("footer: chunks end at \(expectOffset), footer starts at \(fo)") }
        guard UInt64(sumRecords) == records, UInt64(sumTokens) == tokens else { throw bad("footer: chunk totals differ from the shard totals") }
        self.chunks = chunks
        recordCount = sumRecords
        tokenCount = sumTokens
    }

    /// The records of chunk `k`, after checking its checksum and layout.
    public func readChunk(_ k: Int) throws -> [SequenceRecord] {
        var flat = FlatChunk()
        try readChunk(k, into: &flat)
        return flat.records
    }

    /// Chunk `k` decoded into `flat` (its arrays and scratch buffer reused), after the
    /// same checks.
    public func readChunk(_ k: Int, into flat: inout FlatChunk) throws {
        let scratch = flat.scratch
        try decompress(k, into: scratch)
        if let f = ChunkEncoding.decodeFlat(scratch.bytes, tokenWidth: tokenWidth, vocabSize: vocabSize, expectedRecords: chunks[k].records,
                                            expectedTokens: chunks[k].tokens, into: &flat) {
            throw TokenmillError.corrupt(path: path, message: "chunk \(k): \(f.message)")
        }
    }

    /// Chunk `k`'s frame, checksum checked, decompressed into `scratch`.
    func decompress(_ k: Int, into scratch: ScratchBuffer) throws {
        let c = chunks[k]
        let frame = UnsafeRawBufferPointer(rebasing: data[c.offset..<(c.offset + c.compressedSize)])
        guard XXH3.hash64(frame) == c.checksum else { throw TokenmillError.corrupt(path: path, message: "chunk \(k): checksum mismatch") }
        if let f = Zstd.decompressFrame(frame, expectedSize: c.decompressedSize, into: scratch) {
            throw TokenmillError.corrupt(path: path, message: "chunk \(k): \(f.message)")
        }
    }

    /// Record `i` (0-based) of this shard.
    public func record(_ i: Int) throws -> SequenceRecord {
        guard i >= 0 && i < recordCount else { throw TokenmillError.usage("record \(i) out of range 0..<\(recordCount) in \(path)") }
        var lo = 0, hi = chunks.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if chunks[mid].firstRecord <= i { lo = mid } else { hi = mid - 1 }
        }
        return try readChunk(lo)[i - chunks[lo].firstRecord]
    }

    /// What `verifyAll` counted: document starts (Σ d[r]) and, when asked to apply the
    /// padding rule of strategy `pad`, the padded records and their padding tokens.
    public struct Contents: Equatable, Sendable {
        public var documentStarts = 0
        public var paddedRecords = 0
        public var paddingTokens = 0
        public init(documentStarts: Int = 0, paddedRecords: Int = 0, paddingTokens: Int = 0) {
            self.documentStarts = documentStarts; self.paddedRecords = paddedRecords; self.paddingTokens = paddingTokens
        }
    }

    /// Checks every chunk, on `threads` workers; with `pad` (seq_len, pad id) also that
    /// every record follows the padding rule of strategy `pad`
    /// (`SequencePadding.storedPadding`). The failure reported is the first chunk's in
    /// file order, whatever the workers' timing.
    @discardableResult
    public func verifyAll(pad: (seqLen: Int, padID: UInt32)? = nil, threads: Int = 1) throws -> Contents {
        let perChunk = try parallelBatches(count: chunks.count, threads: threads, batchSize: 1) { r -> Contents in
            let k = r.lowerBound
            var c = Contents()
            var flat = FlatChunk()
            try readChunk(k, into: &flat)
            c.documentStarts += flat.documentStarts.count
            guard let pad else { return c }
            for j in 0..<flat.count {
                let t = flat.tokenRange(j)
                switch SequencePadding.storedPadding(tokens: flat.tokens[t], loss: flat.loss[t], documentStarts: flat.documentStarts[flat.documentRange(j)],
                                                     seqLen: pad.seqLen, padID: pad.padID) {
                case .success(let n): if n > 0 { c.paddedRecords += 1; c.paddingTokens += n }
                case .failure(let f): throw TokenmillError.corrupt(path: path, message: "chunk \(k): record \(j) (shard record \(chunks[k].firstRecord + j)): \(f.message)")
                }
            }
            return c
        }
        var c = Contents()
        for p in perChunk { c.documentStarts += p.documentStarts; c.paddedRecords += p.paddedRecords; c.paddingTokens += p.paddingTokens }
        return c
    }
}
