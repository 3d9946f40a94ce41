/// Parquet's footer (`FileMetaData`) and page headers, decoded from Thrift compact bytes
/// (field ids from parquet-format's `parquet.thrift`). Only the fields a reader of
/// string/number/chat columns needs are kept; the rest are skipped.

/// Physical types (`Type` in parquet.thrift).
enum ParquetType: Int32 {
    case boolean = 0, int32 = 1, int64 = 2, int96 = 3, float = 4, double = 5, byteArray = 6, fixedLenByteArray = 7
}

enum Repetition: Int32 { case required = 0, optional = 1, repeated = 2 }

struct SchemaElement {
    var type: ParquetType?
    var repetition: Repetition = .required
    var name = ""
    var numChildren = 0
    /// `ConvertedType` (legacy annotation): 0 UTF8, 1 MAP, 2 MAP_KEY_VALUE, 3 LIST, 5 DECIMAL...
    var convertedType: Int32?
    /// The `LogicalType` union's field id: 1 STRING, 2 MAP, 3 LIST, 5 DECIMAL, 6 DATE,
    /// 7 TIME, 8 TIMESTAMP, 10 INTEGER...
    var logicalType: Int16?
    /// INTEGER(isSigned: false).
    var logicalUnsigned = false
    /// FIXED_LEN_BYTE_ARRAY's length.
    var typeLength: Int32?
    /// DECIMAL's scale and precision (the legacy fields, or the logical type's).
    var scale: Int32?
    var precision: Int32?
    /// TIME and TIMESTAMP: whether instants are UTC-normalised, and the unit (1 millis,
    /// 2 micros, 3 nanos: the TimeUnit union's field id).
    var adjustedToUTC = false
    var timeUnit: Int16?
}

struct ColumnChunkMeta {
    var type: ParquetType = .byteArray
    var path: [String] = []
    var codec: Int32 = 0
    var numValues: Int64 = 0
    var totalCompressedSize: Int64 = 0
    var dataPageOffset: Int64 = -1
    var dictionaryPageOffset: Int64?
    /// Set when the chunk lives in another file; not supported.
    var filePath: String?
}

struct RowGroupMeta {
    var columns: [ColumnChunkMeta] = []
    var numRows: Int64 = 0
}

struct FileMetadata {
    var schema: [SchemaElement] = []
    var numRows: Int64 = 0
    var rowGroups: [RowGroupMeta] = []
    /// The writer (`created_by`), e.g. "parquet-mr version 1.2.8 (build ...)".
    var createdBy = ""

    /// parquet-mr up to 1.2.8 left the dictionary page header out of a column chunk's
    /// total_compressed_size (PARQUET-816, IMPALA-694); such chunks are read up to 100
    /// bytes past their stated end, as Arrow reads them. A parquet-mr without a version
    /// counts as old, as in Arrow.
    var dictionaryHeaderUncounted: Bool {
        guard createdBy.hasPrefix("parquet-mr") else { return false }
        guard let v = createdBy.split(separator: " ").dropFirst().first(where: { $0.first?.isNumber == true }) else { return true }
        let parts = v.split(whereSeparator: { $0 == "." || $0 == "-" }).prefix(3).map { Int($0) ?? 0 }
        let (a, b, c) = (parts.count > 0 ? parts[0] : 0, parts.count > 1 ? parts[1] : 0, parts.count > 2 ? parts[2] : 0)
        return (a, b, c) < (1, 2, 9)
    }
}

extension FileMetadata {
    static func parse(_ r: inout ThriftReader) throws(ParquetError) -> FileMetadata {
        var m = FileMetadata()
        var sawSchema = false, sawRows = false, sawGroups = false
        try r.readStruct { r, id, t throws(ParquetError) in
            switch id {
            case 2:
                let (n, et) = try r.list(t, "schema")
                m.schema.reserveCapacity(n)
                for _ in 0..<n { m.schema.append(try SchemaElement.parse(&r, et)) }
                sawSchema = true
            case 3: m.numRows = try r.i64(t, "num_rows"); sawRows = true
            case 6: m.createdBy = try r.string(t, "created_by")
            case 4:
                let (n, et) = try r.list(t, "row_groups")
                m.rowGroups.reserveCapacity(n)
                for _ in 0..<n { m.rowGroups.append(try RowGroupMeta.parse(&r, et)) }
                sawGroups = true
            default: return false
            }
            return true
        }
        guard sawSchema && sawRows && sawGroups else { throw r.fail("FileMetaData lacks schema, num_rows or row_groups") }
        return m
    }
}

