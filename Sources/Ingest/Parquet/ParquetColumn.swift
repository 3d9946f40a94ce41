import TokenmillCore

/// What the row assembler needs to know about one leaf column.
struct LeafColumn {
    var index: Int          // position among the file's leaf columns
    var path: [String]
    var type: ParquetType
    var maxDef: Int
    var maxRep: Int
    /// INT32/INT64 annotated as unsigned (UINT_32, UINT_64, or INTEGER(signed: false)).
    var unsigned = false
    /// How its values become text (DECIMAL, dates, times, timestamps, half floats).
    var rendering: LeafRendering = .plain
    /// FIXED_LEN_BYTE_ARRAY's length (0 for other types).
    var typeLength = 0
    var name: String { path.joined(separator: ".") }
}

/// One column chunk, decoded: a level pair per entry (a value or a null/empty marker)
/// and the non-null values in order, already in the form records are built from.
struct ColumnData {
    var def: [UInt8] = []   // empty when maxDef == 0
    var rep: [UInt8] = []   // empty when maxRep == 0
    var count = 0           // entries
    var values: [JSONValue] = []
    /// The values of a text column (`LeafColumn.readsAsText`), instead of `values`.
    var strings: ByteColumn?
    /// Indices of values (strings) whose invalid UTF-8 was replaced with U+FFFD.
    var repaired: [Int] = []

    init() {}
    /// Empty, with the value storage `leaf` reads into.
    init(for leaf: LeafColumn) {
        if leaf.readsAsText { strings = ByteColumn() }
    }

    var valueCount: Int { strings?.count ?? values.count }

    /// A BYTE_ARRAY or FIXED_LEN_BYTE_ARRAY value: text (UTF-8 checked and repaired, its
    /// index noted), or the decimal or half float it encodes. A text value is kept as a
    /// span: `b` must lie in something the column keeps (`keep`).
    @inline(__always)
    mutating func appendBytes(_ b: UnsafeBufferPointer<UInt8>, _ leaf: LeafColumn) {
        if let strings {
            if strings.appendText(b) { repaired.append(strings.count - 1) }
            return
        }
        let (v, fixed) = ParquetValues.bytes(b, leaf)
        if fixed { repaired.append(values.count) }
        values.append(v)
    }

    /// Keeps the bytes the next text values are spans of (a page, a dictionary's column).
    func keep(_ owner: AnyObject) { strings?.keep(owner) }

    /// Value `i` of `dictionary` appended (its repair noted again); text columns must
    /// keep the dictionary's column.
    @inline(__always)
    mutating func appendEntry(_ i: Int, of dictionary: ColumnData, repairedEntries: Set<Int>) {
        if !repairedEntries.isEmpty && repairedEntries.contains(i) { repaired.append(valueCount) }
        if let strings, let d = dictionary.strings { strings.append(d.value(i)) } else { values.append(dictionary.values[i]) }
    }

    /// Appends the entries and values of the next page.
    mutating func append(page p: ColumnData) {
        def.append(contentsOf: p.def)
        rep.append(contentsOf: p.rep)
        let base = valueCount
        repaired.append(contentsOf: p.repaired.lazy.map { $0 + base })
        if let strings, let more = p.strings { strings.append(contentsOf: more) } else { values.append(contentsOf: p.values) }
        count += p.count
    }
}

extension LeafColumn {
    /// Byte arrays read as text (not decimals or half floats): held in a `ByteColumn`.
    var readsAsText: Bool { (type == .byteArray || type == .fixedLenByteArray) && rendering == .plain }
}

/// Decodes column chunks. Every offset and size from the file is checked before use.
struct ColumnDecoder {
    let file: UnsafeBufferPointer<UInt8>
    /// Where the footer starts: no column data may reach past it.
    let dataEnd: Int
    /// Bytes a chunk's pages may run past its stated size (old parquet-mr files:
    /// `FileMetadata.dictionaryHeaderUncounted`); never past `dataEnd`.
    var chunkSlack = 0

    /// One data page found by the header walk: its header and where its body is.
    struct DataPage { var header: PageHeader; var body: Range<Int> }

