import TokenmillCore

/// A Hugging Face `datasets` folder, as `Dataset.save_to_disk` writes it and
/// `datasets.load_from_disk` opens it: `data-KKKKK-of-NNNNN.arrow` (Arrow IPC streams of
/// at most ~500 MB, datasets' default shard size), `dataset_info.json` and `state.json`.
/// One row a sample: `input_ids` (int32), `labels` (int64: the id where the loss counts,
/// -100 elsewhere), `attention_mask` (int8: 0 on padding), `position_ids` (int32,
/// restarting at every document start). Features are written as `Sequence` of `Value`,
/// which datasets 2.x to 5.x read.
final class HFWriter {
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

    func append(_ b: SampleBatch) throws {
        var first = 0
        while first < b.count {
            let rows = first..<min(b.count, first + Self.rowsPerBatch)
            try writeBatch(b, rows: rows)
            first = rows.upperBound
        }
    }

    // Column buffers, reused from batch to batch (a fresh multi-megabyte array a batch
    // cost more in page faults than the rest of the export).
    private var offsets: [Int32] = []
    private var ids: [Int32] = [], labels: [Int64] = [], attention: [Int8] = [], positions: [Int32] = []


    private func writeBatch(_ b: SampleBatch, rows: Range<Int>) throws {
        if current == nil || current!.size >= Self.fileBytes {
            try closeFile()
            let f = try OutputFile(FileSystem.join(folder, ".part-\(files.count).arrow"))
            try f.write(encoder.schemaMessage())
            current = f
        }
        let lo = b.sampleStarts[rows.lowerBound], hi = b.sampleStarts[rows.upperBound]
        let n = hi - lo
        // The buffers leave `self` while they are filled (a stored property of a class is
        // checked for exclusive access on every element otherwise).
        // `self` lets go of them first, so filling them never copies them.
        var offsets: [Int32] = [], ids: [Int32] = [], labels: [Int64] = [], attention: [Int8] = [], positions: [Int32] = []
        swap(&offsets, &self.offsets); swap(&ids, &self.ids); swap(&labels, &self.labels)
        swap(&attention, &self.attention); swap(&positions, &self.positions)
        defer {
            swap(&offsets, &self.offsets); swap(&ids, &self.ids); swap(&labels, &self.labels)
            swap(&attention, &self.attention); swap(&positions, &self.positions)
        }
        func size<T: FixedWidthInteger>(_ a: inout [T], _ count: Int) {
            if a.count < count { a.append(contentsOf: repeatElement(0, count: count - a.count)) } else { a.removeLast(a.count - count) }
        }
        size(&offsets, rows.count + 1); size(&ids, n); size(&labels, n); size(&attention, n); size(&positions, n)
        for (i, k) in (rows.lowerBound...rows.upperBound).enumerated() { offsets[i] = Int32(b.sampleStarts[k] - lo) }
        b.tokens.withUnsafeBufferPointer { tokens in
            b.loss.withUnsafeBufferPointer { loss in
                ids.withUnsafeMutableBufferPointer { ids in
                    labels.withUnsafeMutableBufferPointer { labels in
                        for t in 0..<n {
                            let id = tokens[lo + t]
                            ids[t] = Int32(bitPattern: id)
                            labels[t] = loss[lo + t] != 0 ? Int64(id) : -100
                        }
                    }
                }
            }
        }
        // Positions restart at each document start (the padding of a padded sequence is
        // a document of its own there, as in Tokenmill's reader); padding is not attended.
        var d = b.documentStarts.partitionPoint { $0 < lo }
        positions.withUnsafeMutableBufferPointer { positions in
            attention.withUnsafeMutableBufferPointer { attention in
                for k in rows {
                    let r = b.range(k)
                    var start = r.lowerBound
                    var t = r.lowerBound
                    while t < r.upperBound {
                        while d < b.documentStarts.count && b.documentStarts[d] <= t { start = b.documentStarts[d]; d += 1 }
                        // Up to the next document start, positions count up from `start`.
                        let end = d < b.documentStarts.count ? min(r.upperBound, b.documentStarts[d]) : r.upperBound
                        for u in t..<end { positions[u - lo] = Int32(u - start) }
                        t = end
                    }
                    let pad = b.padding[k]
                    for u in r.lowerBound..<(r.upperBound - pad) { attention[u - lo] = 1 }
                    for u in (r.upperBound - pad)..<r.upperBound { attention[u - lo] = 0 }
                }
            }
        }
        let f = current!
        try f.write(encoder.batchHeader(rows: rows.count, totals: [n, n, n, n]))
        func buffer(_ raw: UnsafeRawBufferPointer) throws {
            try f.write(raw)
            let pad = ArrowStreamEncoder.padded(raw.count) - raw.count
            if pad > 0 { try ArrowStreamEncoder.zeros.withUnsafeBytes { try f.write(UnsafeRawBufferPointer(rebasing: $0[0..<pad])) } }
        }
        // Buffers in the header's order: for each column, its row offsets, then its values.
        try offsets.withUnsafeBytes { o in
            try buffer(o); try ids.withUnsafeBytes { try buffer($0) }
            try buffer(o); try labels.withUnsafeBytes { try buffer($0) }
            try buffer(o); try attention.withUnsafeBytes { try buffer($0) }
            try buffer(o); try positions.withUnsafeBytes { try buffer($0) }
        }
    }

    private func closeFile() throws {
        guard let f = current else { return }
        try f.write(ArrowStreamEncoder.endOfStream)
        try f.commit()
        written += f.size
        files.append(f.path)
        current = nil
    }

    /// Names the files `data-KKKKK-of-NNNNN.arrow` now that their count is known, then
    /// writes the two JSON files datasets reads.
    func finish() throws -> Int {
        if current == nil && files.isEmpty {
            // An empty split is still a dataset: a schema and no rows.
            let f = try OutputFile(FileSystem.join(folder, ".part-0.arrow"))
            try f.write(encoder.schemaMessage())
            current = f
        }
        try closeFile()
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
