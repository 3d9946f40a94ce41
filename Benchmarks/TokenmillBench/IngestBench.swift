#if canImport(Glibc)
import Glibc
#endif
import Ingest
import TokenmillCore

/// `tokenmill-bench ingest --input FILE [--format jsonl|json|csv|...] [--field text]
///  [--threads 1] [--repeat 3] [--from-memory 1]`: read the file and map every row to a
/// text record (the ingest stage of a build: read, decompress, parse, map), best of R runs.
func benchIngest(_ args: [String]) throws {
    let opts = benchOptions(args, defaults: ["--field": "text", "--threads": "1", "--repeat": "3"])
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
    let opts = benchOptions(args, defaults: ["--repeat": "3"])
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

/// `tokenmill-bench ingest-extract --input FILE.jsonl [--field text] [--repeat 3]`: JSONL
/// field extraction alone, as the ingest hot path does it — lines split with memchr, each
/// row scanned by `JSONParser.scanObject` for the named top-level field, whose string is
/// unescaped (and UTF-8-checked) into scratch memory — without building records (no
/// allocation per row). `ingest` measures the same plus record building.
func benchIngestExtract(_ args: [String]) throws {
    let opts = benchOptions(args, defaults: ["--repeat": "3", "--field": "text"])
    guard let path = opts["--input"] else { fail("ingest-extract needs --input") }
    let data = try FileSystem.readFile(path)
    let keys = [Array(opts["--field"]!.utf8)]
    let slots = UnsafeMutablePointer<Int>.allocate(capacity: 1), ends = UnsafeMutablePointer<Int>.allocate(capacity: 1)
    let inScratch = UnsafeMutablePointer<Bool>.allocate(capacity: 1)
    var capacity = 1 << 16
    var scratch = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
    defer { slots.deallocate(); ends.deallocate(); inScratch.deallocate(); scratch.deallocate() }
    var best = Double.infinity
    var rows = 0, extracted = 0, checksum = 0
    for _ in 0..<(Int(opts["--repeat"]!) ?? 3) {
        let t0 = now()
        rows = 0; extracted = 0; checksum = 0
        try data.withUnsafeBufferPointer { buf in
            var s = 0
            while s < buf.count {
                let e = memchr(buf.baseAddress! + s, 0x0A, buf.count - s).map { UnsafeRawPointer($0) - UnsafeRawPointer(buf.baseAddress!) } ?? buf.count
                if e - s > capacity {
                    scratch.deallocate(); capacity = 2 * (e - s); scratch = .allocate(capacity: capacity)
                }
                var p = JSONParser(buf, start: s, end: e)
                if try p.scanObject(keys: keys, into: slots, ends: ends, inScratch: inScratch, scratch: scratch), slots[0] >= 0, inScratch[0] {
                    let n = ends[0] - slots[0]
                    extracted += n
                    if n > 0 { checksum &+= Int(scratch[slots[0] + n - 1]) }
                }
                rows += 1
                s = e + 1
            }
        }
        best = min(best, now() - t0)
    }
    print(#"{"mode": "extract", "rows": \#(rows), "field_bytes": \#(extracted), "checksum": \#(checksum), "seconds": \#(best), "mb_per_s": \#(Double(data.count) / best / 1e6)}"#)
}