    /// Decodes a column chunk: one sequential walk over the page headers (and the
    /// dictionary page), then the data pages decompressed and decoded in parallel and
    /// joined in order.
    func decode(_ meta: ColumnChunkMeta, _ leaf: LeafColumn, threads: Int) throws(ParquetError) -> ColumnData {
        if meta.filePath != nil { throw ParquetError("the column chunk lives in another file (file_path); not supported", unsupported: true) }
        if meta.type != leaf.type { throw ParquetError("chunk type \(meta.type) differs from the schema's \(leaf.type)") }
        // An empty chunk (a row group of no rows) may point nowhere (pyarrow writes
        // data_page_offset 0 there): nothing to read.
        if meta.numValues == 0 { return ColumnData() }
        var start = meta.dataPageOffset
        if let d = meta.dictionaryPageOffset, d > 0, d < start || start <= 0 { start = d }
        guard start >= 4, meta.totalCompressedSize > 0, meta.numValues >= 0,
              start <= Int64(dataEnd), meta.totalCompressedSize <= Int64(dataEnd) - start else {
            throw ParquetError("chunk offsets point outside the file (offset \(start), \(meta.totalCompressedSize) bytes)")
        }
        let chunkEnd = min(dataEnd, Int(start + meta.totalCompressedSize) + chunkSlack)
        var pos = Int(start)
        let wanted = Int(meta.numValues)
        var dictionary: ColumnData? = nil
        var dictionaryRepaired: Set<Int> = []
        var pages: [DataPage] = []
        var entries = 0
        while entries < wanted {
            guard pos < chunkEnd else { throw ParquetError("chunk ends after \(entries) of \(wanted) values") }
            var r = ThriftReader(file, start: pos, end: chunkEnd, what: "page header")
            let h = try PageHeader.parse(&r)
            let bodyStart = r.position
            guard h.compressedSize <= chunkEnd - bodyStart else { throw ParquetError("page of \(h.compressedSize) bytes runs past its chunk") }
            let range = bodyStart..<(bodyStart + h.compressedSize)
            pos = range.upperBound
            switch h.kind {
            case .dictionary:
                guard dictionary == nil, pages.isEmpty else { throw ParquetError("a dictionary page after data pages or a second one") }
                guard h.encoding == 0 || h.encoding == 2 else { throw ParquetError("dictionary page encoded as \(ParquetNames.encoding(h.encoding))") }
                let body = UnsafeBufferPointer(rebasing: file[range])
                if let crc = h.crc, ParquetPages.crc32(body) != crc { throw ParquetError("dictionary page checksum mismatch") }
                let data = try ParquetPages.decompress(codec: meta.codec, body, expected: h.uncompressedSize)
                var entries = ColumnData(for: leaf)
                entries.keep(data)
                _ = try Self.plain(data.bytes, start: 0, end: data.bytes.count, leaf: leaf, count: h.numValues, into: &entries)
                dictionaryRepaired = Set(entries.repaired)
                dictionary = entries
            case .data, .dataV2:
                guard h.numValues <= wanted - entries else { throw ParquetError("pages hold more values than the chunk's \(wanted)") }
                entries += h.numValues
                pages.append(DataPage(header: h, body: range))
            case .index, nil:
                continue   // index pages and page types from the future carry no values
            }
        }
        let parts: [Result<ColumnData, ParquetError>]
        do {
            parts = try parallelBatches(count: pages.count, threads: threads, batchSize: 1) { r in
                do {
                    return .success(try decodePage(pages[r.lowerBound], meta: meta, leaf: leaf, dictionary: dictionary, dictionaryRepaired: dictionaryRepaired))
                } catch let e as ParquetError { return .failure(e) }
            }
        } catch { throw ParquetError("\(error)") }
        if parts.count == 1, case .success(let only) = parts[0] { return only }
        var out = ColumnData(for: leaf)
        for (k, part) in parts.enumerated() {
            switch part {
            case .failure(let e): throw ParquetError("page \(k + 1): \(e.message)", unsupported: e.unsupported)
            case .success(let p): out.append(page: p)
            }
        }
        return out
    }

