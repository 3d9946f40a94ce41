import TokenmillCore

/// What `index.json` lists for one shard file.
public struct ShardSummary: Sendable {
    public var file: String
    public var records: Int
    public var tokens: Int
    public var documents: Int
    public var bytes: Int
    public var checksum: UInt64
}

/// Writes one shard file (FORMAT.md 1): header, one zstd frame per chunk, footer,
/// trailer; under a temporary name, fsync'ed, then renamed into place.
///
/// Chunk boundaries depend only on the records (`chunkRanges`), and chunks are
/// compressed in parallel but written in order, so the bytes never depend on threads.
public enum ShardWriter {
    public static func chunkRanges(_ records: ArraySlice<SequenceRecord>, tokenWidth: Int) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        var start = records.startIndex
        var bytes = 0
        for i in records.indices {
            bytes += records[i].tokens.count * tokenWidth
            if bytes >= ShardLayout.chunkTokenBytes {
                ranges.append(start..<(i + 1)); start = i + 1; bytes = 0
            }
        }
        if start < records.endIndex { ranges.append(start..<records.endIndex) }
        return ranges
    }

    public static func write(path: String, records: ArraySlice<SequenceRecord>, tokenWidth: Int, zstdLevel: Int32, threads: Int) throws -> ShardSummary {
        precondition(!records.isEmpty, "a shard holds at least one record")
        let w = try ShardFileWriter(path: path, tokenWidth: tokenWidth, zstdLevel: zstdLevel, threads: threads)
        for r in records { try w.append(r) }
        return try w.finish()
    }
}

/// A shard written record by record with memory bounded by the chunks in flight: records
/// gather into a chunk until it holds `ShardLayout.chunkTokenBytes` of token ids (the
/// rule `chunkRanges` states), `threads` closed chunks are compressed at once and written
/// in order, and the footer goes last. The bytes depend only on the records.
public final class ShardFileWriter {
    let path: String
    let tokenWidth: Int
    let zstdLevel: Int32
    let threads: Int
    var file: AtomicFileWriter
    var sum = XXH3Stream()
    var chunk: [SequenceRecord] = []
    var chunkBytes = 0
    var closed: [[SequenceRecord]] = []
    var footerEntries: [UInt8] = []
    var offset = UInt64(ShardLayout.headerSize)
    var chunks = 0
    var records = 0, tokens = 0, documents = 0

    public init(path: String, tokenWidth: Int, zstdLevel: Int32, threads: Int) throws {
        precondition(tokenWidth == 2 || tokenWidth == 4)
        self.path = path; self.tokenWidth = tokenWidth; self.zstdLevel = zstdLevel; self.threads = max(1, threads)
        file = try AtomicFileWriter(path: path)
        var header: [UInt8] = ShardLayout.magic
        header.appendLE(ShardLayout.versionMajor)
        header.appendLE(ShardLayout.shardVersionMinor)
        header.append(UInt8(tokenWidth))
        header.append(contentsOf: [UInt8](repeating: 0, count: 11))
        header.appendLE(XXH3.hash64(header))
        try emit(header)
    }

    func emit(_ piece: [UInt8]) throws {
        try piece.withUnsafeBytes { raw in
            sum.update(raw)
            try file.write(raw)
        }
    }

    public func append(_ r: SequenceRecord) throws {
        chunk.append(r)
        records += 1; tokens += r.tokens.count; documents += r.docStarts.count
        chunkBytes += r.tokens.count * tokenWidth
        if chunkBytes >= ShardLayout.chunkTokenBytes {
            closed.append(chunk); chunk = []; chunkBytes = 0
            if closed.count >= threads { try flushChunks() }
        }
    }

    func flushChunks() throws {
        let batch = closed
        closed = []
        let frames: [(frame: [UInt8], raw: Int)] = try parallelBatches(count: batch.count, threads: threads, batchSize: 1) { r in
            let payload = ChunkEncoding.encode(batch[r.lowerBound][...], tokenWidth: tokenWidth)
            let frame = try payload.withUnsafeBytes { try Zstd.compress($0, level: zstdLevel) }
            return (frame, payload.count)
        }
        for (k, f) in frames.enumerated() {
            var t = 0
            for r in batch[k] { t += r.tokens.count }
            footerEntries.appendLE(offset)
            footerEntries.appendLE(UInt32(f.frame.count))
            footerEntries.appendLE(UInt32(f.raw))
            footerEntries.appendLE(UInt32(batch[k].count))
            footerEntries.appendLE(UInt32(0))
            footerEntries.appendLE(UInt64(t))
            footerEntries.appendLE(XXH3.hash64(f.frame))
            offset += UInt64(f.frame.count)
            chunks += 1
            try emit(f.frame)
        }
    }

    /// Closes the last chunk, writes footer and trailer, fsyncs and renames into place.
    public func finish() throws -> ShardSummary {
        precondition(records > 0, "a shard holds at least one record")
        if !chunk.isEmpty { closed.append(chunk); chunk = [] }
        try flushChunks()
        var footer: [UInt8] = []
        footer.appendLE(UInt64(records))
        footer.appendLE(UInt64(tokens))
        footer.appendLE(UInt32(chunks))
        footer.appendLE(UInt32(0))
        footer.append(contentsOf: footerEntries)
        var trailer: [UInt8] = []
        trailer.appendLE(offset)
        trailer.appendLE(UInt64(footer.count))
        trailer.appendLE(XXH3.hash64(footer))
        trailer.append(contentsOf: ShardLayout.trailerMagic)
        try emit(footer)
        try emit(trailer)
        let bytes = file.bytesWritten
        try file.commit()
        return ShardSummary(file: FileSystem.basename(of: path), records: records, tokens: tokens,
                            documents: documents, bytes: bytes, checksum: sum.digest())
    }
}
