import TokenmillCore
#if canImport(Glibc)
import Glibc
#endif

/// One source of the spec, resolved: its files, format and mapping.
public struct SourceConfig: Sendable {
    /// `text`: the whole file is one record (field `text`); `lines`: every non-empty line
    /// is one (field `text`); `csv`: RFC 4180 with a header row; `parquet`: columns are fields.
    public enum Format: String, Sendable, CaseIterable { case jsonl, json, csv, parquet, text, lines }
    public var name: String
    public var index: Int32
    public var files: [String]
    public var format: Format?
    public var mapping: FieldMapping
    public var skipBadRows: Bool
    /// Invalid UTF-8 (and lone surrogate escapes) in a row: `repair` replaces each bad
    /// sequence with U+FFFD and counts the row in `repaired`; `reject` makes it a bad row.
    public enum InvalidUTF8: String, Sendable { case repair, reject }
    public var invalidUTF8: InvalidUTF8
    /// A double quote inside an unquoted CSV field: bad input (`strict`, RFC 4180), or a
    /// character of the field (`lenient`, as Python's csv module reads it).
    public enum CSVQuotes: String, Sendable, CaseIterable { case strict, lenient }
    public var csvQuotes: CSVQuotes

    public init(name: String, index: Int32, files: [String], format: Format?, mapping: FieldMapping, skipBadRows: Bool,
                invalidUTF8: InvalidUTF8 = .repair, csvQuotes: CSVQuotes = .strict) {
        self.name = name; self.index = index; self.files = files; self.format = format
        self.mapping = mapping; self.skipBadRows = skipBadRows; self.invalidUTF8 = invalidUTF8; self.csvQuotes = csvQuotes
    }

    /// Format from the extension (`.jsonl`, `.json`, `.csv`, `.parquet`, `.txt`, each optionally
    /// `.gz`/`.zst`); nil when unknown.
    public static func inferFormat(_ path: String) -> Format? {
        let p = Compression.stripped(path)
        if p.hasSuffix(".jsonl") || p.hasSuffix(".ndjson") { return .jsonl }
        if p.hasSuffix(".json") { return .json }
        if p.hasSuffix(".csv") { return .csv }
        if p.hasSuffix(".parquet") || p.hasSuffix(".pq") { return .parquet }
        if p.hasSuffix(".txt") || p.hasSuffix(".md") { return .text }
        return nil
    }
}

/// A row dropped for bad input (`rejects.jsonl`).
public struct Reject: Sendable {
    public var source: String
    public var path: String
    public var line: Int
    public var reason: String
    public init(source: String, path: String, line: Int, reason: String) {
        self.source = source; self.path = path; self.line = line; self.reason = reason
    }
}

/// What one file gave: its records in file order, and its rejected rows.
public struct FileRows: Sendable {
    public var records: [Record] = []
    public var rejects: [Reject] = []
    /// Input rows that went into records: one a record, except for `group_by` sources,
    /// where several rows make one conversation. rowsRead + rejects = rows of the input.
    public var rowsRead: Int
    /// Rows whose invalid UTF-8 was replaced with U+FFFD (`invalid_utf8: repair`).
    public var repaired = 0
    /// 1 when the file began with a UTF-8 byte order mark, which was skipped (set on one
    /// piece of a file read in pieces).
    public var byteOrderMarks = 0
    public init(records: [Record] = [], rejects: [Reject] = [], rowsRead: Int? = nil) {
        self.records = records; self.rejects = rejects; self.rowsRead = rowsRead ?? records.count
    }
}

/// Rows a reader mapped (records, or turn rows of a grouped source) and its rejects.
struct Rows<T> {
    var items: [T] = []
    var rejects: [Reject] = []
    var repaired = 0
}

/// Items that parallel batches produce at known positions (row i of n), gathered in order
/// by moving them, not copying: appending one batch's array to another copies each
/// record, retaining its three arrays, and the batch's array then releases them — ~10%
/// of JSONL ingest in a perf profile. Each position is written by one batch only.
final class OrderedSlots<T>: @unchecked Sendable {
    private let base: UnsafeMutablePointer<T>
    private let filled: UnsafeMutablePointer<Bool>
    private let count: Int

    init(count: Int) {
        self.count = count
        base = .allocate(capacity: max(count, 1))
        filled = .allocate(capacity: max(count, 1))
        filled.initialize(repeating: false, count: max(count, 1))
    }

    func put(_ i: Int, _ item: consuming T) {
        (base + i).initialize(to: item)
        filled[i] = true
    }

    /// Appends the items to `out` in position order (moved: `move()` hands over
    /// ownership, no retain); the slots are empty afterwards.
    func moveAll(into out: inout [T]) {
        var n = 0
        for i in 0..<count where filled[i] { n += 1 }
        out.reserveCapacity(out.count + n)
        for i in 0..<count where filled[i] {
            out.append((base + i).move())
            filled[i] = false
        }
    }

    deinit {
        for i in 0..<count where filled[i] { (base + i).deinitialize(count: 1) }
        base.deallocate()
        filled.deallocate()
    }
}

