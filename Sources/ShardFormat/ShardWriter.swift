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
        precondition(tokenWidth == 2 || tokenWidth == 4)
        precondition(!records.isEmpty, "a shard holds at least one record")
        let ranges = chunkRanges(records, tokenWidth: tokenWidth)
        let frames: [(frame: [UInt8], raw: Int)] = try parallelBatches(count: ranges.count, threads: threads, batchSize: 1) { r in
            let payload = ChunkEncoding.encode(records[ranges[r.lowerBound]], tokenWidth: tokenWidth)
            let frame = try payload.withUnsafeBytes { try Zstd.compress($0, level: zstdLevel) }
            return (frame, payload.count)
        }

        var header: [UInt8] = ShardLayout.magic
        header.appendLE(ShardLayout.versionMajor)
        header.appendLE(ShardLayout.versionMinor)
        header.append(UInt8(tokenWidth))
        header.append(contentsOf: [UInt8](repeating: 0, count: 11))
        header.appendLE(XXH3.hash64(header))

        var footer: [UInt8] = []
        var totalTokens = 0, totalDocs = 0
        for r in records { totalTokens += r.tokens.count; totalDocs += r.docStarts.count }
        footer.appendLE(UInt64(records.count))
        footer.appendLE(UInt64(totalTokens))
        footer.appendLE(UInt32(ranges.count))
        footer.appendLE(UInt32(0))
        var offset = UInt64(ShardLayout.headerSize)
        for (k, range) in ranges.enumerated() {
            let f = frames[k]
            var tokens = 0
            for r in records[range] { tokens += r.tokens.count }
            footer.appendLE(offset)
            footer.appendLE(UInt32(f.frame.count))
            footer.appendLE(UInt32(f.raw))
            footer.appendLE(UInt32(range.count))
            footer.appendLE(UInt32(0))
            footer.appendLE(UInt64(tokens))
            footer.appendLE(XXH3.hash64(f.frame))
            offset += UInt64(f.frame.count)
        }
        var trailer: [UInt8] = []
        trailer.appendLE(offset)
        trailer.appendLE(UInt64(footer.count))
        trailer.appendLE(XXH3.hash64(footer))
        trailer.append(contentsOf: ShardLayout.trailerMagic)

        var file = try AtomicFileWriter(path: path)
        var sum = XXH3Stream()
        for piece in [header] + frames.map(\.frame) + [footer, trailer] {
            try piece.withUnsafeBytes { raw in
                sum.update(raw)
                try file.write(raw)
            }
        }
        let bytes = file.bytesWritten
        try file.commit()
        return ShardSummary(file: FileSystem.basename(of: path), records: records.count, tokens: totalTokens,
                            documents: totalDocs, bytes: bytes, checksum: sum.digest())
    }
}