extension SchemaElement {
    static func parse(_ r: inout ThriftReader, _ t: ThriftReader.WireType) throws(ParquetError) -> SchemaElement {
        var e = SchemaElement()
        var named = false
        try r.structure(t, "SchemaElement") { r, id, t throws(ParquetError) in
            switch id {
            case 1:
                let v = try r.i32(t, "SchemaElement.type")
                guard let type = ParquetType(rawValue: v) else { throw r.fail("unknown physical type \(v)") }
                e.type = type
            case 3:
                let v = try r.i32(t, "repetition_type")
                guard let rep = Repetition(rawValue: v) else { throw r.fail("unknown repetition \(v)") }
                e.repetition = rep
            case 2: e.typeLength = try r.i32(t, "type_length")
            case 4: e.name = try r.string(t, "SchemaElement.name"); named = true
            case 7: e.scale = try r.i32(t, "scale")
            case 8: e.precision = try r.i32(t, "precision")
            case 5:
                let v = try r.i32(t, "num_children")
                guard v >= 0 else { throw r.fail("negative num_children") }
                e.numChildren = Int(v)
            case 6: e.convertedType = try r.i32(t, "converted_type")
            case 10:
                // A union: the one field present says which logical type it is.
                try r.structure(t, "logicalType") { r, id, t throws(ParquetError) in
                    e.logicalType = id
                    if id == 5 {
                        // DecimalType { 1: scale, 2: precision }
                        try r.structure(t, "DecimalType") { r, id, t throws(ParquetError) in
                            switch id {
                            case 1: e.scale = try r.i32(t, "DecimalType.scale")
                            case 2: e.precision = try r.i32(t, "DecimalType.precision")
                            default: return false
                            }
                            return true
                        }
                        return true
                    }
                    if id == 7 || id == 8 {
                        // TimeType / TimestampType { 1: isAdjustedToUTC, 2: unit (a union) }
                        try r.structure(t, "TimeType") { r, id, t throws(ParquetError) in
                            switch id {
                            case 1: e.adjustedToUTC = try r.bool(t, "isAdjustedToUTC")
                            case 2: try r.structure(t, "TimeUnit") { _, unit, _ throws(ParquetError) in e.timeUnit = unit; return false }
                            default: return false
                            }
                            return true
                        }
                        return true
                    }
                    guard id == 10 else { return false }
                    // IntType { 1: bitWidth (byte), 2: isSigned }
                    try r.structure(t, "IntType") { r, id, t throws(ParquetError) in
                        guard id == 2 else { return false }
                        e.logicalUnsigned = !(try r.bool(t, "IntType.isSigned"))
                        return true
                    }
                    return true
                }
            default: return false
            }
            return true
        }
        guard named else { throw r.fail("a schema element has no name") }
        return e
    }
}

extension RowGroupMeta {
    static func parse(_ r: inout ThriftReader, _ t: ThriftReader.WireType) throws(ParquetError) -> RowGroupMeta {
        var g = RowGroupMeta()
        var sawRows = false
        try r.structure(t, "RowGroup") { r, id, t throws(ParquetError) in
            switch id {
            case 1:
                let (n, et) = try r.list(t, "RowGroup.columns")
                g.columns.reserveCapacity(n)
                for _ in 0..<n { g.columns.append(try ColumnChunkMeta.parse(&r, et)) }
            case 3:
                g.numRows = try r.i64(t, "RowGroup.num_rows"); sawRows = true
            default: return false
            }
            return true
        }
        guard sawRows, g.numRows >= 0 else { throw r.fail("a row group has no valid num_rows") }
        return g
    }
}

extension ColumnChunkMeta {
    static func parse(_ r: inout ThriftReader, _ t: ThriftReader.WireType) throws(ParquetError) -> ColumnChunkMeta {
        var c = ColumnChunkMeta()
        var sawMeta = false
        try r.structure(t, "ColumnChunk") { r, id, t throws(ParquetError) in
            switch id {
            case 1: c.filePath = try r.string(t, "ColumnChunk.file_path")
            case 3:
                sawMeta = true
                try r.structure(t, "ColumnMetaData") { r, id, t throws(ParquetError) in
                    switch id {
                    case 1:
                        let v = try r.i32(t, "ColumnMetaData.type")
                        guard let type = ParquetType(rawValue: v) else { throw r.fail("unknown physical type \(v)") }
                        c.type = type
                    case 3:
                        let (n, et) = try r.list(t, "path_in_schema")
                        for _ in 0..<n { c.path.append(try r.string(et, "path_in_schema")) }
                    case 4: c.codec = try r.i32(t, "codec")
                    case 5: c.numValues = try r.i64(t, "num_values")
                    case 7: c.totalCompressedSize = try r.i64(t, "total_compressed_size")
                    case 9: c.dataPageOffset = try r.i64(t, "data_page_offset")
                    case 11: c.dictionaryPageOffset = try r.i64(t, "dictionary_page_offset")
                    default: return false
                    }
                    return true
                }
            default: return false
            }
            return true
        }
        guard sawMeta else { throw r.fail("a column chunk has no metadata (encrypted files are not supported)") }
        return c
    }
}