    /// One data page (v1 or v2) into levels and values.
    func decodePage(_ page: DataPage, meta: ColumnChunkMeta, leaf: LeafColumn, dictionary: ColumnData?,
                    dictionaryRepaired: Set<Int>) throws(ParquetError) -> ColumnData {
        let h = page.header
        let body = UnsafeBufferPointer(rebasing: file[page.body])
        if let crc = h.crc, ParquetPages.crc32(body) != crc { throw ParquetError("page checksum mismatch") }
        let defWidth = ParquetPages.bitWidth(leaf.maxDef), repWidth = ParquetPages.bitWidth(leaf.maxRep)
        var out = ColumnData(for: leaf)
        let n = h.numValues
        // v1: one compressed block holding levels then values. v2: levels first, never
        // compressed, then the (maybe compressed) values; each is read where it lies.
        let isV2 = h.kind == .dataV2
        let bytes: PageBytes
        if isV2 {
            let levelBytes = h.repBytes + h.defBytes
            guard levelBytes <= body.count, levelBytes <= h.uncompressedSize else { throw ParquetError("v2 level lengths exceed the page") }
            if leaf.maxRep > 0 {
                try ParquetPages.hybrid(body, start: 0, end: h.repBytes, width: repWidth, count: n, into: &out.rep)
            }
            if leaf.maxDef > 0 {
                try ParquetPages.hybrid(body, start: h.repBytes, end: levelBytes, width: defWidth, count: n, into: &out.def)
            }
            let values = UnsafeBufferPointer(rebasing: body[levelBytes...])
            bytes = try ParquetPages.decompress(codec: h.isCompressed ? meta.codec : 0, values, expected: h.uncompressedSize - levelBytes)
        } else {
            bytes = try ParquetPages.decompress(codec: meta.codec, body, expected: h.uncompressedSize)
        }
        out.keep(bytes)
        do {
            let b = bytes.bytes
            var p = 0
            if !isV2 {
                if leaf.maxRep > 0 { p = try Self.levelsV1(b, start: p, encoding: h.repEncoding, width: repWidth, count: n, into: &out.rep) }
                if leaf.maxDef > 0 { p = try Self.levelsV1(b, start: p, encoding: h.defEncoding, width: defWidth, count: n, into: &out.def) }
            }
            for l in out.rep where Int(l) > leaf.maxRep { throw ParquetError("repetition level \(l) over the maximum \(leaf.maxRep)") }
            var present = n
            if leaf.maxDef > 0 {
                present = 0
                let maxDef = UInt8(leaf.maxDef)
                for l in out.def {
                    if l == maxDef { present += 1 } else if l > maxDef { throw ParquetError("definition level \(l) over the maximum \(leaf.maxDef)") }
                }
            }
            try decodeValues(b, start: p, encoding: h.encoding, count: present, leaf: leaf, dictionary: dictionary,
                             dictionaryRepaired: dictionaryRepaired, into: &out)
        }
        out.count = h.numValues
        return out
    }

    static func levelsV1(_ b: UnsafeBufferPointer<UInt8>, start: Int, encoding: Int32, width: Int, count: Int,
                         into out: inout [UInt8]) throws(ParquetError) -> Int {
        switch encoding {
        case 3:   // RLE: a 4-byte length, then the hybrid
            guard b.count - start >= 4 else { throw ParquetError("level length cut off") }
            let len = Int(b[start]) | Int(b[start + 1]) << 8 | Int(b[start + 2]) << 16 | Int(b[start + 3]) << 24
            guard len <= b.count - start - 4 else { throw ParquetError("levels of \(len) bytes run past the page") }
            try ParquetPages.hybrid(b, start: start + 4, end: start + 4 + len, width: width, count: count, into: &out)
            return start + 4 + len
        case 4:
            return try ParquetPages.bitPackedMSB(b, start: start, end: b.count, width: width, count: count, into: &out)
        default:
            throw ParquetError("levels encoded as \(ParquetNames.encoding(encoding)); expected RLE")
        }
    }

