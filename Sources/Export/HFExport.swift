import TokenmillCore

/// A Hugging Face `datasets` folder, as `Dataset.save_to_disk` writes it and
/// `datasets.load_from_disk` opens it: `data-KKKKK-of-NNNNN.arrow` (Arrow IPC streams of
/// at most ~500 MB, datasets' default shard size), `dataset_info.json` and `state.json`.
/// One row a sample: `input_ids` (int32), `labels` (int64: the id where the loss counts,
/// -100 elsewhere), `attention_mask` (int8: 0 on padding), `position_ids` (int32,
/// restarting at every document start). Features are written as `Sequence` of `Value`,
/// which datasets 2.x to 5.x read.
final class HFWriter: PositionedWriter {
    static let columns = [ArrowListColumn(name: "input_ids", width: 4), ArrowListColumn(name: "labels", width: 8),
                          ArrowListColumn(name: "attention_mask", width: 1), ArrowListColumn(name: "position_ids", width: 4)]
    static let dtypes = ["int32", "int64", "int8", "int32"]
    static let rowsPerBatch = 1000
    static let fileBytes = 500_000_000

    let folder: String
    let split: String
    let fingerprint: String
    let encoder: ArrowStreamEncoder
    var files: [String] = []
    var current: OutputFile?
    var written = 0
    let messageBuffers = BufferPool()

    static var featuresJSON: JSONOut {
        .object(zip(columns, dtypes).map { c, t in
            (c.name, .object([("feature", .object([("dtype", .string(t)), ("_type", .string("Value"))])), ("_type", .string("Sequence"))]))
        })
    }

    init(folder: String, split: String, fingerprint: String) throws {
        self.folder = folder
        self.split = split
        self.fingerprint = fingerprint
        try FileSystem.makeDirectories(folder)
        let meta = JSONOut.object([("info", .object([("features", Self.featuresJSON)]))]).renderCompact()
        encoder = ArrowStreamEncoder(columns: Self.columns, metadata: [("huggingface", meta)])
    }

    /// One record batch of a window: the rows of a `SampleBatch` it holds, the file and
    /// offset it goes to, and its framed header (the body follows it).
    struct Piece {
        var rows: Range<Int>
        var file: OutputFile
        var offset: Int
        var header: [UInt8]
        var bodySize: Int
    }

    /// Files filled up during the current window: committed once its pieces are written.
    private var full: [OutputFile] = []

    /// Cuts the batch into record batches of at most `rowsPerBatch` rows and reserves
    /// their bytes, in order; a file past `fileBytes` is ended (its end-of-stream marker
    /// reserved after the last batch placed in it) and a new one begun.
    func place(_ b: SampleBatch) throws -> [Piece] {
        var pieces: [Piece] = []
        var first = 0
        while first < b.count {
            let rows = first..<min(b.count, first + Self.rowsPerBatch)
            if current == nil || current!.size >= Self.fileBytes {
                try endFile()
                let f = try OutputFile(FileSystem.join(folder, ".part-\(files.count).arrow"))
                let schema = encoder.schemaMessage()
                try schema.withUnsafeBytes { try f.write($0, at: f.reserve(schema.count)) }
                current = f
                files.append(f.path)
            }
            let n = b.sampleStarts[rows.upperBound] - b.sampleStarts[rows.lowerBound]
            let header = encoder.batchHeader(rows: rows.count, totals: [n, n, n, n])
            var body = 0
            for c in Self.columns { body += ArrowStreamEncoder.padded(4 * (rows.count + 1)) + ArrowStreamEncoder.padded(n * c.width) }
            let f = current!
            pieces.append(Piece(rows: rows, file: f, offset: f.reserve(header.count + body), header: header, bodySize: body))
            first = rows.upperBound
        }
        return pieces
    }

