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
        if data.isEmpty { throw damaged(path, "empty .gz file") }
        var out: [UInt8] = []
        out.reserveCapacity(data.count * 4)
        var stream = z_stream()
        // 16 + MAX_WBITS: gzip framing only.
        guard inflateInit2_(&stream, 16 + MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw TokenmillError.io(path: path, message: "zlib could not start")
        }
        defer { inflateEnd(&stream) }
        var chunk = [UInt8](repeating: 0, count: 1 << 18)
        try data.withUnsafeBufferPointer { input in
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress!)
            stream.avail_in = UInt32(input.count)
            while true {
                let status = chunk.withUnsafeMutableBufferPointer { c -> Int32 in
                    stream.next_out = c.baseAddress!
                    stream.avail_out = UInt32(c.count)
                    return inflate(&stream, Z_NO_FLUSH)
                }
                out.append(contentsOf: chunk[0..<(chunk.count - Int(stream.avail_out))])
                switch status {
                case Z_STREAM_END:
                    if stream.avail_in == 0 { return }
                    // Another gzip member follows (`cat a.gz b.gz`).
                    guard inflateReset(&stream) == Z_OK else { throw damaged(path, "gzip: cannot read the next member") }
                case Z_OK:
                    continue
                case Z_BUF_ERROR:
                    if stream.avail_in == 0 { throw damaged(path, "gzip stream ends before its end marker") }
                    continue
                default:
                    let msg = stream.msg.map { String(cString: $0) } ?? "error \(status)"
                    throw damaged(path, "gzip: \(msg)")
                }
            }
        }
        return out
    }

    static func unzstd(_ data: [UInt8], path: String) throws -> [UInt8] {
        if data.isEmpty { throw damaged(path, "empty .zst file") }
        guard let ctx = ZSTD_createDStream() else { throw TokenmillError.io(path: path, message: "zstd could not start") }
        defer { ZSTD_freeDStream(ctx) }
        ZSTD_initDStream(ctx)
        var out: [UInt8] = []
        out.reserveCapacity(data.count * 4)
        var chunk = [UInt8](repeating: 0, count: 1 << 18)
        var lastHint = 0
        try data.withUnsafeBufferPointer { input in
            var inBuf = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
            repeat {
                let (hint, produced) = chunk.withUnsafeMutableBufferPointer { c -> (Int, Int) in
                    var outBuf = ZSTD_outBuffer(dst: c.baseAddress, size: c.count, pos: 0)
                    let r = ZSTD_decompressStream(ctx, &outBuf, &inBuf)
                    return (r, outBuf.pos)
                }
                if ZSTD_isError(hint) != 0 {
                    throw damaged(path, "zstd: \(String(cString: ZSTD_getErrorName(hint)))")
                }
                out.append(contentsOf: chunk[0..<produced])
                lastHint = hint
                // Output buffer full: more may be pending even with all input consumed.
                if produced == chunk.count { continue }
            } while inBuf.pos < inBuf.size
            // 0 = the last frame is complete; anything else means it was cut short.
            if lastHint != 0 {
                // Drain what the decoder still holds, then decide.
                while true {
                    let (hint, produced) = chunk.withUnsafeMutableBufferPointer { c -> (Int, Int) in
                        var outBuf = ZSTD_outBuffer(dst: c.baseAddress, size: c.count, pos: 0)
                        return (ZSTD_decompressStream(ctx, &outBuf, &inBuf), outBuf.pos)
                    }
                    if ZSTD_isError(hint) != 0 { throw damaged(path, "zstd: \(String(cString: ZSTD_getErrorName(hint)))") }
                    out.append(contentsOf: chunk[0..<produced])
                    if hint == 0 { break }
                    if produced == 0 { throw damaged(path, "zstd stream ends inside a frame") }
                }
            }
        }
        return out
    }
}