/// A page header: what kind of page, its sizes, checksum and encoding details.
struct PageHeader {
    enum Kind: Int32 { case data = 0, index = 1, dictionary = 2, dataV2 = 3 }
    var kind: Kind?
    var rawKind: Int32 = -1
    var uncompressedSize = 0
    var compressedSize = 0
    var crc: UInt32?
    /// Entries in the page (values and nulls; for dictionaries, the dictionary size).
    var numValues = 0
    var encoding: Int32 = 0
    var defEncoding: Int32 = 3
    var repEncoding: Int32 = 3
    // v2 only
    var defBytes = 0
    var repBytes = 0
    var isCompressed = true

    static func parse(_ r: inout ThriftReader) throws(ParquetError) -> PageHeader {
        var h = PageHeader()
        var sawSizes = 0
        func size(_ r: inout ThriftReader, _ t: ThriftReader.WireType, _ name: String) throws(ParquetError) -> Int {
            let v = try r.i32(t, name)
            guard v >= 0 else { throw r.fail("negative \(name)") }
            return Int(v)
        }
        try r.readStruct { r, id, t throws(ParquetError) in
            switch id {
            case 1: h.rawKind = try r.i32(t, "page type"); h.kind = Kind(rawValue: h.rawKind)
            case 2: h.uncompressedSize = try size(&r, t, "uncompressed_page_size"); sawSizes += 1
            case 3: h.compressedSize = try size(&r, t, "compressed_page_size"); sawSizes += 1
            case 4: h.crc = UInt32(bitPattern: try r.i32(t, "crc"))
            case 5:
                try r.structure(t, "DataPageHeader") { r, id, t throws(ParquetError) in
                    switch id {
                    case 1: h.numValues = try size(&r, t, "num_values")
                    case 2: h.encoding = try r.i32(t, "encoding")
                    case 3: h.defEncoding = try r.i32(t, "definition_level_encoding")
                    case 4: h.repEncoding = try r.i32(t, "repetition_level_encoding")
                    default: return false
                    }
                    return true
                }
            case 7:
                try r.structure(t, "DictionaryPageHeader") { r, id, t throws(ParquetError) in
                    switch id {
                    case 1: h.numValues = try size(&r, t, "num_values")
                    case 2: h.encoding = try r.i32(t, "encoding")
                    default: return false
                    }
                    return true
                }
            case 8:
                try r.structure(t, "DataPageHeaderV2") { r, id, t throws(ParquetError) in
                    switch id {
                    case 1: h.numValues = try size(&r, t, "num_values")
                    case 4: h.encoding = try r.i32(t, "encoding")
                    case 5: h.defBytes = try size(&r, t, "definition_levels_byte_length")
                    case 6: h.repBytes = try size(&r, t, "repetition_levels_byte_length")
                    case 7: h.isCompressed = try r.bool(t, "is_compressed")
                    default: return false
                    }
                    return true
                }
            default: return false
            }
            return true
        }
        guard sawSizes == 2 else { throw r.fail("page header lacks its sizes") }
        return h
    }
}

/// Names for messages.
enum ParquetNames {
    static func codec(_ c: Int32) -> String {
        ["UNCOMPRESSED", "SNAPPY", "GZIP", "LZO", "BROTLI", "LZ4", "ZSTD", "LZ4_RAW"][safe: Int(c)] ?? "codec \(c)"
    }
    static func encoding(_ e: Int32) -> String {
        ["PLAIN", "GROUP_VAR_INT", "PLAIN_DICTIONARY", "RLE", "BIT_PACKED", "DELTA_BINARY_PACKED",
         "DELTA_LENGTH_BYTE_ARRAY", "DELTA_BYTE_ARRAY", "RLE_DICTIONARY", "BYTE_STREAM_SPLIT"][safe: Int(e)] ?? "encoding \(e)"
    }
}

extension Array {
    subscript(safe i: Int) -> Element? { i >= 0 && i < count ? self[i] : nil }
}
