import TokenmillCore
#if canImport(Glibc)
import Glibc
#endif

/// RFC 4180 CSV: a header row names the columns; fields separated by commas, rows by
/// LF or CRLF; a field in double quotes may hold commas, newlines and doubled quotes
/// (`""` = `"`). Each data row becomes a JSON object of string values, so the spec's
/// `map` applies to CSV exactly as to JSON. Rows are numbered from 1 (the first data row;
/// the header is not a row), and that number is the record's `line`.
///
/// Bad rows — a quote that never closes, text after a closing quote, a quote inside an
/// unquoted field, a row with more or fewer fields than the header — are reported with
/// their row number; under `on_error: skip` they are rejects and reading goes on at the
/// next line. An unclosed quote swallows the rest of the file, so it stops the file even
/// under `on_error: skip`. With `csv_quotes: lenient` a quote inside an unquoted field is
/// a character of it (as Python's `csv` and pandas read `a,say "hi",b`).
enum CSVReader {
    struct Row {
        var number: Int
        var fields: [[UInt8]]
        /// Why the row is malformed (its fields are then empty).
        var error: String? = nil
    }

    struct Failure: Error {
        var row: Int
        var message: String
        var fatal: Bool
    }

    /// Splits `data` into rows of fields. `rowError` receives malformed rows that the
    /// reader could step over (text after a closing quote); fatal ones throw.
    /// `firstNumber`: the number of the first row (0: the header); a block of a streamed
    /// file starts later, and only the file's first block may start with a byte order mark.
    static func rows(_ data: UnsafeBufferPointer<UInt8>, firstNumber: Int = 0, lenientQuotes: Bool = false) throws(Failure) -> [Row] {
        var rows: [Row] = []
        guard let base = data.baseAddress else { return rows }
        var i = 0
        let n = data.count
        // A UTF-8 byte order mark before the header is not part of the first name.
        if firstNumber == 0 && n >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF { i = 3 }
        var number = firstNumber   // the header is row 0
        /// A malformed row: recorded, and reading goes on after the end of its line.
        func malformed(_ message: String) throws(Failure) {
            if number == 0 { throw Failure(row: 0, message: message + " (in the header)", fatal: true) }
            while i < n && data[i] != 0x0A { i += 1 }
            if i < n { i += 1 }
            rows.append(Row(number: number, fields: [], error: message))
            number += 1
        }
        rowLoop: while i < n {
            var fields: [[UInt8]] = []
            var field: [UInt8] = []
            var rowDone = false
            // A blank line (between rows, or trailing) is not a row.
            if data[i] == 0x0A { i += 1; continue }
            if data[i] == 0x0D && i + 1 < n && data[i + 1] == 0x0A { i += 2; continue }
            while !rowDone {
                if i < n && data[i] == 0x22 {
                    // Quoted field: copy runs up to the next quote in one append each.
                    i += 1
                    var closed = false
                    while i < n {
                        let rest = n - i
                        guard let hit = memchr(base + i, 0x22, rest) else { field.append(contentsOf: UnsafeBufferPointer(start: base + i, count: rest)); i = n; break }
                        let q = UnsafeRawPointer(hit) - UnsafeRawPointer(base)
                        field.append(contentsOf: UnsafeBufferPointer(start: base + i, count: q - i))
                        if q + 1 < n && data[q + 1] == 0x22 { field.append(0x22); i = q + 2; continue }
                        i = q + 1
                        closed = true
                        break
                    }
                    if !closed { throw Failure(row: number, message: "a quoted field is not closed before the end of the file", fatal: true) }
                    if i < n && data[i] != 0x2C && data[i] != 0x0A && !(data[i] == 0x0D && i + 1 < n && data[i + 1] == 0x0A) {
                        try malformed("text after the closing quote of a field")
                        continue rowLoop
                    }
                } else {
                    // Unquoted: up to the next comma or line end, appended at once.
                    let start = i
                    var strayQuote = false
                    while i < n {
                        let b = data[i]
                        if b == 0x2C || b == 0x0A { break }
                        if b == 0x0D && i + 1 < n && data[i + 1] == 0x0A { break }
                        if b == 0x22 { strayQuote = true }
                        i += 1
                    }
                    if strayQuote && !lenientQuotes {
                        try malformed("a quote inside an unquoted field (RFC 4180: quote the whole field and double the quote, or set \"csv_quotes\": \"lenient\")")
                        continue rowLoop
                    }
                    field.append(contentsOf: UnsafeBufferPointer(start: base + start, count: i - start))
                }
                fields.append(field)
                field = []
                if i >= n { rowDone = true }
                else if data[i] == 0x2C { i += 1; if i >= n { fields.append([]); rowDone = true } }
                else if data[i] == 0x0A { i += 1; rowDone = true }
                else { i += 2; rowDone = true }   // CRLF
            }
            rows.append(Row(number: number, fields: fields))
            number += 1
        }
        return rows
    }

    static func read<T>(_ src: SourceConfig, fileIndex: Int32, path: String, data: UnsafeBufferPointer<UInt8>, map: (JSONValue, Int) throws -> T) throws -> Rows<T> {
        var out = Rows<T>()
        guard let table = try scan(src, path: path, data, firstNumber: 0, into: &out) else { return out }
        guard let header = table.first else { throw TokenmillError.badInput(path: path, line: 0, message: "CSV: empty file (no header row)") }
        let names = try headerNames(header, path: path, src: src)
        try mapRows(src, path: path, names: names, table.dropFirst(), map: map, into: &out)
        return out
    }

