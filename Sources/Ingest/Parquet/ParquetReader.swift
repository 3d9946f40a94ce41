import TokenmillCore

/// Reads a Parquet file into mapped rows: footer first (magic, length and Thrift all
/// checked), then only the columns the mapping names, row group by row group on all
/// cores. Rows are numbered from 1 across the file's row groups.
///
/// A damaged footer stops the file (it says nothing trustworthy about the rows). A
/// damaged row group stops the build naming it, or under `on_error: skip` rejects each of
/// its rows, so rows read + rejected still equals the rows the footer declares.
public enum ParquetReader {
    static let magic: [UInt8] = Array("PAR1".utf8)

    /// The bytes each row group's columns span in the file (start, end), in order; what a
    /// build's plan needs to cut a file into units of row groups. nil when the footer
    /// cannot be read (the file is then one unit, and reading it reports why).
    public static func rowGroupSpans(path: String) -> [Range<Int>]? {
        guard let file = try? FileSystem.map(path, populate: false) else { return nil }
        return withExtendedLifetime(file) {
            guard let (meta, footerStart) = try? footer(file.bytes, path: path) else { return nil }
            return meta.rowGroups.map { span($0, footerStart: footerStart) }
        }
    }

    /// The bytes a row group's column chunks span, as their metadata states them (empty
    /// when it states none that lie in the data region).
    static func span(_ group: RowGroupMeta, footerStart: Int) -> Range<Int> {
        var lo = footerStart, hi = 4
        for c in group.columns {
            let start = Int(c.dictionaryPageOffset.map { min($0, c.dataPageOffset) } ?? c.dataPageOffset)
            guard start >= 4, c.totalCompressedSize >= 0, start <= footerStart else { continue }
            lo = min(lo, start); hi = max(hi, min(footerStart, start + Int(c.totalCompressedSize)))
        }
        return lo < hi ? lo..<hi : 4..<4
    }

