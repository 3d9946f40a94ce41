import CZstd
import TokenmillCore

/// libzstd, wrapped once. Compression and decompression do not depend on each other.
public enum Zstd {
    /// One complete frame holding `input`, with the content size in its header.
    public static func compress(_ input: UnsafeRawBufferPointer, level: Int32) throws -> [UInt8] {
        let bound = ZSTD_compressBound(input.count)
        var out = [UInt8](repeating: 0, count: bound)
        let n = out.withUnsafeMutableBytes { o in
            ZSTD_compress(o.baseAddress, bound, input.baseAddress, input.count, level)
        }
        if ZSTD_isError(n) != 0 { throw TokenmillError.other("zstd compression failed: \(String(cString: ZSTD_getErrorName(n)))") }
        out.removeSubrange(n...)
        return out
    }

    /// One frame on `workers` threads (libzstd's own multithreading; the frame states its
    /// content size). Used for large single outputs, such as an MDS shard.
    public static func compress(_ input: UnsafeRawBufferPointer, level: Int32, workers: Int) throws -> [UInt8] {
        guard let cctx = ZSTD_createCCtx() else { throw TokenmillError.other("zstd: cannot create a compression context") }
        defer { ZSTD_freeCCtx(cctx) }
        func check(_ r: Int) throws {
            if ZSTD_isError(r) != 0 { throw TokenmillError.other("zstd compression failed: \(String(cString: ZSTD_getErrorName(r)))") }
        }
        try check(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level))
        if workers > 1 { try check(ZSTD_CCtx_setParameter(cctx, ZSTD_c_nbWorkers, Int32(workers))) }
        let bound = ZSTD_compressBound(input.count)
        var out = [UInt8](repeating: 0, count: bound)
        let n = out.withUnsafeMutableBytes { o in ZSTD_compress2(cctx, o.baseAddress, bound, input.baseAddress, input.count) }
        try check(n)
        out.removeSubrange(n...)
        return out
    }

    /// Decompresses exactly one frame that must fill `input` and yield `expectedSize`
    /// bytes into `scratch` (reused: a reader that decompresses chunk after chunk then
    /// allocates, and faults in, nothing new once it has grown); anything else is a
    /// description of what is wrong.
    public static func decompressFrame(_ input: UnsafeRawBufferPointer, expectedSize: Int, into scratch: ScratchBuffer) -> ZstdFailure? {
        scratch.count = 0
        guard input.count > 0 else { return ZstdFailure("empty frame") }
        let frameSize = ZSTD_findFrameCompressedSize(input.baseAddress, input.count)
        if ZSTD_isError(frameSize) != 0 { return ZstdFailure("not a zstd frame (\(String(cString: ZSTD_getErrorName(frameSize))))") }
        if frameSize != input.count { return ZstdFailure("frame is \(frameSize) bytes, the footer says \(input.count)") }
        // The frame must state its content size, and it must be the footer's (FORMAT.md 1.2).
        let content = ZSTD_getFrameContentSize(input.baseAddress, input.count)
        if content == UInt64.max {  // ZSTD_CONTENTSIZE_UNKNOWN
            return ZstdFailure("frame has no content size (Frame_Content_Size), the footer says \(expectedSize)")
        }
        if content != UInt64(expectedSize) { return ZstdFailure("frame content size \(content) differs from the footer's \(expectedSize)") }
        scratch.reserve(expectedSize)
        let n = ZSTD_decompress(scratch.base, expectedSize, input.baseAddress, input.count)
        if ZSTD_isError(n) != 0 { return ZstdFailure("zstd: \(String(cString: ZSTD_getErrorName(n)))") }
        if n != expectedSize { return ZstdFailure("decompressed \(n) bytes, expected \(expectedSize)") }
        scratch.count = n
        return nil
    }
}

/// A growable byte buffer that is never zero-filled: what zstd decompresses into. Its
/// first `count` bytes are the valid ones; `reserve` may drop the rest.
public final class ScratchBuffer: @unchecked Sendable {
    private(set) var base: UnsafeMutableRawPointer
    private var capacity: Int
    public internal(set) var count = 0

    public init() {
        capacity = 0
        base = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 16)
    }
    deinit { base.deallocate() }

    func reserve(_ n: Int) {
        if n <= capacity { return }
        base.deallocate()
        capacity = max(n, capacity * 2)
        base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        count = 0
    }

    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
}

public struct ZstdFailure: Error {
    public var message: String
    init(_ m: String) { message = m }
}
