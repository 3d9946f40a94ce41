import BPE
import TokenmillCore

#if canImport(Glibc)
import Glibc
#endif

/// tokenmill-bench: throughput of Tokenmill's stages on a corpus, one JSON line a result,
/// for Benchmarks/*.py to print next to the peers measured in the same run.
///
///   tokenmill-bench bpe --tokenizer cl100k_base --corpus FILE.jsonl [--field text] [--threads N] [--repeat R]
///   tokenmill-bench minhash --corpus FILE.jsonl [--mode signatures|dedup] ...   (MinHashBench.swift)
///   tokenmill-bench ingest --input FILE [--format F] [--field text] ...          (IngestBench.swift)
///   tokenmill-bench idwriter --ids IDS.jsonl ...                                  (IDWriterBench.swift)
///   tokenmill-bench scan --corpus FILE.jsonl [--field text] [--repeat R]          (o200k's pre-tokenizer alone)
///
/// The corpus is loaded first (texts as UTF-8 bytes); the timed part is encoding every
/// text, best of R runs. Results are kept alive through a checksum (the "black hole").
func fail(_ m: String) -> Never { FileSystem.writeStderr("tokenmill-bench: \(m)"); exit(2) }

/// The `--name value` pairs of a mode's arguments over its defaults (every mode takes its
/// options this way).
func benchOptions(_ args: [String], defaults: [String: String]) -> [String: String] {
    var opts = defaults
    var i = 0
    while i + 1 < args.count { opts[args[i]] = args[i + 1]; i += 2 }
    return opts
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func loadTexts(_ path: String, field: String) throws -> [[UInt8]] {
    let data = try FileSystem.readFile(path)
    var texts: [[UInt8]] = []
    var s = 0
    for i in 0...data.count where i == data.count || data[i] == 0x0A {
        if i > s {
            let v = try JSONParser.parse(Array(data[s..<i]))
            guard case .string(let t)? = v[field] else { fail("line without string field '\(field)'") }
            texts.append(t)
        }
        s = i + 1
    }
    return texts
}

func benchBPE(_ args: [String]) throws {
    let opts = benchOptions(args, defaults: ["--field": "text", "--threads": "1", "--repeat": "3"])
    guard let name = opts["--tokenizer"], let corpus = opts["--corpus"] else { fail("bpe needs --tokenizer and --corpus") }
    let threads = Int(opts["--threads"]!) ?? 1, repeats = Int(opts["--repeat"]!) ?? 3
    let tokenizer = try TokenizerLoader.load(name)
    let texts = try loadTexts(corpus, field: opts["--field"]!)
    let bytes = texts.reduce(0) { $0 + $1.count }
    var best = Double.infinity
    var tokens = 0
    var sink: UInt64 = 0
    // Every round's time, not only the best: the first round runs on a vocabulary cold in
    // the CPU caches, as a process that encodes each text once does, the later ones warm.
    var rounds: [Double] = []
    for _ in 0..<repeats {
        let t0 = now()
        let parts = try parallelBatches(count: texts.count, threads: threads, batchSize: 64) { range -> (Int, UInt64) in
            var enc = tokenizer.makeEncoder()
            var ids: [UInt32] = []
            var n = 0
            var h: UInt64 = 0
            for k in range {
                ids.removeAll(keepingCapacity: true)
                enc.encode(texts[k], into: &ids)
                n += ids.count
                if let last = ids.last { h = h &* 31 &+ UInt64(last) }
            }
            return (n, h)
        }
        let t = now() - t0
        rounds.append(t)
        best = min(best, t)
        tokens = parts.reduce(0) { $0 + $1.0 }
        sink ^= parts.reduce(0) { $0 ^ $1.1 }
    }
    print(#"{"tool": "tokenmill", "tokenizer": "\#(name)", "threads": \#(threads), "seconds": \#(best), "bytes": \#(bytes), "tokens": \#(tokens), "mb_per_s": \#(Double(bytes) / best / 1e6), "rounds_mb_per_s": \#(rounds.map { Double(bytes) / $0 / 1e6 }), "sink": \#(sink % 10)}"#)
}

/// The o200k scanner alone over the texts (pieces counted), best of R.
func benchScan(_ args: [String]) throws {
    let opts = benchOptions(args, defaults: ["--field": "text", "--repeat": "5"])
    guard let corpus = opts["--corpus"] else { fail("scan needs --corpus") }
    let texts = try loadTexts(corpus, field: opts["--field"]!)
    let bytes = texts.reduce(0) { $0 + $1.count }
    var best = Double.infinity, pieces = 0, sink = 0
    for _ in 0..<(Int(opts["--repeat"]!) ?? 5) {
        let t0 = now()
        var count = 0, s = 0
        for t in texts {
            t.withUnsafeBufferPointer { b in
                Pretokenizer.o200k.split(b.baseAddress!, b.count) { a, e in count &+= 1; s &+= e &- a }
            }
        }
        best = min(best, now() - t0)
        pieces = count; sink ^= s
    }
    print(#"{"bench": "scan", "seconds": \#(best), "bytes": \#(bytes), "pieces": \#(pieces), "mb_per_s": \#(Double(bytes) / best / 1e6), "sink": \#(sink % 10)}"#)
}

/// The vocabulary load a process pays before its first token (best of R).
func benchLoad(_ args: [String]) throws {
    let opts = benchOptions(args, defaults: ["--threads": "1", "--repeat": "5"])
    guard let name = opts["--tokenizer"] else { fail("load needs --tokenizer") }
    let threads = Int(opts["--threads"]!) ?? 1, repeats = Int(opts["--repeat"]!) ?? 5
    var best = Double.infinity
    var count = 0
    for _ in 0..<repeats {
        let t0 = now()
        let t = try TokenizerLoader.load(name, threads: threads)
        best = min(best, now() - t0)
        count = t.vocabSize
    }
    print(#"{"tool": "tokenmill", "bench": "load", "tokenizer": "\#(name)", "threads": \#(threads), "seconds": \#(best), "vocab": \#(count)}"#)
}

let argv = Array(CommandLine.arguments.dropFirst())
// As `tokenmill` itself runs (its main does the same): freed memory is reused, not unmapped.
// TOKENMILL_MALLOC_DEFAULTS=1 leaves glibc's defaults, to measure what it changes.
if getenv("TOKENMILL_MALLOC_DEFAULTS") == nil { ProcessMemory.keepFreedMemory() }
do {
    switch argv.first {
    case "bpe": try benchBPE(Array(argv.dropFirst()))
    case "minhash": try benchMinHash(Array(argv.dropFirst()))
    case "ingest": try benchIngest(Array(argv.dropFirst()))
    case "ingest-scan": try benchIngestScan(Array(argv.dropFirst()))
    case "ingest-extract": try benchIngestExtract(Array(argv.dropFirst()))
    case "pack": try benchPack(Array(argv.dropFirst()))
    case "load": try benchLoad(Array(argv.dropFirst()))
    case "scan": try benchScan(Array(argv.dropFirst()))
    case "idwriter": try benchIDWriter(Array(argv.dropFirst()))
    default: fail("usage: tokenmill-bench bpe --tokenizer T --corpus FILE.jsonl [--field text] [--threads N] [--repeat R]\n"
                  + "       tokenmill-bench minhash --corpus FILE.jsonl [--field text] [--mode signatures|dedup] [--threads N] [--permutations 128] [--ngram 5] [--threshold 0.8] [--limit N] [--repeat R] [--pairs-out P]\n"
                  + "       tokenmill-bench ingest --input FILE [--format F] [--field text] [--threads N] [--repeat R] [--from-memory 1]\n"
                  + "       tokenmill-bench ingest-scan --input FILE.jsonl [--repeat R]\n"
                  + "       tokenmill-bench ingest-extract --input FILE.jsonl [--field text] [--repeat R]\n"
                  + "       tokenmill-bench pack [--records 1000000] [--seq-len 4096] [--repeat R] [--seed S]\n"
                  + "       tokenmill-bench load --tokenizer T [--threads N] [--repeat R]\n"
                  + "       tokenmill-bench idwriter --ids IDS.jsonl [--lines 640] [--evict-kb 1024] [--repeat R]")
    }
} catch {
    fail("\(error)")
}
