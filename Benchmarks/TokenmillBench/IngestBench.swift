#if canImport(Glibc)
import Glibc
#endif
import Ingest
import TokenmillCore

/// `tokenmill-bench ingest --input FILE [--format jsonl|json|csv|...] [--field text]
///  [--threads 1] [--repeat 3] [--from-memory 1]`: read the file and map every row to a
/// text record (the ingest stage of a build: read, decompress, parse, map), best of R runs.
func benchIngest(_ args: [String]) throws {
    var opts: [String: String] = ["--field": "text", "--threads": "1", "--repeat": "3"]
    var i = 0
    while i + 1 < args.count { opts[args[i]] = args[i + 1]; i += 2 }
    guard let path = opts["--input"] else { fail("ingest needs --input") }
    let threads = Int(opts["--threads"]!) ?? 1, repeats = Int(opts["--repeat"]!) ?? 3
    let format = opts["--format"].flatMap(SourceConfig.Format.init(rawValue:))
    let mapping = FieldMapping(text: try FieldMapping.Value.parse(opts["--field"]!))
    let config = SourceConfig(name: "bench", index: 0, files: [path], format: format, mapping: mapping, skipBadRows: false)
    // --from-memory 1: the file's bytes are read before the clock starts (extraction and
    // record building alone, without the read(2) of the file).
    let preloaded = opts["--from-memory"] == "1" ? try FileSystem.readFile(path) : nil
    var best = Double.infinity
    var records = 0, textBytes = 0
    for _ in 0..<repeats {
        let t0 = now()
        let rows = try preloaded.map { try SourceReader.read(config, fileIndex: 0, path: path, contents: $0, threads: threads) }
            ?? SourceReader.read(config, fileIndex: 0, path: path, threads: threads)
        best = min(best, now() - t0)
        records = rows.records.count
        textBytes = rows.records.reduce(0) { $0 + $1.text.count }
    }
    let fileBytes = try FileSystem.readFile(path).count
    print(#"{"tool": "tokenmill", "format": "\#(format?.rawValue ?? "auto")", "from_memory": \#(preloaded != nil), "threads": \#(threads), "records": \#(records), "file_bytes": \#(fileBytes), "text_bytes": \#(textBytes), "seconds": \#(best), "mb_per_s": \#(Double(fileBytes) / best / 1e6)}"#)
}

/// `tokenmill-bench ingest-scan --input FILE.jsonl [--repeat 3]`: the floor of the JSONL
/// path: split lines (memchr) and syntax-check every value without building anything.
func benchIngestScan(_ args: [String]) throws {
    var opts: [String: String] = ["--repeat": "3"]
    var i = 0
    while i + 1 < args.count { opts[args[i]] = args[i + 1]; i += 2 }
    guard let path = opts["--input"] else { fail("ingest-scan needs --input") }
    let data = try FileSystem.readFile(path)
    var best = Double.infinity
    var lines = 0
    for _ in 0..<(Int(opts["--repeat"]!) ?? 3) {
        let t0 = now()
        lines = 0
        try data.withUnsafeBufferPointer { buf in
            var s = 0
            while s < buf.count {
                let e = memchr(buf.baseAddress! + s, 0x0A, buf.count - s).map { UnsafeRawPointer($0) - UnsafeRawPointer(buf.baseAddress!) } ?? buf.count
                var p = JSONParser(buf, start: s, end: e)
                try p.skipValue()
                lines += 1
                s = e + 1
            }
        }
        best = min(best, now() - t0)
    }
    print(#"{"mode": "scan", "lines": \#(lines), "seconds": \#(best), "mb_per_s": \#(Double(data.count) / best / 1e6)}"#)
}
