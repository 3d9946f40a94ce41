import CZstd
import TokenmillCore

/// libzstd, wrapped once. Compression and decompression do not depend on each other.
public enum Zstd {
    /// One complete frame holding `input`, with the content size in its header.
    /// (`ZSTD_compressCCtx` on a context from `contexts`: the same frame as `ZSTD_compress`,
    /// which allocated and cleared a context of ~1 MB for every chunk.)
    public static func compress(_ input: UnsafeRawBufferPointer, level: Int32) throws -> [UInt8] {
        let bound = ZSTD_compressBound(input.count)
        guard let cctx = contexts.take() else { throw TokenmillError.other("zstd: cannot create a compression context") }
        defer { contexts.give(cctx) }
        var failure = 0
        let out = [UInt8](unsafeUninitializedCapacity: bound) { o, count in
            let n = ZSTD_compressCCtx(cctx, o.baseAddress, bound, input.baseAddress, input.count, level)
            if ZSTD_isError(n) != 0 { failure = n; count = 0 } else { count = n }
        }
        if failure != 0 { throw TokenmillError.other("zstd compression failed: \(String(cString: ZSTD_getErrorName(failure)))") }
        return out
    }

    /// Compression contexts kept for reuse, one per thread that compressed at once (a
    /// context carries no state from one frame to the next: `ZSTD_compressCCtx` resets it).
    final class ContextPool: @unchecked Sendable {
        private let lock = NSLockLite()
        private var free: [OpaquePointer] = []
        func take() -> OpaquePointer? {
            lock.lock()
            if let c = free.popLast() { lock.unlock(); return c }
            lock.unlock()
            return ZSTD_createCCtx()
        }
        func give(_ c: OpaquePointer) { lock.lock(); free.append(c); lock.unlock() }
    }
    static let contexts = ContextPool()

    /// Whether this libzstd compresses one frame on several threads (`ZSTD_c_nbWorkers`).
    /// The executable links libzstd statically (no dynamic loader at start: 2.4 -> 1.0 ms
    /// a process), and Debian's `libzstd.a` is built without multithreading, where a build
    /// against the shared library has it. Without it a frame is compressed on its caller's
    /// thread; the MDS export compresses its shards two at a time in the background anyway.
    public static let multithreaded: Bool = ZSTD_cParam_getBounds(ZSTD_c_nbWorkers).upperBound > 0

    /// `workers` where libzstd can use them, else 1 (`multithreaded`).
    static func frameWorkers(_ workers: Int) -> Int { multithreaded ? workers : 1 }

    /// One frame on `workers` threads (libzstd's own multithreading; the frame states its
    /// content size). Used for large single outputs, such as an MDS shard.
    public static func compress(_ input: UnsafeRawBufferPointer, level: Int32, workers: Int) throws -> [UInt8] {
        guard let cctx = ZSTD_createCCtx() else { throw TokenmillError.other("zstd: cannot create a compression context") }
        defer { ZSTD_freeCCtx(cctx) }
        func check(_ r: Int) throws {
            if ZSTD_isError(r) != 0 { throw TokenmillError.other("zstd compression failed: \(String(cString: ZSTD_getErrorName(r)))") }
        }
        try check(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level))
        let workers = frameWorkers(workers)
        if workers > 1 { try check(ZSTD_CCtx_setParameter(cctx, ZSTD_c_nbWorkers, Int32(workers))) }
        let bound = ZSTD_compressBound(input.count)
        var out = [UInt8](repeating: 0, count: bound)
        let n = out.withUnsafeMutableBytes { o in ZSTD_compress2(cctx, o.baseAddress, bound, input.baseAddress, input.count) }
        try check(n)
        out.removeSubrange(n...)
        return out
    }

    /// One frame written as its input arrives, on `workers` threads (libzstd's own), its
    /// output handed to `sink` a buffer at a time: a large output (an MDS shard) is never
    /// held whole, raw or compressed. The frame states `pledgedSize` as its content size,
    /// which `finish` checks the input filled.
    public final class Stream {
        private let cctx: OpaquePointer
        private var out: UnsafeMutableRawPointer
        private let outSize = 1 << 20
        private let sink: (UnsafeRawBufferPointer) throws -> Void
        private var fed = 0
        private let pledgedSize: Int

        public init(level: Int32, workers: Int, pledgedSize: Int, sink: @escaping (UnsafeRawBufferPointer) throws -> Void) throws {
            guard let c = ZSTD_createCCtx() else { throw TokenmillError.other("zstd: cannot create a compression context") }
            cctx = c
            out = UnsafeMutableRawPointer.allocate(byteCount: outSize, alignment: 16)
            self.sink = sink
            self.pledgedSize = pledgedSize
            try Self.check(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level))
            let workers = Zstd.frameWorkers(workers)
            if workers > 1 { try Self.check(ZSTD_CCtx_setParameter(cctx, ZSTD_c_nbWorkers, Int32(workers))) }
            try Self.check(ZSTD_CCtx_setPledgedSrcSize(cctx, UInt64(pledgedSize)))
        }

        deinit { ZSTD_freeCCtx(cctx); out.deallocate() }

        private static func check(_ r: Int) throws {
            if ZSTD_isError(r) != 0 { throw TokenmillError.other("zstd compression failed: \(String(cString: ZSTD_getErrorName(r)))") }
        }

        public func write(_ bytes: UnsafeRawBufferPointer) throws {
            if bytes.isEmpty { return }
            fed += bytes.count
            var input = ZSTD_inBuffer(src: bytes.baseAddress, size: bytes.count, pos: 0)
            while input.pos < input.size {
                var output = ZSTD_outBuffer(dst: out, size: outSize, pos: 0)
                try Self.check(ZSTD_compressStream2(cctx, &output, &input, ZSTD_e_continue))
                if output.pos > 0 { try sink(UnsafeRawBufferPointer(start: out, count: output.pos)) }
            }
        }

        public func finish() throws {
            guard fed == pledgedSize else { throw TokenmillError.other("zstd: a frame of \(pledgedSize) bytes was given \(fed)") }
            var input = ZSTD_inBuffer(src: nil, size: 0, pos: 0)
            while true {
                var output = ZSTD_outBuffer(dst: out, size: outSize, pos: 0)
                let left = ZSTD_compressStream2(cctx, &output, &input, ZSTD_e_end)
                try Self.check(left)
                if output.pos > 0 { try sink(UnsafeRawBufferPointer(start: out, count: output.pos)) }
                if left == 0 { return }
            }
        }
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
