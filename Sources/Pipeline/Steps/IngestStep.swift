import Ingest
import TokenmillCore

#if canImport(Glibc)
import Glibc
#endif

/// A unit of the scan stage: one block of one input file. Large uncompressed JSONL files
/// are cut into byte ranges; a line belongs to the block its first byte lies in, so blocks
/// need no coordination and a line of any length is read whole by one block. Other files
/// (compressed: streamed block by block inside the unit; CSV, JSON arrays, Parquet, text,
/// and `group_by` sources, which need the whole file) are one unit each.
struct InputUnit: Sendable {
    var source: Int
    /// The file's position over all sources' files, in spec order (records' `file`).
    var fileIndex: Int
    var path: String
    /// Block number within the file (0 for whole-file units).
    var block: Int
    /// The nominal byte range; nil for a whole-file unit.
    var range: Range<Int>?
    /// The row groups of a Parquet file this unit reads (nil: all, or not Parquet), and
    /// the bytes their columns span.
    var rowGroups: Range<Int>? = nil
    var rowGroupBytes = 0

    var label: String {
        if let g = rowGroups { return "\(path) [row groups \(g.lowerBound + 1)–\(g.upperBound)]" }
        return range == nil ? path : "\(path) [\(range!.lowerBound)..<\(range!.upperBound)]"
    }
}

enum IngestStep {
    /// Input bytes a JSONL unit covers: the total input over 32 (so even a small corpus
    /// has enough units for every core to stay busy to the end), within 1 to 8 MiB
    /// (small enough that a unit in flight on each core fits the memory bound). It follows
    /// from the inputs alone, never from the thread count; `TOKENMILL_UNIT_BYTES` overrides
    /// it. The output does not depend on it (tests build with tiny units to prove that).
    static func unitBytes(_ spec: BuildSpec) throws -> Int {
        if let v = getenv("TOKENMILL_UNIT_BYTES"), let n = Int(String(cString: v)), n >= 1 { return n }
        // Rounded up: rounded down, the last few bytes of the input (total mod 32) made a
        // 33rd unit of their own, with its files and marker.
        return min(8 << 20, max(1 << 20, (try inputBytes(spec) + 31) / 32))
    }

    /// The bytes of every input file, as stored.
    static func inputBytes(_ spec: BuildSpec) throws -> Int {
        var total = 0
        for src in spec.sources { for f in src.files { total += try FileSystem.fileSize(f) } }
        return total
    }

    static func plan(_ spec: BuildSpec, unitBytes: Int) throws -> [InputUnit] {
        var units: [InputUnit] = []
        var fileIndex = 0
        for (si, src) in spec.sources.enumerated() {
            for f in src.files {
                let format = src.format ?? SourceConfig.inferFormat(f)
                let size = try FileSystem.fileSize(f)
                if format == .jsonl && Compression.of(f) == .none && src.mapping.group == nil && size > unitBytes {
                    var start = 0, k = 0
                    while start < size {
                        units.append(InputUnit(source: si, fileIndex: fileIndex, path: f, block: k, range: start..<min(size, start + unitBytes)))
                        start += unitBytes; k += 1
                    }
                } else if format == .parquet && Compression.of(f) == .none && src.mapping.group == nil && size > unitBytes,
                          let spans = ParquetReader.rowGroupSpans(path: f), spans.count > 1 {
                    // Consecutive row groups, a unit once they span `unitBytes` of column data
                    // (a row group is never split: it is Parquet's unit of reading).
                    var first = 0, bytes = 0, k = 0
                    for (g, span) in spans.enumerated() {
                        bytes += span.count
                        if bytes >= unitBytes || g == spans.count - 1 {
                            units.append(InputUnit(source: si, fileIndex: fileIndex, path: f, block: k, range: nil, rowGroups: first..<(g + 1),
                                                   rowGroupBytes: spans[first...g].reduce(0) { $0 + $1.count }))
                            first = g + 1; bytes = 0; k += 1
                        }
                    }
                } else {
                    units.append(InputUnit(source: si, fileIndex: fileIndex, path: f, block: 0, range: nil))
                }
                fileIndex += 1
            }
        }
        return units
    }

