#if canImport(Glibc)
import Glibc
#endif

/// Little-endian serialization into a byte array (the work folder's files, markers).
public struct ByteWriter {
    public var bytes: [UInt8] = []
    public init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }
    @inline(__always) public mutating func u8(_ v: UInt8) { bytes.append(v) }
    // Fixed-width fields appended as typed buffers: `append(contentsOf:)` of a raw buffer
    // walks it with an iterator (~100 instructions an 8-byte field), of an
    // `UnsafeBufferPointer<UInt8>` it copies (the shape and pack stages write five fields
    // a document on the build's serial path).
    @inline(__always) public mutating func u32(_ v: UInt32) {
        Swift.withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0.bindMemory(to: UInt8.self)) }
    }
    @inline(__always) public mutating func u64(_ v: UInt64) {
        Swift.withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0.bindMemory(to: UInt8.self)) }
    }
    @inline(__always) public mutating func f64(_ v: Double) { u64(v.bitPattern) }
    public mutating func blob(_ b: [UInt8]) { u32(UInt32(b.count)); bytes.append(contentsOf: b) }
    public mutating func raw(_ b: UnsafeRawBufferPointer) { bytes.append(contentsOf: b) }
}

/// Bounds-checked little-endian reads from one of our own files: running off the end is a
/// `corrupt` error naming the file, never a crash.
public struct ByteReader {
    public let bytes: [UInt8]
    public let path: String
    public private(set) var position = 0
    public init(_ bytes: [UInt8], path: String) { self.bytes = bytes; self.path = path }
    public var atEnd: Bool { position >= bytes.count }
    public var remaining: Int { bytes.count - position }

    func need(_ n: Int) throws {
        guard n >= 0, position + n <= bytes.count else {
            throw TokenmillError.corrupt(path: path, message: "truncated record at byte \(position) (needs \(n) more bytes, \(bytes.count - position) left)")
        }
    }
    public mutating func u8() throws -> UInt8 { try need(1); defer { position += 1 }; return bytes[position] }
    public mutating func u32() throws -> UInt32 {
        try need(4); defer { position += 4 }
        return bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: position, as: UInt32.self)) }
    }
    public mutating func u64() throws -> UInt64 {
        try need(8); defer { position += 8 }
        return bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: position, as: UInt64.self)) }
    }
    public mutating func f64() throws -> Double { Double(bitPattern: try u64()) }
    public mutating func blob(max: Int = 1 << 30) throws -> [UInt8] {
        let n = Int(try u32())
        guard n <= max else { throw TokenmillError.corrupt(path: path, message: "length \(n) at byte \(position) is out of bounds") }
        try need(n); defer { position += n }
        return Array(bytes[position..<(position + n)])
    }
}

/// Files of the work folder: written whole under a temporary name and renamed (so a kill
/// leaves either the old state or the new file, never half a file; not fsync'ed: see
/// docs/PIPELINE.md, "Durability"), with a
/// 24-byte trailer — content size, xxh3-64 of the content, magic — that readers check
/// before they trust a byte.
public enum WorkFile {
    static let magic: UInt64 = 0x4B52_4F57_4D4B_5400   // "\0TKMWORK" little-endian
    public static let trailerSize = 24

    public static func trailer(size: Int, checksum: UInt64) -> [UInt8] {
        var w = ByteWriter()
        w.u64(UInt64(size)); w.u64(checksum); w.u64(magic)
        return w.bytes
    }

    public static func write(_ path: String, _ content: [UInt8]) throws {
        var f = try AtomicFileWriter(path: path, durable: false)
        try content.withUnsafeBytes { try f.write($0) }
        let t = trailer(size: content.count, checksum: XXH3.hash64(content))
        try t.withUnsafeBytes { try f.write($0) }
        try f.commit()
    }