    /// The rows of `data`; nil when a row-level failure stopped the file under
    /// `on_error: skip` (the reject is in `out`).
    static func scan<T>(_ src: SourceConfig, path: String, _ data: UnsafeBufferPointer<UInt8>, firstNumber: Int, into out: inout Rows<T>) throws -> [Row]? {
        do {
            return try rows(data, firstNumber: firstNumber, lenientQuotes: src.csvQuotes == .lenient)
        } catch {
            // Row-level failures in the scanner are reported against the row they hit.
            let what = "CSV: \(error.message)"
            if !src.skipBadRows || error.fatal || error.row == 0 {
                throw TokenmillError.badInput(path: path, line: error.row, message: what + (error.fatal ? "" : " (set \"on_error\": \"skip\" to record it in rejects.jsonl and go on)"))
            }
            out.rejects.append(Reject(source: src.name, path: path, line: error.row, reason: what + "; the rest of the file was not read"))
            return nil
        }
    }

    /// The header's column names. A column the mapping reads must be among them — a
    /// spec error even when no row follows (it would fail every row).
    static func headerNames(_ header: Row, path: String, src: SourceConfig) throws -> [[UInt8]] {
        var seen = Set<[UInt8]>()
        for name in header.fields where !seen.insert(name).inserted {
            throw TokenmillError.badInput(path: path, line: 0, message: "CSV: the header names column '\(String(decoding: name, as: UTF8.self))' twice")
        }
        let missing = src.mapping.topLevelKeys.filter { !seen.contains($0) }.map { String(decoding: $0, as: UTF8.self) }.sorted()
        if let first = missing.first {
            let columns = header.fields.map { "'" + String(decoding: $0, as: UTF8.self) + "'" }.joined(separator: ", ")
            throw TokenmillError.spec(path: path, key: "sources.\(src.name).map",
                                      message: "the CSV header has no column '\(first)'\(missing.count > 1 ? " (nor \(missing.dropFirst().map { "'\($0)'" }.joined(separator: ", ")))" : ""); its columns are \(columns)")
        }
        return header.fields
    }

    /// A CSV file from a stream: each block is cut after its last newline outside quotes
    /// (quote parity: in RFC 4180 quotes come in pairs, a doubled one included), so no row
    /// spans two blocks; rows are numbered on from block to block. Returns whether the
    /// file had any content.
    static func stream<T>(_ src: SourceConfig, fileIndex: Int32, path: String, stream: ByteStream,
                          map: (JSONValue, Int) throws -> T, emit: (Rows<T>) throws -> Void) throws -> Bool {
        var buffer: [UInt8] = []
        var names: [[UInt8]]? = nil
        var next = 0
        var content = false
        var more = true
        var scanned = 0, inQuotes = false, lastCut = -1   // parity carried over bytes already looked at
        while more {
            more = try stream.read(into: &buffer, max: SourceReader.blockBytes)
            buffer.withUnsafeBufferPointer { b in
                for i in scanned..<b.count {
                    let c = b[i]
                    if c == 0x22 { inQuotes.toggle() } else if c == 0x0A && !inQuotes { lastCut = i }
                }
            }
            scanned = buffer.count
            var cut = buffer.count
            if more {
                if lastCut < 0 { continue }   // no row ends in this block yet: read on
                cut = lastCut + 1
            }
            if cut == 0 { continue }
            var out = Rows<T>()
            let stop: Bool = try buffer.withUnsafeBufferPointer { b in
                let head = UnsafeBufferPointer(rebasing: b[0..<cut])
                if !content { content = !head.allSatisfy { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 } }
                guard var table = try scan(src, path: path, head, firstNumber: next, into: &out) else { return true }
                if names == nil, let header = table.first {
                    names = try headerNames(header, path: path, src: src)
                    table.removeFirst()
                }
                if let last = table.last { next = last.number + 1 } else if next == 0 && names != nil { next = 1 }
                if let names { try mapRows(src, path: path, names: names, table[...], map: map, into: &out) }
                return false
            }
            if !out.items.isEmpty || !out.rejects.isEmpty || out.repaired > 0 { try emit(out) }
            if stop { return true }
            buffer.removeFirst(cut)
            scanned -= cut; lastCut = -1
        }
        if content && names == nil { throw TokenmillError.badInput(path: path, line: 0, message: "CSV: empty file (no header row)") }
        return content
    }

    /// Data rows to records through the header's names.
    static func mapRows<T>(_ src: SourceConfig, path: String, names: [[UInt8]], _ table: ArraySlice<Row>, map: (JSONValue, Int) throws -> T, into out: inout Rows<T>) throws {
        for row in table {
            do {
                if let e = row.error { throw MappingError(e) }
                guard row.fields.count == names.count else {
                    throw MappingError("CSV row has \(row.fields.count) fields, the header \(names.count)")
                }
                var fields = row.fields
                var repaired = false
                for k in fields.indices where !fields[k].withUnsafeBufferPointer(UTF8Validation.isValid) {
                    try src.checkUTF8(repairs: 1)
                    fields[k] = Array(String(decoding: fields[k], as: UTF8.self).utf8)
                    repaired = true
                }
                if repaired { out.repaired += 1 }
                let object = JSONValue.object(zip(names, fields).map { JSONMember(key: $0, value: .string($1)) })
                out.items.append(try map(object, row.number))
            } catch let e as MappingError {
                out.rejects.append(try src.badRow(path: path, line: row.number, e.message))
            }
        }
    }
}