    /// The first byte of the first line starting at or after `offset`.
    static func lineStart(_ file: RawFile, atOrAfter offset: Int) throws -> Int {
        if offset <= 0 { return 0 }
        if offset >= file.size { return file.size }
        var pos = offset - 1
        var window = [UInt8](repeating: 0, count: 64 << 10)
        while pos < file.size {
            let n = min(window.count, file.size - pos)
            try file.read(offset: pos, count: n, into: &window)
            if let i = window[0..<n].firstIndex(of: 0x0A) { return pos + i + 1 }
            pos += n
        }
        return file.size
    }

    /// Reads a unit, handing its rows to `sink` in one or more pieces (in order). Returns
    /// the newlines the unit's bytes hold (range units: the next block's first line number
    /// is this block's plus these), and the bytes read.
    static func read(_ unit: InputUnit, config: SourceConfig, threads: Int, sink: (FileRows) throws -> Void) throws -> (lines: Int, bytes: Int) {
        if let groups = unit.rowGroups {
            try SourceReader.readParquet(config, fileIndex: Int32(unit.fileIndex), path: unit.path, groups: groups, threads: threads, sink: sink)
            return (0, unit.rowGroupBytes)
        }
        guard let nominal = unit.range else {
            try SourceReader.readStreaming(config, fileIndex: Int32(unit.fileIndex), path: unit.path, threads: threads, sink: sink)
            return (0, (try? FileSystem.fileSize(unit.path)) ?? 0)
        }
        let file = try RawFile(path: unit.path)
        let start = try lineStart(file, atOrAfter: nominal.lowerBound)
        let end = max(start, try lineStart(file, atOrAfter: nominal.upperBound))
        // Not zero-filled: the read fills it or throws.
        var data = [UInt8](unsafeUninitializedCapacity: end - start) { $1 = end - start }
        if end > start { try file.read(offset: start, count: end - start, into: &data) }
        let lines = data.withUnsafeBufferPointer { countBytes($0, equalTo: 0x0A) }
        do {
            let rows = try data.withUnsafeBufferPointer { all in
                // The file's first block skips (and counts) a leading byte order mark.
                let rest = start == 0 ? SourceReader.skippingByteOrderMark(all) : nil
                var rows = try SourceReader.readJSONLBlock(config, fileIndex: Int32(unit.fileIndex), path: unit.path, data: rest ?? all, threads: threads)
                rows.byteOrderMarks = rest == nil ? 0 : 1
                return rows
            }
            try sink(rows)
        } catch TokenmillError.badInput(let path, let line, let message) where line > 0 {
            // Lines inside a block count from its start; the error names the file's line.
            throw TokenmillError.badInput(path: path, line: try file.newlines(before: start) + line, message: message)
        }
        return (lines, end - start)
    }
}

/// An input file read by `pread` (no mapping: input pages never count as our memory).
final class RawFile {
    let path: String
    let fd: Int32
    let size: Int

    init(path: String) throws {
        self.path = path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TokenmillError.io(path: path, message: "cannot open for reading") }
        var st = stat()
        guard fstat(fd, &st) == 0 else { close(fd); throw TokenmillError.io(path: path, message: "cannot stat") }
        size = Int(st.st_size)
    }

    func read(offset: Int, count: Int, into buf: inout [UInt8]) throws {
        var done = 0
        try buf.withUnsafeMutableBytes { raw in
            while done < count {
                let n = pread(fd, raw.baseAddress! + done, count - done, off_t(offset + done))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw TokenmillError.io(path: path, message: "read failed at byte \(offset + done) (the file changed during the build?)") }
                done += n
            }
        }
    }

    /// Newlines in bytes 0..<offset (error messages only: it reads the prefix).
    func newlines(before offset: Int) throws -> Int {
        var n = 0, pos = 0
        var window = [UInt8](repeating: 0, count: 1 << 20)
        while pos < offset {
            let k = min(window.count, offset - pos)
            try read(offset: pos, count: k, into: &window)
            n += window.withUnsafeBufferPointer { countBytes(UnsafeBufferPointer(rebasing: $0[0..<k]), equalTo: 0x0A) }
            pos += k
        }
        return n
    }

    deinit { close(fd) }
}
