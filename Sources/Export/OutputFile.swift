#if canImport(Glibc)
import Glibc
#endif
import TokenmillCore

/// An export file written through a buffer and committed atomically (temporary name,
/// fsync, rename): a killed export never leaves a file that looks whole.
final class OutputFile {
    private var file: AtomicFileWriter
    private var buffer: [UInt8] = []
    private let limit = 4 << 20
    private(set) var size = 0
    let path: String

    init(_ path: String) throws {
        self.path = path
        file = try AtomicFileWriter(path: path)
        buffer.reserveCapacity(limit)
    }

    func write(_ b: UnsafeRawBufferPointer) throws {
        size += b.count
        if buffer.count + b.count > limit { try flush() }
        if b.count >= limit { try file.write(b); return }
        buffer.append(contentsOf: b)
    }

    func write(_ b: [UInt8]) throws { try b.withUnsafeBytes { try write($0) } }

    /// Appends the ranges handed to `add` with as few system calls as their count allows
    /// (`writev`, up to 1,024 ranges a call), without copying them into the buffer. A
    /// range must stay valid until the next `send()` (which `add` may also call).
    func gather() throws -> Gather {
        try flush()
        return Gather(self)
    }

    final class Gather {
        let out: OutputFile
        var pending: [iovec] = []
        init(_ out: OutputFile) { self.out = out; pending.reserveCapacity(1024) }

        func add(_ range: UnsafeRawBufferPointer) throws {
            if range.isEmpty { return }
            out.size += range.count
            pending.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: range.baseAddress!), iov_len: range.count))
            if pending.count == 1024 { try send() }
        }

        func send() throws {
            if pending.isEmpty { return }
            try out.file.write(gathering: pending)
            pending.removeAll(keepingCapacity: true)
        }
    }

    /// Little-endian integers of `width` bytes (1, 2, 4 or 8), checked to fit.
    func write<T: FixedWidthInteger>(_ values: some Collection<T>, width: Int) throws {
        var out = [UInt8](repeating: 0, count: values.count * width)
        try out.withUnsafeMutableBytes { raw in
            var o = 0
            for v in values {
                let x = Int64(v)
                switch width {
                case 1:
                    guard x >= 0 && x <= 0xFF else { throw TokenmillError.unsupported("\(path): value \(x) does not fit 1 byte") }
                    raw[o] = UInt8(x)
                case 2:
                    guard x >= 0 && x <= 0xFFFF else { throw TokenmillError.unsupported("\(path): value \(x) does not fit 2 bytes") }
                    raw.storeBytes(of: UInt16(x).littleEndian, toByteOffset: o, as: UInt16.self)
                case 4:
                    guard x >= Int64(Int32.min) && x <= Int64(UInt32.max) else { throw TokenmillError.unsupported("\(path): value \(x) does not fit 4 bytes") }
                    raw.storeBytes(of: UInt32(truncatingIfNeeded: x).littleEndian, toByteOffset: o, as: UInt32.self)
                default:
                    raw.storeBytes(of: UInt64(bitPattern: x).littleEndian, toByteOffset: o, as: UInt64.self)
                }
                o += width
            }
        }
        try write(out)
    }

    /// Positioned output: a writer that hands windows to the workers reserves each
    /// batch's bytes in order on one thread (`reserve`), then the workers write them at
    /// once (`write(_:at:)`, pwrite). A file is written one way or the other, not both.
    func reserve(_ count: Int) -> Int {
        let at = size
        size += count
        return at
    }

    func write(_ b: UnsafeRawBufferPointer, at offset: Int) throws { try file.write(b, at: offset) }

    /// Starts writing to disk what was written since the last call (positioned writes,
    /// or appended ones, whose buffer is flushed first); `commit` then waits for less.
    ///
    /// The range started one window earlier is then waited for and dropped from the page
    /// cache (drop-behind): an export of any size holds two windows of dirty pages, and
    /// reuses the same physical pages window after window. Filling fresh page-cache pages
    /// was what made `hf` exports (875 MB) take 0.8-1.9 s on the same machine: the copy
    /// into newly allocated pages ran at 1-8 GB/s depending on which pages it got.
    private var writebackStart = 0
    private var dropPending: Range<Int>?
    func startWriteback() throws {
        try flush()
        if let previous = dropPending { file.dropWritten(previous) }
        file.startWriteback(writebackStart..<size)
        dropPending = writebackStart..<size
        writebackStart = size
    }

    /// Token ids as little-endian integers of `width` bytes (2 or 4), at `offset`. The
    /// shard reader has checked every id against the vocabulary, which the width was
    /// chosen to hold.
    func writeTokens(_ ids: [UInt32], width: Int, at offset: Int) throws {
        try Self.tokenBytes(ids, width: width, path: path) { try write($0, at: offset) }
    }

    /// `ids` as little-endian integers of `width` bytes, handed to `body`.
    static func tokenBytes(_ ids: [UInt32], width: Int, path: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        if width == 4 {
            try ids.withUnsafeBytes(body)   // the hosts Swift runs on are little-endian
            return
        }
        precondition(width == 2)
        var highest: UInt32 = 0
        for v in ids { highest = max(highest, v) }
        guard highest <= 0xFFFF else { throw TokenmillError.unsupported("\(path): token id \(highest) does not fit 2 bytes") }
        let narrow = [UInt16](unsafeUninitializedCapacity: ids.count) { n, count in
            for i in 0..<ids.count { n[i] = UInt16(truncatingIfNeeded: ids[i]) }
            count = ids.count
        }
        try narrow.withUnsafeBytes(body)
    }

    private func flush() throws {
        if buffer.isEmpty { return }
        try buffer.withUnsafeBytes { try file.write($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    func commit() throws {
        try flush()
        try file.commit()
    }
}

/// Byte buffers that workers borrow and give back: a writer that builds each batch's
/// bytes before writing them reuses a few buffers (one a worker at most) instead of
/// allocating, and having the kernel fault in and zero, tens of MB a batch.
final class BufferPool: @unchecked Sendable {
    private let lock = NSLockLite()
    private var free: [(base: UnsafeMutableRawPointer, capacity: Int)] = []

    /// Runs `body` with a buffer of at least `size` bytes (16-byte aligned, contents
    /// undefined), which it must not keep.
    func with<R>(_ size: Int, _ body: (UnsafeMutableRawPointer) throws -> R) rethrows -> R {
        var b = take(size)
        if b.capacity < size {
            b.base.deallocate()
            b = (UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16), size)
        }
        defer { give(b) }
        return try body(b.base)
    }

    private func take(_ size: Int) -> (base: UnsafeMutableRawPointer, capacity: Int) {
        lock.lock(); defer { lock.unlock() }
        // The largest free one, so buffers grow to the batch size once and stay there.
        guard let i = free.indices.max(by: { free[$0].capacity < free[$1].capacity }) else {
            return (UnsafeMutableRawPointer.allocate(byteCount: max(size, 1), alignment: 16), max(size, 1))
        }
        return free.remove(at: i)
    }

    private func give(_ b: (base: UnsafeMutableRawPointer, capacity: Int)) {
        lock.lock(); defer { lock.unlock() }
        free.append(b)
    }

    deinit { for b in free { b.base.deallocate() } }
}