extension SourceConfig {
    /// A bad row: an error naming the file and line (`on_error: fail`), or the reject to
    /// record (`on_error: skip`).
    func badRow(path: String, line: Int, _ reason: String) throws -> Reject {
        if !skipBadRows {
            throw TokenmillError.badInput(path: path, line: line, message: reason + " (set \"on_error\": \"skip\" to record it in rejects.jsonl and go on)")
        }
        return Reject(source: name, path: path, line: line, reason: reason)
    }

    /// Applies the invalid-UTF-8 policy to a row that needed `repairs` replacements.
    func checkUTF8(repairs: Int) throws {
        if repairs > 0 && invalidUTF8 == .reject {
            throw MappingError("invalid UTF-8 or a lone surrogate escape in a string (set \"invalid_utf8\": \"repair\" to replace it with U+FFFD)")
        }
    }
}

/// Reads JSONL and JSON-array files into records. JSONL lines are parsed in parallel
/// batches and merged in order; blank lines are not rows. A bad row stops the build with
/// `file:line: what` unless the source skips bad rows, in which case it becomes a reject.
public enum SourceReader {
    public static func read(_ src: SourceConfig, fileIndex: Int32, path: String, threads: Int) throws -> FileRows {
        if Compression.of(path) == .none {
            // Read where it lies: mapped, not copied into the heap.
            let file = try FileSystem.map(path)
            return try withExtendedLifetime(file) { try read(src, fileIndex: fileIndex, path: path, data: file.bytes, threads: threads) }
        }
        return try read(src, fileIndex: fileIndex, path: path, input: .stream(try ByteStream(path: path, compression: Compression.of(path))), threads: threads)
    }

    /// A file handed to `sink` in pieces, each a block's rows in file order, so that a file
    /// of any size costs about one block of memory (`blockBytes` of decompressed input and
    /// its records): JSONL (compressed; plain JSONL is cut into units by byte range before
    /// it gets here), JSON arrays, CSV and `lines`, plain or compressed. Whole-file `text`,
    /// Parquet and `group_by` sources (a conversation's rows may lie anywhere in its file)
    /// are one piece.
    public static func readStreaming(_ src: SourceConfig, fileIndex: Int32, path: String, threads: Int,
                                     sink: (FileRows) throws -> Void) throws {
        let format = src.format ?? SourceConfig.inferFormat(path)
        let compressed = Compression.of(path) != .none
        if format == .parquet && !compressed && src.mapping.group == nil {
            try readParquet(src, fileIndex: fileIndex, path: path, groups: nil, threads: threads, sink: sink)
            return
        }
        let streams = src.mapping.group == nil && (format == .json || format == .csv || format == .lines || (format == .jsonl && compressed))
        guard streams, let format else {
            try sink(try read(src, fileIndex: fileIndex, path: path, threads: threads))
            return
        }
        let stream = try ByteStream(path: path, compression: Compression.of(path))
        let fast: ((ScannedRow, Int) throws -> Record)? = src.mapping.scanKeys == nil ? nil : { row, line in
            try src.mapping.plainRecord(from: row, source: src.index, file: fileIndex, line: line)
        }
        let map: (JSONValue, Int) throws -> Record = { value, line in try src.mapping.record(from: value, source: src.index, file: fileIndex, line: line) }
        let content: Bool = try withoutActuallyEscaping(sink) { sink in
            let emit: (Rows<Record>) throws -> Void = { part in
                var rows = FileRows(records: part.items, rejects: part.rejects)
                rows.repaired = part.repaired
                rows.byteOrderMarks = stream.takeByteOrderMarks()
                try sink(rows)
            }
            switch format {
            case .jsonl: return try streamJSONL(src, fileIndex: fileIndex, path: path, stream: stream, threads: threads, fast: fast, map: map, emit: emit).1
            case .json: return try streamJSONArray(src, fileIndex: fileIndex, path: path, stream: stream, threads: threads, fast: fast, map: map, emit: emit).1
            case .csv: return try CSVReader.stream(src, fileIndex: fileIndex, path: path, stream: stream, map: map, emit: emit)
            default: return try streamLines(src, fileIndex: fileIndex, path: path, stream: stream, map: map, emit: emit)
            }
        }
        if !content {
            var rows = FileRows(rejects: [try src.badRow(path: path, line: 0, "the file is empty")])
            rows.byteOrderMarks = stream.takeByteOrderMarks()
            try sink(rows)
        }
    }

