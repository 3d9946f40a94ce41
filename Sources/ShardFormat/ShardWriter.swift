import Dispatch
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
        chunkRanges(tokenCounts: records.map(\.tokens.count), tokenWidth: tokenWidth).map {
            (records.startIndex + $0.lowerBound)..<(records.startIndex + $0.upperBound)
        }
    }

    /// The chunk rule on the records' token counts alone: a chunk closes once it holds
    /// `ShardLayout.chunkTokenBytes` of token ids. A writer that knows the lengths before
    /// it has the tokens (the build's plan) cuts chunks with it and gathers them in parallel.
    public static func chunkRanges(tokenCounts: [Int], tokenWidth: Int) -> [Range<Int>] {
        DatasetDirectory.closingRanges(sizes: tokenCounts.map { $0 * tokenWidth }, limit: ShardLayout.chunkTokenBytes)
    }

    public static func write(path: String, records: ArraySlice<SequenceRecord>, tokenWidth: Int, zstdLevel: Int32, threads: Int) throws -> ShardSummary {
        precondition(!records.isEmpty, "a shard holds at least one record")
        let w = try ShardFileWriter(path: path, tokenWidth: tokenWidth, zstdLevel: zstdLevel, threads: threads)
        for r in records { try w.append(r) }
        return try w.finish()
    }
}

/// A chunk compressed on another thread while the writer's caller goes on gathering
/// records: its frame, once `done` is signalled.
final class PendingChunk: @unchecked Sendable {
    var records: [SequenceRecord]
    let done = DispatchSemaphore(value: 0)
    var frame: [UInt8] = []
    var raw = 0
    var error: Error?
    init(_ records: [SequenceRecord]) { self.records = records }
}

/// A shard written record by record with memory bounded by the chunks in flight: records
/// gather into a chunk until it holds `ShardLayout.chunkTokenBytes` of token ids (the
/// rule `chunkRanges` states); with `threads` > 1 each closed chunk is encoded and
/// compressed on a worker while the caller gathers the next ones (at most `threads`
/// chunks in flight: compressing then overlaps with reading and gathering, which a batch
/// of chunks compressed at once did not), and frames are written in chunk order; the
/// footer goes last. The bytes depend only on the records.
public final class ShardFileWriter {
    let path: String
    let tokenWidth: Int
    let zstdLevel: Int32
    let threads: Int
    var file: AtomicFileWriter
    var sum = XXH3Stream()
    var chunk: [SequenceRecord] = []
    var chunkBytes = 0
    var pending: [PendingChunk] = []
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
        chunkBytes += r.tokens.count * tokenWidth
        if chunkBytes >= ShardLayout.chunkTokenBytes {
            let full = chunk
            chunk = []; chunkBytes = 0
            try submit(full)
        }
    }

    @Sendable static func compress(_ p: PendingChunk, tokenWidth: Int, level: Int32) {
        let payload = ChunkEncoding.encode(p.records[...], tokenWidth: tokenWidth)
        do {
            p.frame = try payload.withUnsafeBytes { try Zstd.compress($0, level: level) }
            p.raw = payload.count
        } catch { p.error = error }
    }

    func submit(_ records: [SequenceRecord]) throws {
        let p = PendingChunk(records)
        if threads <= 1 {
            Self.compress(p, tokenWidth: tokenWidth, level: zstdLevel)
            try write(p)
            return
        }
        let width = tokenWidth, level = zstdLevel
        DispatchQueue.global().async {
            Self.compress(p, tokenWidth: width, level: level)
            p.done.signal()
        }
        pending.append(p)
        while pending.count > threads { try writeOldest() }
    }

    func writeOldest() throws {
        let p = pending.removeFirst()
        p.done.wait()
        try write(p)
    }

    /// Chunks made by `make(k)` for k in 0..<count — each exactly one chunk under the chunk
    /// rule (`ShardWriter.chunkRanges(tokenCounts:)` cuts them) — gathered, encoded and
    /// compressed on `threads` workers at once and written in order. Up to 2 × `threads`
    /// + 2 chunks are in flight (~3 MB each): with only `threads` + 1, a worker that
    /// finished a later chunk early sat idle until the oldest one was written (10% of the
    /// stage's core time at two threads; 6% with the deeper queue, most of it the shard's
    /// serial start and end). For a caller that knows the chunk boundaries before it has the
    /// records: the gathering, not only the compression, runs on every core. Call before
    /// any `append`.
    public func appendChunks(count: Int, make: @escaping @Sendable (Int) throws -> [SequenceRecord]) throws {
        precondition(chunk.isEmpty && pending.isEmpty, "appendChunks after append")
        let width = tokenWidth, level = zstdLevel
        @Sendable func produce(_ k: Int, into p: PendingChunk) {
            do {
                p.records = try make(k)
                // The bytes depend on the chunk rule: a chunk the caller cut differently
                // would change them, so it is a bug, not bad input.
                precondition(!p.records.isEmpty && ShardWriter.chunkRanges(p.records[...], tokenWidth: width).count == 1,
                             "chunk \(k) breaks the chunk rule")
                ShardFileWriter.compress(p, tokenWidth: width, level: level)
            } catch { p.error = error }
        }
        if threads <= 1 {
            for k in 0..<count {
                let p = PendingChunk([])
                produce(k, into: p)
                try write(p)
            }
            return
        }
        var next = 0
        var inFlight: [PendingChunk] = []
        func launch() {
            let p = PendingChunk([]), k = next
            next += 1
            DispatchQueue.global().async { produce(k, into: p); p.done.signal() }
            inFlight.append(p)
        }
        while next < count && inFlight.count < 2 * threads + 2 { launch() }
        while !inFlight.isEmpty {
            let p = inFlight.removeFirst()
            p.done.wait()
            try write(p)
            if next < count { launch() }
        }
    }

    /// The chunk's frame, and its entry in the footer, in file order.
    func write(_ p: PendingChunk) throws {
        if let e = p.error { throw e }
        var t = 0
        for r in p.records { t += r.tokens.count; documents += r.docStarts.count }
        records += p.records.count; tokens += t
        footerEntries.appendLE(offset)
        footerEntries.appendLE(UInt32(p.frame.count))
        footerEntries.appendLE(UInt32(p.raw))
        footerEntries.appendLE(UInt32(p.records.count))
        footerEntries.appendLE(UInt32(0))
        footerEntries.appendLE(UInt64(t))
        footerEntries.appendLE(XXH3.hash64(p.frame))
        offset += UInt64(p.frame.count)
        chunks += 1
        try emit(p.frame)
        if file.bytesWritten - writebackStart >= Self.writebackBytes {
            file.startWriteback(writebackStart..<file.bytesWritten)
            writebackStart = file.bytesWritten
        }
    }

    /// Written bytes are handed to the kernel's writeback in steps of this size, so that
    /// `finish`'s fsync waits for the last step only (the cores are idle while it waits).
    static let writebackBytes = 8 << 20
    var writebackStart = 0

    /// Closes the last chunk, writes footer and trailer, fsyncs and renames into place.
    public func finish() throws -> ShardSummary {
        if !chunk.isEmpty { let last = chunk; chunk = []; try submit(last) }
        while !pending.isEmpty { try writeOldest() }
        precondition(records > 0, "a shard holds at least one record")
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