    /// The content of a work file, after checking its size and checksum.
    public static func read(_ path: String) throws -> [UInt8] {
        var b = try FileSystem.readFile(path)
        let (size, sum) = try parseTrailer(path, fileSize: b.count, tail: Array(b.suffix(trailerSize)))
        b.removeLast(trailerSize)
        guard b.count == size else { throw TokenmillError.corrupt(path: path, message: "size differs from its trailer") }
        guard XXH3.hash64(b) == sum else {
            throw TokenmillError.corrupt(path: path, message: "checksum mismatch (damaged or changed; rerun the build with --force to start over)")
        }
        return b
    }

    /// (content size, checksum) from a file's last 24 bytes.
    public static func parseTrailer(_ path: String, fileSize: Int, tail: [UInt8]) throws -> (Int, UInt64) {
        guard fileSize >= trailerSize, tail.count == trailerSize else {
            throw TokenmillError.corrupt(path: path, message: "shorter than its trailer (\(fileSize) bytes)")
        }
        var r = ByteReader(tail, path: path)
        let size = Int(try r.u64()), sum = try r.u64(), m = try r.u64()
        guard m == magic, size == fileSize - trailerSize else {
            throw TokenmillError.corrupt(path: path, message: "not a complete work file (bad trailer)")
        }
        return (size, sum)
    }
}

/// A work file written piece by piece (token and signature files grow with a unit), with
/// the same trailer as `WorkFile.write`; buffered so that small appends cost no syscall.
public final class WorkFileWriter {
    var file: AtomicFileWriter
    var buffer: [UInt8] = []
    var sum = XXH3Stream()
    public private(set) var size = 0

    public init(path: String) throws {
        file = try AtomicFileWriter(path: path, durable: false)
        buffer.reserveCapacity(1 << 20)
    }

    public func append(_ b: UnsafeRawBufferPointer) throws {
        sum.update(b)
        size += b.count
        if buffer.count + b.count > (1 << 20) { try flush() }
        if b.count >= (1 << 20) { try file.write(b); return }
        buffer.append(contentsOf: b)
    }

    public func append(_ b: [UInt8]) throws { try b.withUnsafeBytes { try append($0) } }

    func flush() throws {
        if buffer.isEmpty { return }
        try buffer.withUnsafeBytes { try file.write($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Writes the trailer and renames into place; returns the content size.
    public func commit() throws -> Int {
        try flush()
        let t = WorkFile.trailer(size: size, checksum: sum.digest())
        try t.withUnsafeBytes { try file.write($0) }
        try file.commit()
        return size
    }
}

/// Random access to a work file by `pread`: the page cache serves it, so nothing read
/// counts as this process's memory. The size is checked against the trailer at open;
/// every read is bounds-checked.
public final class RandomAccessWorkFile: @unchecked Sendable {
    public let path: String
    let fd: Int32
    public let contentSize: Int

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        self.fd = fd
        guard fd >= 0 else { throw TokenmillError.io(path: path, message: "cannot open for reading (the work folder is incomplete; rerun the stage that writes it)") }
        var st = stat()
        guard fstat(fd, &st) == 0 else { close(fd); throw TokenmillError.io(path: path, message: "cannot stat") }
        let fileSize = Int(st.st_size)
        var tail = [UInt8](repeating: 0, count: WorkFile.trailerSize)
        let descriptor = fd
        if fileSize >= WorkFile.trailerSize {
            let n = tail.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, WorkFile.trailerSize, off_t(fileSize - WorkFile.trailerSize)) }
            if n != WorkFile.trailerSize { tail = [] }
        }
        do { contentSize = try WorkFile.parseTrailer(path, fileSize: fileSize, tail: tail).0 } catch { close(fd); throw error }
    }