    /// Reads the row groups in `groups` (all when nil). With `emit`, each row group's rows
    /// are handed over as soon as it is decoded and then `release` is called with the
    /// bytes its columns span, so a mapped file's pages can be dropped: a Parquet file of
    /// any size costs about one row group of memory.
    static func read<T>(_ src: SourceConfig, fileIndex: Int32, path: String, data: UnsafeBufferPointer<UInt8>, threads: Int,
                        groups: Range<Int>? = nil, emit: ((Rows<T>) throws -> Void)? = nil, release: ((Range<Int>) -> Void)? = nil,
                        flat: ((ParquetFlatRow, Int) throws -> T)? = nil, map: (JSONValue, Int) throws -> T) throws -> Rows<T> {
        try data.withUnsafeBufferPointer { buf in
            let (meta, footerStart) = try footer(buf, path: path)
            var schema: ParquetSchema
            do {
                schema = try ParquetSchema(meta.schema)
                schema.assignPaths()
            } catch let e as ParquetError { throw damagedFooter(path, e.message) }

            // Only the top-level fields the mapping reads are decoded.
            let keys = src.mapping.topLevelKeys
            let fields = schema.top.filter { keys.contains(Array(schema.nodes[$0].name.utf8)) }
            let needed = fields.flatMap { schema.nodes[$0].leaves }
            // Judged: the leaves under each path the mapping reads (a struct's other fields
            // are assembled but never rendered, so their types do not matter).
            for l in Set(src.mapping.fieldPaths.flatMap { schema.leaves(under: $0) }).sorted() {
                let leaf = schema.leaves[l]
                if let what = schema.unreadableLeaves[l] {
                    throw TokenmillError.badInput(path: path, line: 0, message: "column '\(leaf.name)' is \(what), which cannot be read as text (map another column, or cast it to a string when writing the file)")
                }
            }
            var firstRow: [Int] = []
            var total = 0
            for (g, group) in meta.rowGroups.enumerated() {
                firstRow.append(total + 1)
                guard group.columns.count == schema.leaves.count else {
                    throw damagedFooter(path, "row group \(g + 1) has \(group.columns.count) columns, the schema \(schema.leaves.count)")
                }
                for (c, chunk) in group.columns.enumerated() where !chunk.path.isEmpty && chunk.path != schema.leaves[c].path {
                    throw damagedFooter(path, "row group \(g + 1) column \(c + 1) is '\(chunk.path.joined(separator: "."))', the schema says '\(schema.leaves[c].name)'")
                }
                guard group.numRows <= Int64(Int32.max) else { throw damagedFooter(path, "row group \(g + 1) claims \(group.numRows) rows") }
                total += Int(group.numRows)
            }
            // Some old writers leave the footer's count at 0; the row groups' own counts
            // (what pyarrow reads by) stand then.
            guard Int64(total) == meta.numRows || (meta.numRows == 0 && total > 0) else {
                throw damagedFooter(path, "row groups hold \(total) rows, the footer says \(meta.numRows)")
            }

            let decoder = ColumnDecoder(file: buf, dataEnd: footerStart, chunkSlack: meta.dictionaryHeaderUncounted ? 100 : 0)
            var all = Rows<T>()
            let batch = 2048
            // Row groups one after another; within one, columns are decoded and then rows
            // assembled and mapped in parallel batches (a file is often one big row group).
            for (g, group) in meta.rowGroups.enumerated() {
                if let groups, !groups.contains(g) { continue }
                defer { release?(span(group, footerStart: footerStart)) }
                let rows = Int(group.numRows)
                if rows == 0 { continue }
                let first = firstRow[g]
                let place = "row group \(g + 1) of \(meta.rowGroups.count) (rows \(first)–\(first + rows - 1))"
                func failed(_ reason: String, unsupported: Bool = false) throws {
                    if !src.skipBadRows {
                        let fix = unsupported ? "" : " (the file is damaged; re-download or re-export it, or set \"on_error\": \"skip\" to reject this row group's rows and go on)"
                        throw TokenmillError.badInput(path: path, line: 0, message: reason + fix)
                    }
                    for row in first..<(first + rows) { all.rejects.append(Reject(source: src.name, path: path, line: row, reason: reason)) }
                }
                var columns = [ColumnData](repeating: ColumnData(), count: schema.leaves.count)
                // Columns one after another, each one's pages in parallel.
                var broken: ParquetError? = nil
                for l in needed {
                    do { columns[l] = try decoder.decode(group.columns[l], schema.leaves[l], threads: threads) } catch let e as ParquetError {
                        broken = ParquetError("\(place), column \(schema.leaves[l].name): \(e.message)", unsupported: e.unsupported)
                        break
                    }
                }
                if let broken { try failed(broken.message, unsupported: broken.unsupported); continue }
                let assembler = RowAssembler(schema: schema, columns: columns)
                let starts = assembler.rowStarts(leaves: needed, rows: rows, every: batch)
                if let l = needed.first(where: { starts[$0].count != (rows + batch - 1) / batch }) {
                    try failed("\(place), column \(schema.leaves[l].name): its levels do not hold \(rows) rows"); continue
                }
                // Flat rows (top-level primitive fields only) are mapped from a reused
                // buffer of values, not from an object built per row.
                let flatMap = assembler.isFlat(fields) ? flat : nil
                let names = fields.map { schema.nodes[$0].name }
                let sources = FlatTexts(columns)
                // Mapped items go to their row's slot and are moved out in order: appending
                // each batch's array copied every record (a retain and a release of each of
                // its arrays), a fifth of a Parquet read's time.
                let slots = OrderedSlots<T>(count: rows)
                let parts: [Result<Rows<T>, ParquetError>] = try parallelBatches(count: rows, threads: threads, batchSize: batch) { range in
                    var a = assembler
                    let k = range.lowerBound / batch
                    a.seek(starts, leaves: needed, batch: k)
                    var out = Rows<T>()
                    let width = max(1, fields.count)
                    let values = UnsafeMutablePointer<JSONValue>.allocate(capacity: width)
                    values.initialize(repeating: .null, count: width)
                    let texts = UnsafeMutablePointer<UnsafeBufferPointer<UInt8>?>.allocate(capacity: width)
                    texts.initialize(repeating: nil, count: width)
                    defer { values.deinitialize(count: width); values.deallocate(); texts.deallocate() }
                    do {
                        for i in range {
                            let line = first + i
                            if let flatMap {
                                try a.flatRow(fields, texts: sources, into: texts, values: values)
                                do {
                                    if a.rowRepaired {
                                        try src.checkUTF8(repairs: 1)
                                        out.repaired += 1
                                    }
                                    slots.put(i, try flatMap(ParquetFlatRow(names: names, texts: texts, values: values), line))
                                } catch let e as MappingError {
                                    out.rejects.append(try src.badRow(path: path, line: line, e.message))
                                }
                                continue
                            }
                            let value = try a.row(fields)
                            do {
                                if a.rowRepaired {
                                    try src.checkUTF8(repairs: 1)
                                    out.repaired += 1
                                }
                                slots.put(i, try map(value, line))
                            } catch let e as MappingError {
                                out.rejects.append(try src.badRow(path: path, line: line, e.message))
                            }
                        }
                        try a.checkConsumed(needed, upTo: starts, batch: k + 1)
                    } catch let e as ParquetError {
                        return .failure(e)
                    }
                    return .success(out)
                }
                if let bad = parts.first(where: { if case .failure = $0 { true } else { false } }), case .failure(let e) = bad {
                    try failed("\(place): \(e.message)"); continue
                }
                slots.moveAll(into: &all.items)
                for case .success(let p) in parts {
                    all.rejects.append(contentsOf: p.rejects); all.repaired += p.repaired
                }
                if let emit { try emit(all); all = Rows<T>() }
            }
            return all
        }
    }
    static func damagedFooter(_ path: String, _ what: String) -> TokenmillError {
        .badInput(path: path, line: 0, message: "Parquet footer: \(what) (the file is damaged or not Parquet; re-download or re-export it)")
    }

    /// The footer's metadata and where it starts (the end of the column data).
    static func footer(_ buf: UnsafeBufferPointer<UInt8>, path: String) throws -> (FileMetadata, Int) {
        let n = buf.count
        guard n >= 12 else { throw damagedFooter(path, "only \(n) bytes, too short for a Parquet file") }
        guard Array(buf[0..<4]) == magic else { throw damagedFooter(path, "the file does not start with PAR1") }
        let tail = Array(buf[(n - 4)...])
        if tail == Array("PARE".utf8) { throw TokenmillError.badInput(path: path, line: 0, message: "the Parquet footer is encrypted; decrypt the file first") }
        guard tail == magic else { throw damagedFooter(path, "the file does not end with PAR1 (truncated?)") }
        let len = Int(buf[n - 8]) | Int(buf[n - 7]) << 8 | Int(buf[n - 6]) << 16 | Int(buf[n - 5]) << 24
        guard len > 0, len <= n - 12 else { throw damagedFooter(path, "footer length \(len) does not fit the file's \(n) bytes") }
        let start = n - 8 - len
        var r = ThriftReader(buf, start: start, end: n - 8, what: "metadata")
        do {
            let meta = try FileMetadata.parse(&r)
            return (meta, start)
        } catch let e as ParquetError {
            throw damagedFooter(path, e.message)
        }
    }
}
