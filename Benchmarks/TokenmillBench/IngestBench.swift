import Ingest
import TokenmillCore

/// `tokenmill-bench ingest --input FILE [--format jsonl|json|csv|...] [--field text]
///  [--threads 1] [--repeat 3]`: read the file and map every row to a text record (the
/// ingest stage of a build: read, decompress, parse, map), best of R runs.
func benchIngest(_ args: [String]) throws {
    var opts: [String: String] = ["--field": "text", "--threads": "1", "--repeat": "3"]
    var i = 0
    while i + 1 < args.count { opts[args[i]] = args[i + 1]; i += 2 }
    guard let path = opts["--input"] else { fail("ingest needs --input") }
    let threads = Int(opts["--threads"]!) ?? 1, repeats = Int(opts["--repeat"]!) ?? 3
    let format = opts["--format"].flatMap(SourceConfig.Format.init(rawValue:))
    let mapping = FieldMapping(text: try FieldMapping.Value.parse(opts["--field"]!))
    let config = SourceConfig(name: "bench", index: 0, files: [path], format: format, mapping: mapping, skipBadRows: false)
    var best = Double.infinity
    var records = 0, textBytes = 0
    for _ in 0..<repeats {
        let t0 = now()
        let rows = try SourceReader.read(config, fileIndex: 0, path: path, threads: threads)
        best = min(best, now() - t0)
        records = rows.records.count
        textBytes = rows.records.reduce(0) { $0 + $1.text.count }
    }
    let fileBytes = try FileSystem.readFile(path).count
    print(#"{"tool": "tokenmill", "format": "\#(format?.rawValue ?? "auto")", "threads": \#(threads), "records": \#(records), "file_bytes": \#(fileBytes), "text_bytes": \#(textBytes), "seconds": \#(best), "mb_per_s": \#(Double(fileBytes) / best / 1e6)}"#)
}
