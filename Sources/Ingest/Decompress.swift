#if canImport(Glibc)
import Glibc
#endif
import CZlib
import CZstd
import TokenmillCore

/// Input compression, chosen by the file name (`.gz`, `.zst`): the file is decompressed
/// into memory before parsing (streaming the decompressed bytes is future work; the
/// build still reads each input whole). Concatenated gzip members and zstd frames are
/// read to the end; a stream that stops early is an error naming the file, never a
/// silently shorter input.
public enum Compression: String, Sendable {
    case none, gzip, zstd

    public static func of(_ path: String) -> Compression {
        if path.hasSuffix(".gz") { return .gzip }
        if path.hasSuffix(".zst") || path.hasSuffix(".zstd") { return .zstd }
        return .none
    }

    /// The path without its compression suffix (for format inference).
    public static func stripped(_ path: String) -> String {
        for suffix in [".gz", ".zst", ".zstd"] where path.hasSuffix(suffix) { return String(path.dropLast(suffix.count)) }
        return path
    }

    public func decompress(_ data: [UInt8], path: String) throws -> [UInt8] {
        switch self {
        case .none: return data
        case .gzip: return try Compression.gunzip(data, path: path)
        case .zstd: return try Compression.unzstd(data, path: path)
        }
    }

    static func damaged(_ path: String, _ what: String) -> TokenmillError {
        .badInput(path: path, line: 0, message: "\(what) (the file is damaged or truncated; re-download or re-compress it)")
    }

    static func gunzip(_ data: [UInt8], path: String) throws -> [UInt8] {
        let s = try ByteStream(contents: data, path: path, compression: .gzip)
        s.skipsByteOrderMark = false   // bytes, not a text file
        return try s.readAll()
    }

    static func unzstd(_ data: [UInt8], path: String) throws -> [UInt8] {
        let s = try ByteStream(contents: data, path: path, compression: .zstd)
        s.skipsByteOrderMark = false
        return try s.readAll()
    }
}

/// A file's bytes block by block, decompressed on the fly: readers of JSONL and JSON
/// arrays hold one block (and the row that crosses its end), not the whole input.
/// Concatenated gzip members and zstd frames are read to the end; a stream that stops
/// early is an error naming the file, never a silently shorter input.
final class ByteStream {
    let path: String
    let compression: Compression
    // Where compressed (or plain) bytes come from: a file descriptor, or memory.
    private var fd: Int32 = -1
    private var memory: [UInt8] = []
    private var memoryOffset = 0
    // Sized at setup: 1 MB for a file, the input's own size (at most 1 MB) for memory, so
    // small inputs (the fuzzer's, a test's) do not pay for a megabyte of zeroes.
    private var raw: [UInt8] = []
    private var rawStart = 0, rawEnd = 0
    private var rawEOF = false
    private var zs = z_stream()
    private var zstd: OpaquePointer?
    private var started = false, finished = false
    private var sawInput = false
    private var zstdHint = 0