    func decodeValues(_ b: UnsafeBufferPointer<UInt8>, start: Int, encoding: Int32, count: Int, leaf: LeafColumn,
                      dictionary: ColumnData?, dictionaryRepaired: Set<Int>, into out: inout ColumnData) throws(ParquetError) {
        switch encoding {
        case 0:
            _ = try Self.plain(b, start: start, end: b.count, leaf: leaf, count: count, into: &out)
        case 2, 8:
            guard let dictionary else { throw ParquetError("dictionary-encoded page without a dictionary page") }
            if count == 0 { return }
            if let d = dictionary.strings { out.keep(d) }
            guard start < b.count else { throw ParquetError("dictionary indices missing") }
            let width = Int(b[start])
            var indices: [UInt32] = []
            indices.reserveCapacity(count)
            try ParquetPages.hybrid(b, start: start + 1, end: b.count, width: width, count: count, into: &indices)
            let entries = dictionary.valueCount
            if let strings = out.strings { strings.reserve(count) } else { out.values.reserveCapacity(out.values.count + count) }
            for i in indices {
                guard Int(i) < entries else { throw ParquetError("dictionary index \(i) out of \(entries)") }
                out.appendEntry(Int(i), of: dictionary, repairedEntries: dictionaryRepaired)
            }
        case 3 where leaf.type == .boolean:
            guard b.count - start >= 4 else { throw ParquetError("boolean RLE length cut off") }
            let len = Int(b[start]) | Int(b[start + 1]) << 8 | Int(b[start + 2]) << 16 | Int(b[start + 3]) << 24
            guard len <= b.count - start - 4 else { throw ParquetError("boolean RLE runs past the page") }
            var bits: [UInt8] = []
            try ParquetPages.hybrid(b, start: start + 4, end: start + 4 + len, width: 1, count: count, into: &bits)
            for v in bits { out.values.append(.bool(v != 0)) }
        case 5 where leaf.type == .int32 || leaf.type == .int64:
            var ints: [Int64] = []
            try ParquetEncodings.deltaBinaryPacked(b, start: start, end: b.count, into: &ints)
            guard ints.count >= count else { throw ParquetError("DELTA_BINARY_PACKED holds \(ints.count) values, the page \(count)") }
            out.values.reserveCapacity(out.values.count + count)
            for v in ints[0..<count] {
                out.values.append(ParquetValues.int(leaf.type == .int32 ? Int64(Int32(truncatingIfNeeded: v)) : v, leaf))
            }
        case 6 where leaf.type == .byteArray:
            let ranges = try ParquetEncodings.deltaLengthByteArray(b, start: start, end: b.count).values
            guard ranges.count >= count else { throw ParquetError("DELTA_LENGTH_BYTE_ARRAY holds \(ranges.count) values, the page \(count)") }
            for r in ranges[0..<count] { out.appendBytes(UnsafeBufferPointer(rebasing: b[r]), leaf) }
        case 7 where leaf.type == .byteArray:
            let values = try ParquetEncodings.deltaByteArray(b, start: start, end: b.count)
            guard values.count >= count else { throw ParquetError("DELTA_BYTE_ARRAY holds \(values.count) values, the page \(count)") }
            // The values are built here (prefix + suffix): copied into one page the
            // column keeps, then read from it.
            let page = try PageBytes(count: values[0..<count].reduce(0) { $0 + $1.count }) { (dst) throws(ParquetError) in
                var o = 0
                for v in values[0..<count] {
                    v.withUnsafeBufferPointer { if $0.count > 0 { (dst.baseAddress! + o).update(from: $0.baseAddress!, count: $0.count) } }
                    o += v.count
                }
            }
            out.keep(page)
            var o = 0
            for v in values[0..<count] {
                out.appendBytes(UnsafeBufferPointer(rebasing: page.bytes[o..<(o + v.count)]), leaf)
                o += v.count
            }
        case 9 where [.int32, .int64, .float, .double, .fixedLenByteArray].contains(leaf.type):
            let width = leaf.type == .fixedLenByteArray ? leaf.typeLength : leaf.type == .int32 || leaf.type == .float ? 4 : 8
            // The streams are `count` values long: the page's non-null values.
            let plain = try ParquetEncodings.byteStreamSplit(b, start: start, end: b.count, count: count, width: width)
            let page = plain.withUnsafeBufferPointer { PageBytes(copying: $0) }
            out.keep(page)
            _ = try Self.plain(page.bytes, start: 0, end: page.bytes.count, leaf: leaf, count: count, into: &out)
        default:
            throw ParquetError("values encoded as \(ParquetNames.encoding(encoding)) are not supported for \(leaf.type) columns (PLAIN, dictionary, DELTA_BINARY_PACKED, DELTA_LENGTH_BYTE_ARRAY, DELTA_BYTE_ARRAY and BYTE_STREAM_SPLIT are)", unsupported: true)
        }
    }

