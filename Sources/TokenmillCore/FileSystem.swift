import CIntrinsics
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Every file-system call Tokenmill makes, wrapped once: C error codes become
/// `TokenmillError.io` here and nowhere else (swift-system's habit).
public enum FileSystem {
    /// The whole file as bytes. Inputs are read whole per file for now (see README limits).
    public static func readFile(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ioError(path, "cannot open for reading") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ioError(path, "cannot stat") }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw TokenmillError.io(path: path, message: "is a directory, expected a file") }
        // Read straight into the array's storage (no zero-filled staging buffer: a 1 MiB
        // memset per call dominated builds that read many small work files); a file that
        // grows while read is read on to its end.
        let size = max(Int(st.st_size), 0)
        var result = try [UInt8](unsafeUninitializedCapacity: size) { buf, count in
            count = 0
            while count < size {
                let n = read(fd, buf.baseAddress! + count, size - count)
                if n < 0 { if errno == EINTR { continue }; throw ioError(path, "read failed") }
                if n == 0 { break }
                count += n
            }
        }
        if result.count == size {
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 { if errno == EINTR { continue }; throw ioError(path, "read failed") }
                if n == 0 { break }
                result.append(contentsOf: chunk[0..<n])
            }
        }
        return result
    }

    /// Maps a file read-only (see `MappedFile`).
    public static func map(_ path: String, populate: Bool = true) throws -> MappedFile { try MappedFile(path, populate: populate) }

    public static func fileExists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    public static func fileSize(_ path: String) throws -> Int {
        var st = stat()
        guard stat(path, &st) == 0 else { throw ioError(path, "cannot stat") }
        return Int(st.st_size)
    }

    /// `mkdir -p`.
    public static func makeDirectories(_ path: String) throws {
        if path.isEmpty || isDirectory(path) { return }
        let parent = dirname(of: path)
        if parent != path && !parent.isEmpty { try makeDirectories(parent) }
        if mkdir(path, 0o755) != 0 && errno != EEXIST { throw ioError(path, "cannot create directory") }
    }

    public static func remove(_ path: String) {
        _ = unlink(path)
    }

    public static func listDirectory(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw ioError(path, "cannot list directory") }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw -> String in
                let bytes = raw.bindMemory(to: UInt8.self)
                let len = bytes.firstIndex(of: 0) ?? bytes.count
                return String(decoding: UnsafeBufferPointer(rebasing: bytes[0..<len]), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Writes `bytes` to `path` so that the file appears under its final name only when
    /// complete: write to `.NAME.tmp` beside it, fsync, rename, fsync the directory.
    public static func writeAtomically(_ path: String, _ bytes: [UInt8]) throws {
        var w = try AtomicFileWriter(path: path)
        try bytes.withUnsafeBytes { try w.write($0) }
        try w.commit()
    }

    /// Removes the temporary files that writers killed mid-write left in `dir` (hidden
    /// names ending in `.tmp`). Only safe while no other writer works in `dir`.
    public static func removeStaleTemporaries(_ dir: String) {
        for name in (try? listDirectory(dir)) ?? [] where name.hasPrefix(".") && name.hasSuffix(".tmp") {
            remove(join(dir, name))
        }
    }

    /// Paths matching a shell glob (`*`, `?`, `[...]`), sorted; the pattern itself when it
    /// has no wildcard.
    public static func glob(_ pattern: String) throws -> [String] {
        if !pattern.contains(where: { $0 == "*" || $0 == "?" || $0 == "[" }) { return [pattern] }
        var g = glob_t()
        defer { globfree(&g) }
        let rc = Glibc.glob(pattern, 0, nil, &g)
        if rc == GLOB_NOMATCH { return [] }
        guard rc == 0 else { throw TokenmillError.io(path: pattern, message: "glob failed") }
        var out: [String] = []
        for i in 0..<Int(g.gl_pathc) {
            if let p = g.gl_pathv[i] { out.append(String(cString: p)) }
        }
        return out.sorted()
    }

    public static func dirname(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    public static func basename(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    public static func join(_ a: String, _ b: String) -> String {
        if b.hasPrefix("/") || a.isEmpty || a == "." { return b }
        return a.hasSuffix("/") ? a + b : a + "/" + b
    }

    static func ioError(_ path: String, _ what: String) -> TokenmillError {
        let code = errno
        let reason = String(cString: strerror(code))
        if code == ENOSPC || code == EDQUOT {
            return .io(path: path, message: "\(what): \(reason) (free space and run the same command again: finished units are kept and only the rest is redone)")
        }
        return .io(path: path, message: "\(what): \(reason)")
    }

    /// Bytes free for an unprivileged writer on the filesystem holding `path` (nil when unknown).
    public static func freeBytes(_ path: String) -> Int? {
        var st = statvfs()
        guard statvfs(path, &st) == 0 else { return nil }
        return Int(st.f_bavail) &* Int(st.f_frsize)
    }

    /// Size and modification time (ns) of a file, for fingerprints of inputs.
    public static func sizeAndMTime(_ path: String) throws -> (Int, Int) {
        var st = stat()
        guard stat(path, &st) == 0 else { throw ioError(path, "cannot stat") }
        return (Int(st.st_size), Int(st.st_mtim.tv_sec) * 1_000_000_000 + Int(st.st_mtim.tv_nsec))
    }

    public static func rename(_ from: String, _ to: String) throws {
        guard Glibc.rename(from, to) == 0 else { throw ioError(from, "cannot rename to \(to)") }
    }

    /// Removes a directory and everything below it (no symlinks followed).
    /// Removes a folder tree, unlinking its files on `threads` workers: the kernel frees a
    /// deleted file's cached pages after it has let go of the folder, so unlinks of large
    /// work files overlap (the work folder is removed at the end of every build).
    public static func removeTree(_ path: String, threads: Int) {
        var files: [String] = [], dirs: [String] = []
        func walk(_ p: String) {
            var st = stat()
            guard lstat(p, &st) == 0 else { return }
            if (st.st_mode & S_IFMT) == S_IFDIR {
                for name in (try? listDirectory(p)) ?? [] { walk(join(p, name)) }
                dirs.append(p)
            } else {
                files.append(p)
            }
        }
        walk(path)
        _ = try? parallelBatches(count: files.count, threads: threads, batchSize: 16) { range in
            for k in range { unlink(files[k]) }
        }
        for d in dirs { rmdir(d) }   // children before parents (post-order)
    }

    public static func removeTree(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            for name in (try? listDirectory(path)) ?? [] { removeTree(join(path, name)) }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    public static func currentDirectory() -> String {
        var buf = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buf, buf.count) != nil else { return "." }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public static var isTerminal: Bool { isatty(2) != 0 }

    public static func writeStderr(_ s: String) {
        var line = s
        if !line.hasSuffix("\n") { line += "\n" }
        var bytes = Array(line.utf8)
        bytes.withUnsafeMutableBytes { _ = write(2, $0.baseAddress, $0.count) }
    }

    /// Without a newline added (live progress lines).
    public static func writeStderrRaw(_ s: String) {
        var bytes = Array(s.utf8)
        bytes.withUnsafeMutableBytes { _ = write(2, $0.baseAddress, $0.count) }
    }

    /// Writes to standard output; a failed write (disk full, a closed pipe with SIGPIPE
    /// ignored) ends the process with the I/O error's message and exit status (74) rather
    /// than losing output silently.
    public static func writeStdout(_ bytes: UnsafeRawBufferPointer) {
        let e = writeStdout(gathering: [bytes])
        if e != 0 {
            let failure = TokenmillError.io(path: "<stdout>", message: "cannot write the output: \(String(cString: strerror(e)))")
            writeStderr("tokenmill: " + failure.description)
            exit(failure.exitCode)
        }
    }

    /// Writes the parts to standard output in order, in as few `writev` calls as the kernel
    /// allows; 0, or the errno of the write that failed.
    public static func writeStdout(gathering parts: [UnsafeRawBufferPointer]) -> Int32 {
        var iov = parts.filter { $0.count > 0 }.map { iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress), iov_len: $0.count) }
        var first = 0
        while first < iov.count {
            let count = Int32(min(iov.count - first, 1024))
            let n = iov.withUnsafeMutableBufferPointer { Glibc.writev(1, $0.baseAddress! + first, count) }
            if n < 0 { if errno == EINTR { continue }; return errno }
            if n == 0 { return EIO }
            var left = n
            while first < iov.count && left >= iov[first].iov_len { left -= iov[first].iov_len; first += 1 }
            if left > 0 {
                iov[first].iov_base += left
                iov[first].iov_len -= left
            }
        }
        return 0
    }
}

/// A file written under a temporary name and renamed into place by `commit()`; dropped
/// without commit, the temporary file is removed.
///
/// The temporary name is unique to the writer (`.NAME.<pid>-<n>.tmp`): tasks of one stage
/// running at once may write the same file (every scan task writes the work folder's
/// manifest, with the same bytes), and with a shared name one task's rename would take
/// the other's file away from under it. Files a killed process left are removed by the
/// finish stage and by a fresh build (`FileSystem.removeStaleTemporaries`).
public struct AtomicFileWriter: ~Copyable {
    private static let counterLock = NSLockLite()
    nonisolated(unsafe) private static var counter = 0
    static func uniqueSuffix() -> String {
        counterLock.lock(); counter += 1; let n = counter; counterLock.unlock()
        return "\(getpid())-\(n).tmp"
    }

    public let path: String
    let tmpPath: String
    var fd: Int32
    public private(set) var bytesWritten: Int = 0

    /// fsync before the rename (and the directory after it). Work files are written
    /// without: docs/PIPELINE.md, "Durability".
    let durable: Bool

    public init(path: String, durable: Bool = true) throws {
        self.path = path
        self.durable = durable
        let dir = FileSystem.dirname(of: path)
        tmpPath = FileSystem.join(dir, "." + FileSystem.basename(of: path) + "." + Self.uniqueSuffix())
        fd = open(tmpPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileSystem.ioError(tmpPath, "cannot create") }
    }

    public mutating func write(_ bytes: UnsafeRawBufferPointer) throws {
        var off = 0
        while off < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + off, bytes.count - off)
            if n < 0 {
                if errno == EINTR { continue }
                throw FileSystem.ioError(tmpPath, "write failed")
            }
            off += n
        }
        bytesWritten += bytes.count
    }

    /// Writes the ranges in order (writev), whatever the kernel takes per call.
    public mutating func write(gathering ranges: [iovec]) throws {
        var iov = ranges
        var first = 0
        var total = 0
        for r in ranges { total += r.iov_len }
        while first < iov.count {
            let n = iov.withUnsafeBufferPointer { Glibc.writev(fd, $0.baseAddress! + first, Int32(iov.count - first)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw FileSystem.ioError(tmpPath, "write failed")
            }
            // Drops what was written: whole ranges, then the front of a partial one.
            var left = n
            while first < iov.count && left >= iov[first].iov_len { left -= iov[first].iov_len; first += 1 }
            if left > 0 {
                iov[first].iov_base += left
                iov[first].iov_len -= left
            }
        }
        bytesWritten += total
    }

    /// Writes `bytes` at `offset` without moving the file position (pwrite): callers on
    /// several threads may write disjoint ranges at once. `bytesWritten` does not count
    /// these (it is not shared state).
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws {
        var off = 0
        while off < bytes.count {
            let n = Glibc.pwrite(fd, bytes.baseAddress! + off, bytes.count - off, off_t(offset + off))
            if n < 0 {
                if errno == EINTR { continue }
                throw FileSystem.ioError(tmpPath, "write failed")
            }
            off += n
        }
    }

    /// Asks the kernel to start writing `range` to disk now, without waiting
    /// (sync_file_range, SYNC_FILE_RANGE_WRITE): a large file's `commit` then waits for
    /// the last of its bytes, not all of them. Only a hint; failures are ignored.
    public func startWriteback(_ range: Range<Int>) {
        if range.isEmpty || !durable { return }
        _ = tm_start_writeback(fd, Int64(range.lowerBound), Int64(range.count))
    }

    /// Waits for a range whose writeback was started to reach the disk, then lets the
    /// kernel drop its pages. A hint as well: a failed write still fails `commit`'s fsync.
    public func dropWritten(_ range: Range<Int>) {
        if range.isEmpty || !durable { return }
        _ = tm_drop_written(fd, Int64(range.lowerBound), Int64(range.count))
    }

    /// Once only: the writer is spent afterwards (its descriptor is closed).
    public mutating func commit() throws {
        precondition(fd >= 0, "commit() called twice")
        if durable { guard fsync(fd) == 0 else { throw FileSystem.ioError(tmpPath, "fsync failed") } }
        guard close(fd) == 0 else { fd = -1; throw FileSystem.ioError(tmpPath, "close failed") }
        fd = -1
        guard rename(tmpPath, path) == 0 else { throw FileSystem.ioError(path, "rename failed") }
        if !durable { return }
        let dirfd = open(FileSystem.dirname(of: path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirfd >= 0 { _ = fsync(dirfd); close(dirfd) }
    }

    deinit {
        if fd >= 0 {
            close(fd)
            unlink(tmpPath)
        }
    }
}

/// A file mapped read-only: an input is read where it lies in the page cache instead of
/// being copied into the heap, so a large file costs no heap memory of its own and no
/// copy. Unmapped when released; records copy what they keep. (A file truncated by
/// another process while mapped would fault: inputs must not change during a build.)
public final class MappedFile: @unchecked Sendable {
    public let bytes: UnsafeBufferPointer<UInt8>

    init(_ path: String, populate: Bool = true) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileSystem.ioError(path, "cannot open for reading") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw FileSystem.ioError(path, "cannot stat") }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw TokenmillError.io(path: path, message: "is a directory, expected a file") }
        let size = Int(st.st_size)
        if size == 0 { bytes = UnsafeBufferPointer(start: nil, count: 0); return }
        // MAP_POPULATE: the pages are read in one go rather than faulted in one by one.
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE | (populate ? MAP_POPULATE : 0), fd, 0), p != MAP_FAILED else {
            throw FileSystem.ioError(path, "cannot map for reading")
        }
        bytes = UnsafeBufferPointer(start: p.assumingMemoryBound(to: UInt8.self), count: size)
    }

    /// Drops the pages wholly inside `range` from this process's memory (they stay in the
    /// page cache, and come back if read again): a reader done with part of a large file
    /// releases it, so the mapped pages it touched stop counting as its resident memory.
    public func release(_ range: Range<Int>) {
        guard let base = bytes.baseAddress, !range.isEmpty else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let lo = (range.lowerBound + page - 1) / page * page, hi = min(bytes.count, range.upperBound) / page * page
        if lo < hi { _ = madvise(UnsafeMutableRawPointer(mutating: base + lo), hi - lo, MADV_DONTNEED) }
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }
}