    init(path: String, compression: Compression) throws {
        self.path = path; self.compression = compression
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TokenmillError.io(path: path, message: "cannot open for reading") }
        try setUp()
    }

    init(contents: [UInt8], path: String, compression: Compression) throws {
        self.path = path; self.compression = compression
        memory = contents
        try setUp()
    }

    private func setUp() throws {
        raw = [UInt8](repeating: 0, count: fd >= 0 ? 1 << 20 : Swift.max(1, Swift.min(memory.count, 1 << 20)))
        switch compression {
        case .none: break
        case .gzip:
            // 16 + MAX_WBITS: gzip framing only.
            guard inflateInit2_(&zs, 16 + MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
                throw TokenmillError.io(path: path, message: "zlib could not start")
            }
        case .zstd:
            guard let ctx = ZSTD_createDStream() else { throw TokenmillError.io(path: path, message: "zstd could not start") }
            ZSTD_initDStream(ctx)
            zstd = ctx
        }
        started = true
    }

    deinit {
        if fd >= 0 { close(fd) }
        if started && compression == .gzip { inflateEnd(&zs) }
        if let zstd { ZSTD_freeDStream(zstd) }
    }

    /// Moves more stored bytes into `raw` (keeping the unread ones); false at the end.
    private func fillRaw() throws -> Bool {
        if rawEOF { return false }
        if rawStart > 0 {
            raw.withUnsafeMutableBufferPointer { r in
                if rawEnd > rawStart { (r.baseAddress!).update(from: r.baseAddress! + rawStart, count: rawEnd - rawStart) }
            }
            rawEnd -= rawStart; rawStart = 0
        }
        let room = raw.count - rawEnd
        var n = 0
        if fd >= 0 {
            while true {
                n = raw.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + rawEnd, room) }
                if n < 0 && errno == EINTR { continue }
                break
            }
            if n < 0 { throw TokenmillError.io(path: path, message: "read failed") }
        } else {
            n = min(room, memory.count - memoryOffset)
            raw.withUnsafeMutableBufferPointer { r in
                memory.withUnsafeBufferPointer { m in
                    if n > 0 { (r.baseAddress! + rawEnd).update(from: m.baseAddress! + memoryOffset, count: n) }
                }
            }
            memoryOffset += n
        }
        if n == 0 { rawEOF = true; return false }
        rawEnd += n
        sawInput = true
        return true
    }

    /// Appends up to `max` more bytes to `buffer`; false once the stream is over (then
    /// nothing more will come).
    func read(into buffer: inout [UInt8], max: Int) throws -> Bool {
        if finished { return false }
        let origin = buffer.count
        defer {
            // A UTF-8 byte order mark at the start of the stream is skipped and counted.
            // The first call produces `max` bytes unless the stream is shorter, so the
            // mark is whole in it if it is there at all.
            if !checkedByteOrderMark && buffer.count > origin {
                checkedByteOrderMark = true
                if skipsByteOrderMark && buffer.count - origin >= 3 && buffer[origin] == 0xEF && buffer[origin + 1] == 0xBB && buffer[origin + 2] == 0xBF {
                    buffer.removeSubrange(origin..<(origin + 3))
                    byteOrderMarks = 1
                }
            }
        }
        var produced = 0
        while produced < max {
            // A decoder whose last output filled its chunk may hold more without new input.
            if rawStart == rawEnd && !outputFull {
                if try !fillRaw() {
                    try finish()
                    return produced > 0
                }
            }
            let want = Swift.min(max - produced, compression == .none ? 1 << 20 : chunk.count)
            let before = buffer.count
            switch compression {
            case .none:
                let n = Swift.min(want, rawEnd - rawStart)
                raw.withUnsafeBufferPointer { r in buffer.append(contentsOf: UnsafeBufferPointer(rebasing: r[rawStart..<(rawStart + n)])) }
                rawStart += n
            case .gzip:
                try inflateStep(into: &buffer, want: want)
            case .zstd:
                try zstdStep(into: &buffer, want: want)
            }
            produced += buffer.count - before
            outputFull = compression != .none && buffer.count - before == want
            // A step that filled the whole chunk: the stream is big, so steps grow to 1 MB.
            if outputFull && want == chunk.count && chunk.count < 1 << 20 {
                chunk = [UInt8](repeating: 0, count: chunk.count * 4)
            }
        }
        return true
    }

    private var outputFull = false
    /// Whether a leading byte order mark is dropped (text formats; not Parquet).
    var skipsByteOrderMark = true
    private var checkedByteOrderMark = false
    private var byteOrderMarks = 0

    /// 1 the first time it is asked after a leading byte order mark was skipped, else 0.
    func takeByteOrderMarks() -> Int {
        defer { byteOrderMarks = 0 }
        return byteOrderMarks
    }
    /// Decompressed bytes of one step, before they are appended (reused); starts at 64 KB
    /// and grows to 1 MB while steps fill it.
    private var chunk = [UInt8](repeating: 0, count: 1 << 16)

    func readAll() throws -> [UInt8] {
        var out: [UInt8] = []
        while try read(into: &out, max: 1 << 24) {}
        return out
    }

    private func finish() throws {
        finished = true
        switch compression {
        case .none: return
        case .gzip:
            if !sawInput { throw Compression.damaged(path, "empty .gz file") }
            if !gzipEnded { throw Compression.damaged(path, "gzip stream ends before its end marker") }
        case .zstd:
            if !sawInput { throw Compression.damaged(path, "empty .zst file") }
            if zstdHint != 0 { throw Compression.damaged(path, "zstd stream ends inside a frame") }
        }
    }

    private var gzipEnded = false

    private func inflateStep(into buffer: inout [UInt8], want: Int) throws {
        if gzipEnded {
            if rawStart == rawEnd { return }   // nothing follows (yet): the stream ended cleanly so far
            // Another gzip member follows (`cat a.gz b.gz`).
            guard inflateReset(&zs) == Z_OK else { throw Compression.damaged(path, "gzip: cannot read the next member") }
            gzipEnded = false
        }
        var status: Int32 = Z_OK
        var consumed = 0
        raw.withUnsafeMutableBufferPointer { r in
            zs.next_in = r.baseAddress! + rawStart
            zs.avail_in = UInt32(rawEnd - rawStart)
            chunk.withUnsafeMutableBufferPointer { c in
                zs.next_out = c.baseAddress!
                zs.avail_out = UInt32(want)
                status = CZlib.inflate(&zs, Z_NO_FLUSH)
            }
            consumed = (rawEnd - rawStart) - Int(zs.avail_in)
            buffer.append(contentsOf: chunk[0..<(want - Int(zs.avail_out))])
        }
        rawStart += consumed
        switch status {
        case Z_STREAM_END:
            gzipEnded = true
            // Another member may follow; if the input is over, the stream ended cleanly.
            if rawStart == rawEnd { _ = try fillRaw() }
        case Z_OK, Z_BUF_ERROR: break
        default:
            let msg = zs.msg.map { String(cString: $0) } ?? "error \(status)"
            throw Compression.damaged(path, "gzip: \(msg)")
        }
    }

    private func zstdStep(into buffer: inout [UInt8], want: Int) throws {
        var consumed = 0, produced = 0
        var hint = 0
        raw.withUnsafeBufferPointer { r in
            var inBuf = ZSTD_inBuffer(src: r.baseAddress! + rawStart, size: rawEnd - rawStart, pos: 0)
            chunk.withUnsafeMutableBufferPointer { c in
                var outBuf = ZSTD_outBuffer(dst: c.baseAddress, size: want, pos: 0)
                hint = ZSTD_decompressStream(zstd, &outBuf, &inBuf)
                produced = outBuf.pos
            }
            consumed = inBuf.pos
        }
        if ZSTD_isError(hint) != 0 { throw Compression.damaged(path, "zstd: \(String(cString: ZSTD_getErrorName(hint)))") }
        rawStart += consumed
        // A call that neither read nor wrote anything says nothing about the frame: after a
        // frame ends with the output exactly full, the next call (no input left) reports
        // the header of a next frame it has not seen, which must not read as "truncated".
        if consumed > 0 || produced > 0 { zstdHint = hint }
        buffer.append(contentsOf: chunk[0..<produced])
    }
}