    /// Builds each piece's message (header and body, buffers in the header's order: for
    /// each column its row offsets, then its values, each padded to 8 bytes) in a buffer
    /// of its own and writes it at its place.
    func write(_ b: SampleBatch, at pieces: [Piece]) throws {
        for piece in pieces {
            let rows = piece.rows
            let lo = b.sampleStarts[rows.lowerBound], hi = b.sampleStarts[rows.upperBound]
            let n = hi - lo
            let size = piece.header.count + piece.bodySize
            // A message is rows x seq_len x 17 bytes (tens of MB): built in a buffer the
            // workers reuse, since a fresh one each time costs the kernel a page fault
            // and a zero-fill per 4 KB, which was most of an export's time on some runs.
            try messageBuffers.with(size) { base in
                // Every buffer starts on an 8-byte boundary of the message (the header's
                // length and each buffer's padded length are multiples of 8), and the
                // message on a 16-byte one: the columns are written as typed arrays.
                piece.header.withUnsafeBytes { base.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                var at = piece.header.count
                /// Reserves a buffer of `bytes` (zeroing its padding); returns its start.
                func buffer(_ bytes: Int) -> UnsafeMutableRawPointer {
                    let start = base + at
                    let padded = ArrowStreamEncoder.padded(bytes)
                    (start + bytes).initializeMemory(as: UInt8.self, repeating: 0, count: padded - bytes)
                    at += padded
                    return start
                }
                func offsets() {
                    let o = buffer(4 * (rows.count + 1)).bindMemory(to: Int32.self, capacity: rows.count + 1)
                    for (i, k) in (rows.lowerBound...rows.upperBound).enumerated() { o[i] = Int32(b.sampleStarts[k] - lo) }
                }
                // input_ids (int32) and labels (int64: -100 where no loss counts).
                offsets()
                let ids = buffer(4 * n).bindMemory(to: Int32.self, capacity: n)
                offsets()
                let labels = buffer(8 * n).bindMemory(to: Int64.self, capacity: n)
                b.tokens.withUnsafeBufferPointer { tokens in
                    b.loss.withUnsafeBufferPointer { loss in
                        let tokens = tokens.baseAddress! + lo, loss = loss.baseAddress! + lo
                        for t in 0..<n {
                            let id = tokens[t]
                            ids[t] = Int32(bitPattern: id)
                            labels[t] = loss[t] != 0 ? Int64(id) : -100
                        }
                    }
                }
                // attention_mask (int8: 0 on padding) and position_ids (int32), which restart
                // at each document start (the padding of a padded sequence is a document of
                // its own there, as in Tokenmill's reader).
                offsets()
                let attention = buffer(n).bindMemory(to: Int8.self, capacity: n)
                offsets()
                let positions = buffer(4 * n).bindMemory(to: Int32.self, capacity: n)
                var d = b.documentStarts.partitionPoint { $0 < lo }
                for k in rows {
                    let r = b.range(k)
                    var start = r.lowerBound
                    var t = r.lowerBound
                    while t < r.upperBound {
                        while d < b.documentStarts.count && b.documentStarts[d] <= t { start = b.documentStarts[d]; d += 1 }
                        // Up to the next document start, positions count up from `start`.
                        let end = d < b.documentStarts.count ? min(r.upperBound, b.documentStarts[d]) : r.upperBound
                        let p = positions + (t - lo)
                        for u in 0..<(end - t) { p[u] = Int32(truncatingIfNeeded: t - start + u) }
                        t = end
                    }
                    let real = r.upperBound - b.padding[k]
                    (attention + (r.lowerBound - lo)).initialize(repeating: 1, count: real - r.lowerBound)
                    (attention + (real - lo)).initialize(repeating: 0, count: b.padding[k])
                }
                precondition(at == size, "an Arrow record batch's layout differs from its header's")
                try piece.file.write(UnsafeRawBufferPointer(start: base, count: size), at: piece.offset)
            }
        }
    }

    var positionedFiles: [OutputFile] { full + (current.map { [$0] } ?? []) }

    /// Commits the files that filled up in the window just written.
    func windowWritten() throws {
        for f in full { try f.commit(); written += f.size }
        full.removeAll()
    }

    /// Ends the current file: its end-of-stream marker goes after the last batch placed
    /// in it; it is committed once the window's pieces are written.
    private func endFile() throws {
        guard let f = current else { return }
        try ArrowStreamEncoder.endOfStream.withUnsafeBytes { try f.write($0, at: f.reserve($0.count)) }
        full.append(f)
        current = nil
    }

    /// Names the files `data-KKKKK-of-NNNNN.arrow` now that their count is known, then
    /// writes the two JSON files datasets reads.
    func finish() throws -> Int {
        if current == nil && files.isEmpty {
            // An empty split is still a dataset: a schema and no rows.
            let f = try OutputFile(FileSystem.join(folder, ".part-0.arrow"))
            let schema = encoder.schemaMessage()
            try schema.withUnsafeBytes { try f.write($0, at: f.reserve(schema.count)) }
            current = f
            files.append(f.path)
        }
        try endFile()
        try windowWritten()
        var names: [String] = []
        for (k, path) in files.enumerated() {
            let name = "data-\(Self.five(k))-of-\(Self.five(files.count)).arrow"
            try FileSystem.rename(path, FileSystem.join(folder, name))
            names.append(name)
        }
        let state = JSONOut.object([
            ("_data_files", .array(names.map { .object([("filename", .string($0))]) })),
            ("_fingerprint", .string(fingerprint)),
            ("_format_columns", .null), ("_format_kwargs", .object([])), ("_format_type", .null),
            ("_output_all_columns", .bool(false)), ("_split", .string(split)),
        ])
        let info = JSONOut.object([("citation", .string("")), ("description", .string("")), ("features", Self.featuresJSON),
                                   ("homepage", .string("")), ("license", .string(""))])
        for (name, json) in [("state.json", state), ("dataset_info.json", info)] {
            let bytes = Array((json.render() + "\n").utf8)
            try FileSystem.writeAtomically(FileSystem.join(folder, name), bytes)
            written += bytes.count
        }
        return written
    }

    static func five(_ k: Int) -> String { let s = String(k); return String(repeating: "0", count: max(0, 5 - s.count)) + s }
}

extension Array {
    /// The first index whose element fails `belongs` (the array is partitioned by it).
    func partitionPoint(_ belongs: (Element) -> Bool) -> Int {
        var lo = 0, hi = count
        while lo < hi { let mid = (lo + hi) / 2; if belongs(self[mid]) { lo = mid + 1 } else { hi = mid } }
        return lo
    }
}
