#if canImport(Glibc)
import Glibc
#endif
import TokenmillCore

/// Hands out whole-line chunks of a mapped file in order.
final class ChunkCursor: @unchecked Sendable {
    let lock = NSLockLite()
    let base: UnsafePointer<UInt8>
    let n: Int
    var position = 0, index = 0
    var stopped = false

    init(_ base: UnsafePointer<UInt8>, _ n: Int) { self.base = base; self.n = n }

    func next() -> (Int, Range<Int>)? {
        lock.lock(); defer { lock.unlock() }
        guard !stopped, position < n else { return nil }
        let s = position
        var e = min(n, s + EncodeCommand.chunkSize)
        if e < n, let nl = memchr(base + e - 1, 0x0A, n - e + 1) {
            e = UnsafeRawPointer(nl) - UnsafeRawPointer(base) + 1
        } else {
            e = n
        }
        position = e
        index += 1
        return (index - 1, s..<e)
    }

    func stop() { lock.lock(); stopped = true; lock.unlock() }
}

/// A pipe or stdin in blocks of whole lines, read into one reused buffer: a block ends
/// after the last `\n` within `blockSize` bytes (or runs on to the next `\n`, for a longer
/// line: the buffer grows); the rest starts the next block. (A regular file is mapped
/// instead: `EncodeCommand.encodeMapped`.)
final class BlockInput {
    let path: String
    static let blockSize = 8 << 20
    let fd: Int32
    var buffer: UnsafeMutablePointer<UInt8>
    var capacity: Int
    /// `[0, consumed)` handed out as the last block, `[consumed, filled)` carried.
    var filled = 0
    var consumed = 0
    var eof = false

    init(_ path: String) throws {
        self.path = path
        if path == "-" {
            fd = dup(0)
        } else {
            fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw TokenmillError.io(path: path, message: "cannot open for reading") }
            var st = stat()
            if fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR {
                close(fd)
                throw TokenmillError.io(path: path, message: "is a directory, expected a file")
            }
        }
        capacity = BlockInput.blockSize
        buffer = .allocate(capacity: capacity)
    }

    deinit { close(fd); buffer.deallocate() }

    /// The next block, valid until the next call; nil at the end of the input.
    func nextBlock() throws -> (UnsafePointer<UInt8>, Int)? {
        // Move the carried partial line to the front.
        let carry = filled - consumed
        if consumed > 0 && carry > 0 { memmove(buffer, buffer + consumed, carry) }
        filled = carry
        consumed = 0
        while true {
            let searchFrom = filled
            while !eof && filled < capacity {
                let n = read(fd, buffer + filled, capacity - filled)
                if n < 0 { if errno == EINTR { continue }; throw TokenmillError.io(path: path, message: "read failed") }
                if n == 0 { eof = true; break }
                filled += n
            }
            if eof {
                if filled == 0 { return nil }
                consumed = filled
                return (UnsafePointer(buffer), filled)
            }
            // The block ends after its last newline (only the new bytes can hold one: the
            // carried ones are what followed the previous block's last newline); with
            // none, the line is longer than the buffer: grow it and read on.
            var last = filled - 1
            while last >= searchFrom && buffer[last] != 0x0A { last -= 1 }
            if last >= searchFrom {
                consumed = last + 1
                return (UnsafePointer(buffer), consumed)
            }
            let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: 2 * capacity)
            bigger.update(from: buffer, count: filled)
            buffer.deallocate()
            buffer = bigger
            capacity *= 2
        }
    }
}
