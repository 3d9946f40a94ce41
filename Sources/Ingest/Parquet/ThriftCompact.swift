/// Thrift's compact protocol, the encoding of Parquet's footer and page headers.
///
/// Only what Parquet needs, read from untrusted bytes: every read is bounds-checked,
/// every field's wire type is checked against what the reader expects, lengths are
/// checked against the bytes left before anything is allocated, and skipping unknown
/// fields stops at a fixed nesting depth. A problem is a `ParquetError`, never a trap.
struct ThriftReader {
    /// Compact-protocol wire types.
    enum WireType: UInt8 {
        case stop = 0, boolTrue = 1, boolFalse = 2, byte = 3, i16 = 4, i32 = 5, i64 = 6
        case double = 7, binary = 8, list = 9, set = 10, map = 11, structure = 12
    }

    let bytes: UnsafeBufferPointer<UInt8>
    private(set) var position: Int
    let end: Int
    /// Where a message should say the bytes are ("footer", "page header").
    let what: String

    init(_ bytes: UnsafeBufferPointer<UInt8>, start: Int, end: Int, what: String) {
        self.bytes = bytes; self.position = start; self.end = end; self.what = what
    }

    func fail(_ message: String) -> ParquetError { ParquetError("\(what): \(message)") }

    mutating func byte() throws(ParquetError) -> UInt8 {
        guard position < end else { throw fail("ends early (truncated or damaged)") }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func varint() throws(ParquetError) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try byte()
            value |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return value }
            shift += 7
            if shift > 63 { throw fail("varint longer than 10 bytes") }
        }
    }

    mutating func zigzag() throws(ParquetError) -> Int64 {
        let v = try varint()
        return Int64(bitPattern: (v >> 1) ^ (0 &- (v & 1)))
    }

    /// The next field of a struct: nil at its end. `last` carries the previous field id
    /// (ids are sent as deltas).
    mutating func field(last: inout Int16) throws(ParquetError) -> (id: Int16, type: WireType)? {
        let header = try byte()
        if header == 0 { return nil }
        guard let type = WireType(rawValue: header & 0x0F), type != .stop else { throw fail("unknown field type \(header & 0x0F)") }
        let delta = header >> 4
        if delta != 0 {
            last = last &+ Int16(delta)
        } else {
            let id = try zigzag()
            guard id >= Int64(Int16.min) && id <= Int64(Int16.max) else { throw fail("field id out of range") }
            last = Int16(id)
        }
        return (last, type)
    }

    func expect(_ type: WireType, _ wanted: WireType, _ name: String) throws(ParquetError) {
        if type != wanted { throw fail("\(name) has wire type \(type), expected \(wanted)") }
    }

    mutating func i32(_ type: WireType, _ name: String) throws(ParquetError) -> Int32 {
        try expect(type, .i32, name)
        let v = try zigzag()
        guard v >= Int64(Int32.min) && v <= Int64(Int32.max) else { throw fail("\(name) out of range") }
        return Int32(v)
    }

    mutating func i64(_ type: WireType, _ name: String) throws(ParquetError) -> Int64 {
        try expect(type, .i64, name)
        return try zigzag()
    }

    mutating func bool(_ type: WireType, _ name: String) throws(ParquetError) -> Bool {
        switch type {
        case .boolTrue: return true
        case .boolFalse: return false
        default: throw fail("\(name) has wire type \(type), expected a boolean")
        }
    }

    /// A binary/string field's bytes, as a range of the buffer.
    mutating func binary(_ type: WireType, _ name: String) throws(ParquetError) -> Range<Int> {
        try expect(type, .binary, name)
        return try binaryBody()
    }

    mutating func binaryBody() throws(ParquetError) -> Range<Int> {
        let n = try varint()
        guard n <= UInt64(end - position) else { throw fail("a string of \(n) bytes runs past the end") }
        let r = position..<(position + Int(n))
        position += Int(n)
        return r
    }

    mutating func string(_ type: WireType, _ name: String) throws(ParquetError) -> String {
        let r = try binary(type, name)
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[r]), as: UTF8.self)
    }

    /// A list header: element count and type. The count is checked against the bytes
    /// left (every element takes at least one byte, booleans included), so a damaged
    /// count cannot make a caller reserve gigabytes.
    mutating func list(_ type: WireType, _ name: String) throws(ParquetError) -> (count: Int, element: WireType) {
        guard type == .list || type == .set else { throw fail("\(name) has wire type \(type), expected a list") }
        return try listHeader()
    }

    mutating func listHeader() throws(ParquetError) -> (count: Int, element: WireType) {
        let h = try byte()
        guard let element = WireType(rawValue: h & 0x0F) else { throw fail("unknown list element type \(h & 0x0F)") }
        var count = UInt64(h >> 4)
        if count == 15 { count = try varint() }
        guard count <= UInt64(end - position) else { throw fail("a list of \(count) elements runs past the end") }
        return (Int(count), element)
    }

    /// Reads a struct, handing each field to `body`; fields it does not take (returns
    /// false) are skipped, as Thrift's evolution rules require.
    mutating func readStruct(depth: Int = 0, _ body: (inout ThriftReader, Int16, WireType) throws(ParquetError) -> Bool) throws(ParquetError) {
        if depth > Self.maxDepth { throw fail("structs nested deeper than \(Self.maxDepth)") }
        var last: Int16 = 0
        while let (id, type) = try field(last: &last) {
            if try !body(&self, id, type) { try skip(type, depth: depth + 1) }
        }
    }

    mutating func structure(_ type: WireType, _ name: String, depth: Int = 0,
                            _ body: (inout ThriftReader, Int16, WireType) throws(ParquetError) -> Bool) throws(ParquetError) {
        try expect(type, .structure, name)
        try readStruct(depth: depth, body)
    }

    static let maxDepth = 32

    mutating func skip(_ type: WireType, depth: Int) throws(ParquetError) {
        if depth > Self.maxDepth { throw fail("values nested deeper than \(Self.maxDepth)") }
        switch type {
        case .stop: throw fail("unexpected stop marker")
        case .boolTrue, .boolFalse: return
        case .byte: _ = try byte()
        case .i16, .i32, .i64: _ = try varint()
        case .double:
            guard end - position >= 8 else { throw fail("ends early (truncated or damaged)") }
            position += 8
        case .binary: _ = try binaryBody()
        case .list, .set:
            let (n, element) = try listHeader()
            for _ in 0..<n {
                // Booleans in a list take one byte each.
                if element == .boolTrue || element == .boolFalse { _ = try byte() } else { try skip(element, depth: depth + 1) }
            }
        case .map:
            let n = try varint()
            guard n <= UInt64(end - position) else { throw fail("a map of \(n) entries runs past the end") }
            if n == 0 { return }
            let kv = try byte()
            guard let k = WireType(rawValue: kv >> 4), let v = WireType(rawValue: kv & 0x0F) else { throw fail("unknown map types") }
            for _ in 0..<n {
                if k == .boolTrue || k == .boolFalse { _ = try byte() } else { try skip(k, depth: depth + 1) }
                if v == .boolTrue || v == .boolFalse { _ = try byte() } else { try skip(v, depth: depth + 1) }
            }
        case .structure:
            try readStruct(depth: depth + 1) { _, _, _ throws(ParquetError) in false }
        }
    }
}

/// Something wrong inside a Parquet file; the reader adds the file, row group and column.
struct ParquetError: Error {
    var message: String
    /// A valid file using something the reader does not do (a codec, an encoding), as
    /// opposed to a damaged one: the message says how to rewrite the file instead.
    var unsupported = false
    init(_ message: String, unsupported: Bool = false) { self.message = message; self.unsupported = unsupported }
}
