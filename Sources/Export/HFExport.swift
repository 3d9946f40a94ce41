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

    private func writeBatch(_ b: SampleBatch, rows: Range<Int>) throws {
        if current == nil || current!.size >= Self.fileBytes {
            try closeFile()
            let f = try OutputFile(FileSystem.join(folder, ".part-\(files.count).arrow"))
            try f.write(encoder.schemaMessage())
            current = f
        }
        let lo = b.sampleStarts[rows.lowerBound], hi = b.sampleStarts[rows.upperBound]
        let n = hi - lo
        var offsets = [Int32](repeating: 0, count: rows.count + 1)
        for (i, k) in rows.enumerated() { offsets[i + 1] = Int32(b.sampleStarts[k + 1] - lo) }
        var ids = [UInt8](repeating: 0, count: n * 4), labels = [UInt8](repeating: 0, count: n * 8)
        var attention = [UInt8](repeating: 1, count: n), positions = [UInt8](repeating: 0, count: n * 4)
        ids.withUnsafeMutableBytes { idRaw in
            labels.withUnsafeMutableBytes { labelRaw in
                for t in 0..<n {
                    let id = b.tokens[lo + t]
                    idRaw.storeBytes(of: Int32(bitPattern: id).littleEndian, toByteOffset: 4 * t, as: Int32.self)
                    labelRaw.storeBytes(of: (b.loss[lo + t] != 0 ? Int64(id) : -100).littleEndian, toByteOffset: 8 * t, as: Int64.self)
                }
            }
        }
        // Positions restart at each document start (the padding of a padded sequence is
        // a document of its own there, as in Tokenmill's reader); padding is not attended.
        var d = b.documentStarts.partitionPoint { $0 < lo }
        positions.withUnsafeMutableBytes { raw in
            for k in rows {
                let r = b.range(k)
                var start = r.lowerBound
                for t in r {
                    while d < b.documentStarts.count && b.documentStarts[d] <= t { start = b.documentStarts[d]; d += 1 }
                    raw.storeBytes(of: Int32(t - start).littleEndian, toByteOffset: 4 * (t - lo), as: Int32.self)
                }
                for t in (r.upperBound - b.padding[k])..<r.upperBound { attention[t - lo] = 0 }
            }
        }
        try current!.write(encoder.batchMessage(rows: rows.count, columns: [(offsets, ids), (offsets, labels), (offsets, attention), (offsets, positions)]))
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