    /// PLAIN values. Strings are checked for UTF-8 and repaired (their index noted).
    static func plain(_ b: UnsafeBufferPointer<UInt8>, start: Int, end: Int, leaf: LeafColumn, count: Int,
                      into out: inout ColumnData) throws(ParquetError) -> Int {
        var p = start
        func need(_ n: Int) throws(ParquetError) { if end - p < n { throw ParquetError("values run past the page") } }
        // Every value takes at least a bit; a count beyond that is a damaged header.
        guard count <= (end - start) &* 8 else { throw ParquetError("\(count) values cannot fit in \(end - start) bytes") }
        // (Non-text values go straight into `out.values`, text through `out.appendBytes`.)
        if let strings = out.strings { strings.reserve(count) } else { out.values.reserveCapacity(out.values.count + count) }
        switch leaf.type {
        case .byteArray:
            for _ in 0..<count {
                try need(4)
                let len = Int(b[p]) | Int(b[p + 1]) << 8 | Int(b[p + 2]) << 16 | Int(b[p + 3]) << 24
                p += 4
                try need(len)
                out.appendBytes(UnsafeBufferPointer(rebasing: b[p..<(p + len)]), leaf)
                p += len
            }
        case .int32:
            try need(4 * count)
            for _ in 0..<count {
                let bits = UInt32(b[p]) | UInt32(b[p + 1]) << 8 | UInt32(b[p + 2]) << 16 | UInt32(b[p + 3]) << 24
                out.values.append(ParquetValues.int(Int64(Int32(bitPattern: bits)), leaf)); p += 4
            }
        case .int64:
            try need(8 * count)
            for _ in 0..<count {
                out.values.append(ParquetValues.int(Int64(bitPattern: load64(b, p)), leaf)); p += 8
            }
        case .float:
            try need(4 * count)
            for _ in 0..<count {
                let bits = UInt32(b[p]) | UInt32(b[p + 1]) << 8 | UInt32(b[p + 2]) << 16 | UInt32(b[p + 3]) << 24
                out.values.append(.number(number(Float(bitPattern: bits)))); p += 4
            }
        case .double:
            try need(8 * count)
            for _ in 0..<count {
                out.values.append(.number(number(Double(bitPattern: load64(b, p))))); p += 8
            }
        case .boolean:
            try need((count + 7) / 8)
            for i in 0..<count { out.values.append(.bool(b[p + i >> 3] >> UInt8(i & 7) & 1 != 0)) }
            p += (count + 7) / 8
        case .int96:
            try need(12 * count)
            for _ in 0..<count { out.values.append(ParquetValues.int96(UnsafeBufferPointer(rebasing: b[p..<(p + 12)]))); p += 12 }
        case .fixedLenByteArray:
            let n = leaf.typeLength
            guard n > 0 else { throw ParquetError("FIXED_LEN_BYTE_ARRAY column '\(leaf.name)' has no type_length") }
            try need(n * count)
            for _ in 0..<count { out.appendBytes(UnsafeBufferPointer(rebasing: b[p..<(p + n)]), leaf); p += n }
        }
        return p
    }

    static func load64(_ b: UnsafeBufferPointer<UInt8>, _ p: Int) -> UInt64 {
        var v: UInt64 = 0
        for k in 0..<8 { v |= UInt64(b[p + k]) << (8 * UInt64(k)) }
        return v
    }

    /// Floats in their shortest round-trip form; non-finite ones spelled as Python's json does.
    static func number<F: BinaryFloatingPoint & LosslessStringConvertible>(_ v: F) -> [UInt8] {
        if v.isNaN { return Array("NaN".utf8) }
        if v.isInfinite { return Array((v < 0 ? "-Infinity" : "Infinity").utf8) }
        return Array(v.description.utf8)
    }
}