    /// A Parquet file's row groups `groups` (all when nil), handed to `sink` one row group
    /// at a time from a mapping whose pages are released after each group, so memory is
    /// about one row group whatever the file's size. Rows keep their numbers in the file.
    public static func readParquet(_ src: SourceConfig, fileIndex: Int32, path: String, groups: Range<Int>?, threads: Int,
                                   sink: (FileRows) throws -> Void) throws {
        let file = try FileSystem.map(path, populate: false)
        try withExtendedLifetime(file) {
            // Empty (or blank) as the other readers judge it; only a small file is looked at
            // whole, since touching every page would undo the streaming.
            if file.bytes.count <= 4096 && file.bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
                try sink(FileRows(rejects: [try src.badRow(path: path, line: 0, "the file is empty")]))
                return
            }
            func rows(_ part: Rows<Record>) -> FileRows {
                var r = FileRows(records: part.items, rejects: part.rejects)
                r.repaired = part.repaired
                return r
            }
            let rest = try withoutActuallyEscaping(sink) { sink in
                try ParquetReader.read(src, fileIndex: fileIndex, path: path, data: file.bytes, threads: threads, groups: groups,
                                       emit: { try sink(rows($0)) }, release: { file.release($0) },
                                       flat: src.mapping.chat == nil ? { row, line in try src.mapping.plainRecord(from: row, source: src.index, file: fileIndex, line: line) } : nil,
                                       map: { value, line in try src.mapping.record(from: value, source: src.index, file: fileIndex, line: line) })
            }
            if !rest.items.isEmpty || !rest.rejects.isEmpty || rest.repaired > 0 { try sink(rows(rest)) }
        }
    }

    /// `lines` from a stream: blocks cut after their last newline, numbered on.
    static func streamLines<T>(_ src: SourceConfig, fileIndex: Int32, path: String, stream: ByteStream,
                               map: (JSONValue, Int) throws -> T, emit: (Rows<T>) throws -> Void) throws -> Bool {
        try forEachLineBlock(stream) { head, line in
            try emit(try readText(src, fileIndex: fileIndex, path: path, data: head, perLine: true, firstLine: line, map: map))
        }
    }

    /// Hands `body` each block of whole lines a stream holds (`blockBytes` at a time; a line
    /// longer than a block waits for the rest of it) with the number of its first line.
    /// Returns whether the stream held anything but whitespace.
    static func forEachLineBlock(_ stream: ByteStream, _ body: (UnsafeBufferPointer<UInt8>, Int) throws -> Void) throws -> Bool {
        var buffer: [UInt8] = []
        var line = 1
        var content = false
        var more = true
        while more {
            more = try stream.read(into: &buffer, max: blockBytes)
            var cut = buffer.count
            if more {
                guard let nl = buffer.lastIndex(of: 0x0A) else { continue }   // one line longer than a block: read on
                cut = nl + 1
            }
            if cut == 0 { continue }
            try buffer.withUnsafeBufferPointer { b in
                let head = UnsafeBufferPointer(rebasing: b[0..<cut])
                if !content { content = !head.allSatisfy(isJSONSpace) }
                try body(head, line)
                line += newlines(in: head)
            }
            buffer.removeFirst(cut)
        }
        return content
    }

    /// The lines of one block of a JSONL file (`data`: whole lines, the first numbered 1),
    /// for builds that cut large files into units of work.
    public static func readJSONLBlock(_ src: SourceConfig, fileIndex: Int32, path: String, data: UnsafeBufferPointer<UInt8>,
                                      threads: Int) throws -> FileRows {
        let fast: ((ScannedRow, Int) throws -> Record)? = src.mapping.scanKeys == nil ? nil : { row, line in
            try src.mapping.plainRecord(from: row, source: src.index, file: fileIndex, line: line)
        }
        let r = try readJSONL(src, fileIndex: fileIndex, path: path, data: data, threads: threads, fast: fast) { value, line in
            try src.mapping.record(from: value, source: src.index, file: fileIndex, line: line)
        }
        var rows = FileRows(records: r.items, rejects: r.rejects)
        rows.repaired = r.repaired
        return rows
    }

    /// The same from the file's bytes as stored (compressed when `path` says so): what
    /// the fuzz tests drive.
    public static func read(_ src: SourceConfig, fileIndex: Int32, path: String, contents: [UInt8], threads: Int) throws -> FileRows {
        if Compression.of(path) == .none {
            return try contents.withUnsafeBufferPointer { try read(src, fileIndex: fileIndex, path: path, data: $0, threads: threads) }
        }
        return try read(src, fileIndex: fileIndex, path: path, input: .stream(try ByteStream(contents: contents, path: path, compression: Compression.of(path))), threads: threads)
    }

    static func read(_ src: SourceConfig, fileIndex: Int32, path: String, data: UnsafeBufferPointer<UInt8>, threads: Int) throws -> FileRows {
        try read(src, fileIndex: fileIndex, path: path, input: .bytes(data), threads: threads)
    }

    /// A file's bytes: all of them at hand (mapped or in memory), or a stream read block
    /// by block (compressed inputs).
    enum Input {
        case bytes(UnsafeBufferPointer<UInt8>)
        case stream(ByteStream)
    }

    /// Bytes decompressed per block when a JSONL file or a JSON array is streamed.
    nonisolated(unsafe) static var blockBytes = 32 << 20

    static func read(_ src: SourceConfig, fileIndex: Int32, path: String, input: Input, threads: Int) throws -> FileRows {
        // A UTF-8 byte order mark at the start of a text file is skipped (and counted);
        // Parquet is binary. Streams skip their own (`ByteStream`).
        var input = input, byteOrderMarks = 0
        let text = src.format ?? SourceConfig.inferFormat(path) != .parquet
        if case .bytes(let b) = input, text, let rest = skippingByteOrderMark(b) {
            input = .bytes(rest)
            byteOrderMarks = 1
        }
        if case .stream(let s) = input { s.skipsByteOrderMark = text }
        var out = try readRows(src, fileIndex: fileIndex, path: path, input: input, threads: threads)
        if case .stream(let s) = input { byteOrderMarks = s.takeByteOrderMarks() }
        out.byteOrderMarks = byteOrderMarks
        return out
    }

    static let byteOrderMark: [UInt8] = [0xEF, 0xBB, 0xBF]

    /// The bytes after a leading UTF-8 byte order mark, or nil when there is none.
    public static func skippingByteOrderMark(_ b: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8>? {
        guard b.count >= 3, b[0] == 0xEF, b[1] == 0xBB, b[2] == 0xBF else { return nil }
        return UnsafeBufferPointer(rebasing: b[3...])
    }

    static func readRows(_ src: SourceConfig, fileIndex: Int32, path: String, input: Input, threads: Int) throws -> FileRows {
        guard let format = src.format ?? SourceConfig.inferFormat(path) else {
            throw TokenmillError.spec(path: path, key: "sources.\(src.name).format", message: "cannot infer the format from the extension; give \"format\" (one of \(SourceConfig.Format.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        // An empty file is almost always a failed download or export, not "no records".
        func emptyFile() throws -> FileRows { FileRows(rejects: [try src.badRow(path: path, line: 0, "the file is empty")]) }
        // Rows of the file, nil when it holds nothing but whitespace. JSONL and JSON arrays
        // stream; the other formats need the whole file (CSV rows may span lines, Parquet
        // starts at its footer).
        func rows<T>(fast: ((ScannedRow, Int) throws -> T)? = nil, flat: ((ParquetFlatRow, Int) throws -> T)? = nil,
                     _ map: (JSONValue, Int) throws -> T) throws -> Rows<T>? {
            if case .stream(let stream) = input, format == .jsonl || format == .json {
                let (r, content) = format == .jsonl
                    ? try streamJSONL(src, fileIndex: fileIndex, path: path, stream: stream, threads: threads, fast: fast, map: map)
                    : try streamJSONArray(src, fileIndex: fileIndex, path: path, stream: stream, threads: threads, fast: fast, map: map)
                return content ? r : nil
            }
            func dispatch(_ data: UnsafeBufferPointer<UInt8>) throws -> Rows<T>? {
                if data.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return nil }
                switch format {
                case .jsonl: return try readJSONL(src, fileIndex: fileIndex, path: path, data: data, threads: threads, fast: fast, map: map)
                case .json: return try readJSONArray(src, fileIndex: fileIndex, path: path, data: data, threads: threads, fast: fast, map: map)
                case .csv: return try CSVReader.read(src, fileIndex: fileIndex, path: path, data: data, map: map)
                case .parquet: return try ParquetReader.read(src, fileIndex: fileIndex, path: path, data: data, threads: threads, flat: flat, map: map)
                case .text, .lines: return try readText(src, fileIndex: fileIndex, path: path, data: data, perLine: format == .lines, map: map)
                }
            }
            switch input {
            case .bytes(let b): return try dispatch(b)
            case .stream(let s): return try s.readAll().withUnsafeBufferPointer { try dispatch($0) }
            }
        }
        if let group = src.mapping.group {
            guard let turns = try rows({ value, line in try group.turnRow(from: value, line: line) }) else { return try emptyFile() }
            var out = FileRows(rejects: turns.rejects, rowsRead: turns.items.count)
            out.repaired = turns.repaired
            for g in Grouping.conversations(turns.items) {
                do {
                    out.records.append(try group.record(g, source: src.index, file: fileIndex))
                } catch let e as MappingError {
                    let line = g.first?.line ?? 0
                    if !src.skipBadRows { throw TokenmillError.badInput(path: path, line: line, message: e.message + " (set \"on_error\": \"skip\" to record it in rejects.jsonl and go on)") }
                    // The group's rows are rejected together, so rows read + rejected stays the row count.
                    out.rowsRead -= g.count
                    for row in g { out.rejects.append(Reject(source: src.name, path: path, line: row.line, reason: e.message)) }
                }
            }
            return out
        }
        // Plain mappings of top-level fields map JSON rows straight from their bytes.
        let fast: ((ScannedRow, Int) throws -> Record)? = src.mapping.scanKeys == nil ? nil : { row, line in
            try src.mapping.plainRecord(from: row, source: src.index, file: fileIndex, line: line)
        }
        // Parquet rows of top-level primitive columns are mapped from the column values.
        let flat: ((ParquetFlatRow, Int) throws -> Record)? = src.mapping.chat != nil ? nil : { row, line in
            try src.mapping.plainRecord(from: row, source: src.index, file: fileIndex, line: line)
        }
        guard let r = try rows(fast: fast, flat: flat, { value, line in try src.mapping.record(from: value, source: src.index, file: fileIndex, line: line) }) else {
            return try emptyFile()
        }
        var out = FileRows(records: r.items, rejects: r.rejects)
        out.repaired = r.repaired
        return out
    }

    /// Plain text: one record a file (`text`) or a non-empty line (`lines`), as the
    /// string field `text` for the mapping. Invalid UTF-8 is a bad row.
    static func readText<T>(_ src: SourceConfig, fileIndex: Int32, path: String, data: UnsafeBufferPointer<UInt8>, perLine: Bool,
                            firstLine: Int = 1, map: (JSONValue, Int) throws -> T) throws -> Rows<T> {
        var out = Rows<T>()
        var pieces: [(Slice<UnsafeBufferPointer<UInt8>>, Int)] = []
        if perLine {
            var s = 0, number = firstLine
            for i in 0...data.count where i == data.count || data[i] == 0x0A {
                var e = i
                if e > s && data[e - 1] == 0x0D { e -= 1 }
                if e > s { pieces.append((data[s..<e], number)) }
                s = i + 1; number += 1
            }
        } else if !data.isEmpty {
            pieces.append((data[...], 1))
        }
        for (bytes, n) in pieces {
            do {
                var text = Array(bytes)
                if !UTF8Validation.isValid(UnsafeBufferPointer(rebasing: bytes)) {
                    try src.checkUTF8(repairs: 1)
                    text = Array(String(decoding: bytes, as: UTF8.self).utf8)
                    out.repaired += 1
                }
                let row = JSONValue.object([JSONMember(key: Array("text".utf8), value: .string(text))])
                out.items.append(try map(row, n))
            } catch let e as MappingError {
                out.rejects.append(try src.badRow(path: path, line: n, e.message))
            }
        }
        return out
    }

    /// Parses and maps the elements of a JSON array (already syntax-checked and located)
    /// in parallel batches, merged in order into `out`.
    static func mapElements<T>(_ src: SourceConfig, path: String, _ elements: [(start: Int, end: Int, line: Int)],
                               in buf: UnsafeBufferPointer<UInt8>, threads: Int, fast: ((ScannedRow, Int) throws -> T)?,
                               map: (JSONValue, Int) throws -> T, into out: inout Rows<T>) throws {
        let keys = src.mapping.topLevelKeys
        try mapRows(src, path: path, count: elements.count, batchSize: 1024, in: buf, threads: threads, fast: fast, map: map,
                    row: { elements[$0] }, parse: { parser, _ in
            do { return try parser.parseRow(keeping: keys) } catch let error as JSONParser.Failure {
                throw MappingError("invalid JSON: \(error.message)")   // cannot happen: the skip pass checked it
            }
        }, into: &out)
    }

    /// The batch loop JSONL lines and JSON array elements share: rows `0..<count`
    /// (`row(i)`: start, end and line) are mapped in parallel batches, each through the hot
    /// path when it can take it, else parsed by `parse` (nil: a blank line, not a row; a
    /// `MappingError`: the row is bad) and mapped; items move into `out` in row order.
    static func mapRows<T>(_ src: SourceConfig, path: String, count: Int, batchSize: Int, in buf: UnsafeBufferPointer<UInt8>,
                           threads: Int, fast: ((ScannedRow, Int) throws -> T)?, map: (JSONValue, Int) throws -> T,
                           row: (Int) -> (start: Int, end: Int, line: Int),
                           parse: (inout JSONParser, _ start: Int) throws -> JSONValue?, into out: inout Rows<T>) throws {
        let items = OrderedSlots<T>(count: count)
        let parts: [Rows<T>] = try parallelBatches(count: count, threads: threads, batchSize: batchSize) { range in
            var part = Rows<T>()
            var scanner = RowScanner(src.mapping)
            defer { scanner.deallocate() }
            for k in range {
                let (a, b, n) = row(k)
                if let item = scanner.map(fast, buf, a, b, line: n) {
                    items.put(k, item)
                    continue
                }
                var parser = JSONParser(buf, start: a, end: b)
                do {
                    guard let value = try parse(&parser, a) else { continue }
                    try src.checkUTF8(repairs: parser.repairs)
                    if parser.repairs > 0 { part.repaired += 1 }
                    items.put(k, try map(value, n))
                } catch let e as MappingError {
                    part.rejects.append(try src.badRow(path: path, line: n, e.message))
                }
            }
            return part
        }
        items.moveAll(into: &out.items)
        for part in parts { out.rejects.append(contentsOf: part.rejects); out.repaired += part.repaired }
    }

    static func readJSONL<T>(_ src: SourceConfig, fileIndex: Int32, path: String, data: UnsafeBufferPointer<UInt8>, threads: Int,
                             firstLine: Int = 1, fast: ((ScannedRow, Int) throws -> T)? = nil, map: (JSONValue, Int) throws -> T) throws -> Rows<T> {
        // Line table first (cheap), then parse batches of lines on all cores.
        var lines: [(start: Int, end: Int, line: Int)] = []
        var s = 0, number = firstLine
        lines.reserveCapacity(data.count / 256)
        data.withUnsafeBufferPointer { p in
            guard let base = p.baseAddress else { return }
            // memchr finds newlines at memory speed.
            while s < p.count, let hit = memchr(base + s, 0x0A, p.count - s) {
                let i = UnsafeRawPointer(hit) - UnsafeRawPointer(base)
                lines.append((s, i, number)); s = i + 1; number += 1
            }
            if s < p.count { lines.append((s, p.count, number)) }
        }
        let keys = src.mapping.topLevelKeys
        var all = Rows<T>()
        try data.withUnsafeBufferPointer { buf in
            try mapRows(src, path: path, count: lines.count, batchSize: 2048, in: buf, threads: threads, fast: fast, map: map,
                        row: { lines[$0] }, parse: { parser, a in
                parser.skipWhitespace()
                if parser.atEnd { return nil }   // blank line: not a row
                do {
                    let value = try parser.parseRow(keeping: keys)
                    parser.skipWhitespace()
                    if !parser.atEnd { throw JSONParser.Failure(offset: parser.position, message: "unexpected data after the JSON value") }
                    return value
                } catch let f as JSONParser.Failure {
                    throw MappingError("invalid JSON at column \(f.offset - a + 1): \(f.message)")
                }
            }, into: &all)
        }
        return all
    }

    /// A JSON array of rows: one sequential pass finds the elements (syntax-checked and
    /// skipped, not built), then elements are parsed and mapped in parallel batches and
    /// merged in order. Under `on_error: skip` a syntax error, inside an element or
    /// between two, is a reject, and reading goes on at the next element
    /// (`resynchronize`), or stops with a reject saying why it cannot.
    static func readJSONArray<T>(_ src: SourceConfig, fileIndex: Int32, path: String, data: UnsafeBufferPointer<UInt8>, threads: Int,
                                 fast: ((ScannedRow, Int) throws -> T)? = nil, map: (JSONValue, Int) throws -> T) throws -> Rows<T> {
        var out = Rows<T>()
        try data.withUnsafeBufferPointer { buf in
            var p = JSONParser(buf)
            var lineAt = 1, lineOffset = 0
            func line(_ off: Int) -> Int {
                lineAt = lineNumber(of: off, in: buf, startLine: lineAt, from: lineOffset); lineOffset = off
                return lineAt
            }
            func fail(_ off: Int, _ m: String) -> TokenmillError { .badInput(path: path, line: line(off), message: m) }
            p.skipWhitespace()
            guard p.peek() == UInt8(ascii: "[") else { throw fail(p.position, "expected a JSON array of records") }
            p.advance()
            p.skipWhitespace()
            var elements: [(start: Int, end: Int, line: Int)] = []
            var stoppedAt: (line: Int, reason: String)? = nil
            /// A syntax error at `offset`: fatal, or a reject and a jump to the next element.
            func damaged(_ offset: Int, _ msg: String) throws -> Bool {
                if !src.skipBadRows { throw fail(offset, msg) }
                let at = line(offset)
                switch resynchronize(buf, from: offset, more: false) {
                case .found(let next):
                    out.rejects.append(Reject(source: src.name, path: path, line: at, reason: msg + "; skipped to line \(line(next)), where the next element starts"))
                    p = JSONParser(buf, start: next)
                    return true
                case .none(let why), .waitForMore(let why):
                    stoppedAt = (at, msg + "; the rest of the file was not read (\(why))")
                    return false
                }
            }
            if p.peek() == UInt8(ascii: "]") {
                p.advance()
            } else {
                elementLoop: while true {
                    p.skipWhitespace()
                    let start = p.position
                    let n = line(start)
                    do { try p.skipValue() } catch let error as JSONParser.Failure {
                        if try damaged(error.offset, "invalid JSON: \(error.message)") { continue elementLoop }
                        break
                    }
                    elements.append((start, p.position, n))
                    p.skipWhitespace()
                    guard let c = p.peek() else {
                        // Nothing follows to resynchronise at.
                        let msg = "unexpected end of file inside the array"
                        if !src.skipBadRows { throw fail(p.position, msg) }
                        stoppedAt = (line(p.position), msg)
                        break
                    }
                    p.advance()
                    if c == UInt8(ascii: "]") { break }
                    if c != UInt8(ascii: ",") {
                        if try damaged(p.position - 1, "expected ',' or ']' between array elements") { continue elementLoop }
                        break
                    }
                }
            }
            if stoppedAt == nil {
                p.skipWhitespace()
                if !p.atEnd { throw fail(p.position, "unexpected data after the array") }
            }
            try mapElements(src, path: path, elements, in: buf, threads: threads, fast: fast, map: map, into: &out)
            if let stoppedAt { out.rejects.append(Reject(source: src.name, path: path, line: stoppedAt.line, reason: stoppedAt.reason)) }
        }
        return out
    }
}

/// Where the element scan of a streamed JSON array stands.
enum ArrayScanState { case beforeArray, firstOrEnd, value, afterValue, resync, done }

/// What `resynchronize` found after damage in a JSON array.
enum Resync {
    /// The offset where the next element starts.
    case found(Int)
    /// Nothing yet, but the buffer's end may cut a candidate: read on.
    case waitForMore(String)
    /// No element can be found: why.
    case none(String)
}

extension SourceReader {
    /// Bytes kept from a block's end while resynchronising, so a candidate element cut by
    /// the end is searched again whole with the next block.
    static let resyncOverlap = 1 << 20
    /// Bytes the candidates of one resynchronisation may parse in all: a damaged file
    /// of nested objects cannot turn the search quadratic.
    static let resyncBudget = 64 << 20

    /// Where reading can go on after damage at `from` in a JSON array of records: the
    /// first later `{` that follows a `,` (whitespace between) and begins a whole value
    /// followed by `,` or `]`. Records are objects, so the next row starts that way; a
    /// `{` inside a string could also, which the value-and-separator test makes unlikely.
    static func resynchronize(_ buf: UnsafeBufferPointer<UInt8>, from: Int, more: Bool) -> Resync {
        var i = max(from, 0)
        var spent = 0
        while i < buf.count {
            guard let brace = UnsafeBufferPointer(rebasing: buf[i...]).firstIndex(of: UInt8(ascii: "{")) else { break }
            let at = i + brace
            i = at + 1
            var b = at - 1
            while b >= from && isJSONSpace(buf[b]) { b -= 1 }
            guard b >= from, buf[b] == UInt8(ascii: ",") else { continue }
            var q = JSONParser(buf, start: at)
            do {
                try q.skipValue()
            } catch {
                spent += error.offset - at
                if more && error.offset >= buf.count - 16 { return .waitForMore("an element is cut by the block's end") }
                if spent > resyncBudget { return .none("no element could be found within \(resyncBudget >> 20) MiB of parsing") }
                continue
            }
            spent += q.position - at
            q.skipWhitespace()
            guard let c = q.peek() else {
                if more { return .waitForMore("an element is cut by the block's end") }
                continue
            }
            if c == UInt8(ascii: ",") || c == UInt8(ascii: "]") { return .found(at) }
            if spent > resyncBudget { return .none("no element could be found within \(resyncBudget >> 20) MiB of parsing") }
        }
        return more ? .waitForMore("no element starts in this block") : .none("no later element starts with '{' after a ','")
    }

    static func isJSONSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 }

    static func newlines(in b: UnsafeBufferPointer<UInt8>) -> Int { countBytes(b, equalTo: 0x0A) }

    /// JSONL from a stream: each block's complete lines are read as `readJSONL` reads a
    /// whole file (line numbers carried on); the line cut by the block's end waits for
    /// the next block. Returns the rows and whether the file held anything but whitespace.
    static func streamJSONL<T>(_ src: SourceConfig, fileIndex: Int32, path: String, stream: ByteStream, threads: Int,
                               fast: ((ScannedRow, Int) throws -> T)?, map: (JSONValue, Int) throws -> T,
                               emit: ((Rows<T>) throws -> Void)? = nil) throws -> (Rows<T>, Bool) {
        var all = Rows<T>()
        let content = try forEachLineBlock(stream) { head, line in
            let part = try readJSONL(src, fileIndex: fileIndex, path: path, data: head, threads: threads, firstLine: line, fast: fast, map: map)
            if let emit { try emit(part) } else {
                all.items.append(contentsOf: part.items); all.rejects.append(contentsOf: part.rejects); all.repaired += part.repaired
            }
        }
        return (all, content)
    }

    /// A JSON array from a stream: elements are found block by block (an element cut by
    /// a block's end is carried into the next), then parsed and mapped in parallel as in
    /// `readJSONArray`; only the current block and the element crossing it are held.
    static func streamJSONArray<T>(_ src: SourceConfig, fileIndex: Int32, path: String, stream: ByteStream, threads: Int,
                                   fast: ((ScannedRow, Int) throws -> T)?, map: (JSONValue, Int) throws -> T,
                                   emit: ((Rows<T>) throws -> Void)? = nil) throws -> (Rows<T>, Bool) {
        var state = ArrayScanState.beforeArray
        var buffer: [UInt8] = []
        var all = Rows<T>()
        var more = true
        var content = false
        var lineAtStart = 1          // line number of buffer[0]
        var stopped: (line: Int, reason: String)? = nil
        var damage: (line: Int, reason: String)? = nil   // being skipped (state .resync)
        while state != .done {
            if more { more = try stream.read(into: &buffer, max: blockBytes) }
            var keep = 0             // bytes before this offset are done with
            var nextLine = lineAtStart
            try buffer.withUnsafeBufferPointer { buf in
                var p = JSONParser(buf)
                var lineAt = lineAtStart, lineOffset = 0
                func line(_ off: Int) -> Int {
                    lineAt = lineNumber(of: off, in: buf, startLine: lineAt, from: lineOffset); lineOffset = off
                    return lineAt
                }
                func fail(_ off: Int, _ m: String) -> TokenmillError { .badInput(path: path, line: line(off), message: m) }
                var elements: [(start: Int, end: Int, line: Int)] = []
                scan: while true {
                    p.skipWhitespace()
                    if p.atEnd {
                        if more { break scan }
                        switch state {
                        case .beforeArray: state = .done; break scan        // whitespace only: an empty file
                        case .done: break scan
                        case .resync:
                            stopped = (damage!.line, damage!.reason + "; the rest of the file was not read (no element follows)")
                            state = .done; break scan
                        default:
                            let msg = "unexpected end of file inside the array"
                            if !src.skipBadRows { throw fail(p.position, msg) }
                            stopped = (line(p.position), msg)
                            state = .done; break scan
                        }
                    }
                    content = true
                    switch state {
                    case .beforeArray:
                        guard p.peek() == UInt8(ascii: "[") else { throw fail(p.position, "expected a JSON array of records") }
                        p.advance(); state = .firstOrEnd; keep = p.position
                    case .firstOrEnd:
                        if p.peek() == UInt8(ascii: "]") { p.advance(); state = .done; keep = p.position; break scan }
                        state = .value
                    case .value:
                        let start = p.position
                        do {
                            try p.skipValue()
                        } catch let error as JSONParser.Failure {
                            // Cut by the block's end (or failing near it): wait for more bytes.
                            if more && error.offset >= buf.count - 16 { break scan }
                            let msg = "invalid JSON: \(error.message)"
                            if !src.skipBadRows { throw fail(error.offset, msg) }
                            damage = (line(error.offset), msg)
                            state = .resync
                            p = JSONParser(buf, start: error.offset)
                            keep = error.offset
                            continue scan
                        }
                        // A number or literal ending exactly at the block's end may go on.
                        if more && p.position == buf.count { break scan }
                        elements.append((start, p.position, line(start)))
                        state = .afterValue; keep = p.position
                    case .afterValue:
                        guard let c = p.peek() else { break scan }
                        p.advance()
                        if c == UInt8(ascii: "]") { state = .done; keep = p.position; break scan }
                        if c != UInt8(ascii: ",") {
                            let msg = "expected ',' or ']' between array elements"
                            if !src.skipBadRows { throw fail(p.position - 1, msg) }
                            damage = (line(p.position - 1), msg)
                            state = .resync
                            keep = p.position - 1
                            continue scan
                        }
                        state = .value; keep = p.position
                    case .resync:
                        // Bytes from `keep` on are damaged: find where the next element starts.
                        switch resynchronize(buf, from: p.position, more: more) {
                        case .found(let next):
                            all.rejects.append(Reject(source: src.name, path: path, line: damage!.line,
                                                      reason: damage!.reason + "; skipped to line \(line(next)), where the next element starts"))
                            damage = nil
                            p = JSONParser(buf, start: next)
                            state = .value; keep = next
                        case .waitForMore:
                            // Keep the unsearched tail (a candidate may be cut by the block's end).
                            keep = max(keep, buf.count - min(buf.count, resyncOverlap))
                            p = JSONParser(buf, start: buf.count)
                            break scan
                        case .none(let why):
                            stopped = (damage!.line, damage!.reason + "; the rest of the file was not read (\(why))")
                            damage = nil
                            state = .done
                            break scan
                        }
                    case .done:
                        break scan
                    }
                }
                try mapElements(src, path: path, elements, in: buf, threads: threads, fast: fast, map: map, into: &all)
                nextLine = line(keep)
            }
            // Streaming: this block's rows go now; a stop below is the last piece.
            if let emit, !all.items.isEmpty || !all.rejects.isEmpty || all.repaired > 0 { try emit(all); all = Rows<T>() }
            lineAtStart = nextLine
            buffer.removeFirst(keep)
            if !more && state != .done && keep == 0 && buffer.allSatisfy(isJSONSpace) { state = .done }
        }
        if let stopped {
            all.rejects.append(Reject(source: src.name, path: path, line: stopped.line, reason: stopped.reason))
            if let emit { try emit(all); all = Rows<T>() }
            return (all, content)
        }
        // After the closing bracket only whitespace may follow, to the end of the stream.
        while true {
            if let bad = buffer.firstIndex(where: { !isJSONSpace($0) }) {
                let l = buffer.withUnsafeBufferPointer { lineNumber(of: bad, in: $0, startLine: lineAtStart, from: 0) }
                throw TokenmillError.badInput(path: path, line: l, message: "unexpected data after the array")
            }
            lineAtStart += buffer.withUnsafeBufferPointer(newlines(in:))
            buffer.removeAll(keepingCapacity: true)
            if !more { break }
            more = try stream.read(into: &buffer, max: blockBytes)
        }
        return (all, content)
    }
}

extension UnsafeBufferPointer {
    /// Lets code written for `[UInt8]` inputs run unchanged on mapped files: the bytes are
    /// already a buffer.
    @inline(__always)
    func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Element>) throws -> R) rethrows -> R { try body(self) }
}
