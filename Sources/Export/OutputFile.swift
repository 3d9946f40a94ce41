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

    /// Token ids as little-endian integers of `width` bytes (2 or 4). The shard reader has
    /// checked every id against the vocabulary, which the width was chosen to hold.
    func writeTokens(_ ids: [UInt32], width: Int) throws {
        if width == 4 {
            try ids.withUnsafeBytes { try write($0) }   // the hosts Swift runs on are little-endian
            return
        }
        precondition(width == 2)
        var narrow = [UInt16](repeating: 0, count: ids.count)
        for i in 0..<ids.count {
            guard ids[i] <= 0xFFFF else { throw TokenmillError.unsupported("\(path): token id \(ids[i]) does not fit 2 bytes") }
            narrow[i] = UInt16(truncatingIfNeeded: ids[i])
        }
        try narrow.withUnsafeBytes { try write($0) }
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