    /// Reads `count` bytes at `offset` into `into` (appended).
    public func read(offset: Int, count: Int, into out: UnsafeMutableRawPointer) throws {
        guard offset >= 0, count >= 0, offset + count <= contentSize else {
            throw TokenmillError.corrupt(path: path, message: "read of \(count) bytes at \(offset) is past its end (\(contentSize))")
        }
        var done = 0
        while done < count {
            let n = pread(fd, out + done, count - done, off_t(offset + done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw TokenmillError.io(path: path, message: "read failed") }
            done += n
        }
    }

    public func read(offset: Int, count: Int) throws -> [UInt8] {
        var b = [UInt8](repeating: 0, count: count)
        try b.withUnsafeMutableBytes { if count > 0 { try read(offset: offset, count: count, into: $0.baseAddress!) } }
        return b
    }

    deinit { close(fd) }
}

/// A work file with a streamed body followed by whole sections, so that one unit of work
/// writes one file rather than one a summary (every file a build creates costs an inode
/// allocation and a rename, and two workers creating files in one folder contend for its
/// lock: on an unjournaled ext4, with earlier builds' files recently deleted, creating
/// them was ~10% of a two-thread build). Content layout, before the usual trailer:
/// `[body][section 0][section 1]…[table: per section offset u64, size u64]
/// [section count u64][magic u64]`. A reader trusts nothing: the table's bounds are
/// checked against the content and every read against its section. (Sections are read
/// in slices, so a section that needs a checksum carries its own per slice, as the exact
/// keys do.)
public enum SectionedWorkFile {
    static let magic: UInt64 = 0x3154_4345_5353_4D4B   // "KMSSECT1" little-endian

    /// Appends `sections` and their table to `writer` (whose body is written); the caller
    /// commits it.
    public static func appendSections(_ writer: WorkFileWriter, _ sections: [[UInt8]]) throws {
        var table = ByteWriter(capacity: sections.count * 16 + 16)
        var at = writer.size
        for s in sections {
            try writer.append(s)
            table.u64(UInt64(at)); table.u64(UInt64(s.count))
            at += s.count
        }
        table.u64(UInt64(sections.count)); table.u64(magic)
        try writer.append(table.bytes)
    }
}

/// One section of a `SectionedWorkFile`: reads by `pread`, bounds-checked to the section.
public final class WorkFileSection: @unchecked Sendable {
    public let file: RandomAccessWorkFile
    /// The file's path and the section's name, for errors.
    public let path: String
    let base: Int
    public let size: Int

    public convenience init(path: String, index: Int, name: String) throws {
        try self.init(file: try RandomAccessWorkFile(path: path), index: index, name: name)
    }

    public init(file: RandomAccessWorkFile, index: Int, name: String) throws {
        self.file = file
        path = "\(file.path) (\(name))"
        let n = file.contentSize
        guard n >= 16 else { throw TokenmillError.corrupt(path: path, message: "no section table") }
        var tail = ByteReader(try file.read(offset: n - 16, count: 16), path: path)
        let count = Int(try tail.u64()), m = try tail.u64()
        guard m == SectionedWorkFile.magic, count >= 0, count <= 64, count * 16 + 16 <= n else {
            throw TokenmillError.corrupt(path: path, message: "not a sectioned work file (bad section table)")
        }
        guard index < count else { throw TokenmillError.corrupt(path: path, message: "section \(index) of \(count)") }
        let tableAt = n - 16 - count * 16
        var t = ByteReader(try file.read(offset: tableAt + index * 16, count: 16), path: path)
        let at = Int(try t.u64()), size = Int(try t.u64())
        guard at >= 0, size >= 0, at <= tableAt, size <= tableAt - at else {
            throw TokenmillError.corrupt(path: path, message: "section \(index) at \(at) of \(size) bytes is outside the file")
        }
        base = at
        self.size = size
    }

    public func read(offset: Int, count: Int, into out: UnsafeMutableRawPointer) throws {
        guard offset >= 0, count >= 0, offset <= size, count <= size - offset else {
            throw TokenmillError.corrupt(path: path, message: "read of \(count) bytes at \(offset) is past its end (\(size))")
        }
        try file.read(offset: base + offset, count: count, into: out)
    }

    public func read(offset: Int, count: Int) throws -> [UInt8] {
        var b = [UInt8](repeating: 0, count: count)
        try b.withUnsafeMutableBytes { if count > 0 { try read(offset: offset, count: count, into: $0.baseAddress!) } }
        return b
    }
}
