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
///   tokenmill-bench wincheck [--corpus FILE.jsonl] [--random N [--min 1] [--span 260]]  (o200k's windows against the byte scanner)
///   tokenmill-bench merges --corpus FILE.jsonl [--tokenizer o200k_base] [--distinct 1] [--working N] [--repeat R]  (short merges alone)
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

/// o200k's piece ends through 64-byte windows against the byte scanner: the corpus's
/// texts, then random texts over an alphabet of the cases (`--random N`); prints the first
/// disagreement.
func benchWindowCheck(_ args: [String]) throws {
    let opts = benchOptions(args, defaults: ["--field": "text", "--random": "0", "--min": "1", "--span": "260"])
    let minLength = Int(opts["--min"]!) ?? 1, span = UInt64(Int(opts["--span"]!) ?? 260)
    var texts: [[UInt8]] = []
    if let corpus = opts["--corpus"] { texts = try loadTexts(corpus, field: opts["--field"]!) }
    // ASCII of every class the pattern tells apart, and UTF-8 that can continue an ASCII run:
    // é (letter), U+0301 (mark), ٣ (number), NBSP, U+0085, U+2028, U+3000 (spaces), “ and 中.
    let ascii = Array("aAbZzsStTmMdDrReEvVlL09 5 \t\n\r\u{0B}\u{0C}'.,!?/-\"()@_\u{00}\u{1C}\u{1F}\u{7F}  \n\n".utf8).map { [$0] }
    let wide: [[UInt8]] = [[0xC3, 0xA9], [0xCC, 0x81], [0xD9, 0xA3], [0xC2, 0xA0], [0xC2, 0x85], [0xE2, 0x80, 0xA8], [0xE3, 0x80, 0x80], [0xE2, 0x80, 0x9C], [0xE4, 0xB8, 0xAD]]
    let alphabet = ascii + ascii + wide
    var rng: UInt64 = 0x9E3779B97F4A7C15
    for _ in 0..<(Int(opts["--random"]!) ?? 0) {
        rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17
        let len = minLength + Int(rng % span)
        var t: [UInt8] = []
        while t.count < len {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17
            t += alphabet[Int(rng % UInt64(alphabet.count))]
        }
        texts.append(t)
    }
    var bad = 0
    for t in texts {
        let a = t.withUnsafeBufferPointer { Pretokenizer.o200kPieceEnds($0, windows: true) }
        let b = t.withUnsafeBufferPointer { Pretokenizer.o200kPieceEnds($0, windows: false) }
        if a != b {
            bad += 1
            if bad <= 3 {
                let k = (0..<min(a.count, b.count)).first { a[$0] != b[$0] } ?? min(a.count, b.count)
                let from = k > 0 ? b[k - 1] : 0
                print("MISMATCH at piece \(k) from \(from): windows \(Array(a[k..<min(a.count, k + 4)])) bytes \(Array(b[k..<min(b.count, k + 4)]))")
                print("  text: \(t[max(0, from - 8)..<min(t.count, from + 40)].map { String($0, radix: 16) }.joined(separator: " "))")
            }
        }
    }
    print(#"{"bench": "wincheck", "texts": \#(texts.count), "mismatches": \#(bad)}"#)
}

/// The merges of short pieces alone: every piece of 2-16 bytes of the corpus that is not a
/// token (as the o200k scanner cuts them), merged from its bytes, in corpus order (`--distinct 1`:
/// each once) or a window of `--working` pieces repeated, ns a piece (best of R).
func benchMerges(_ args: [String]) throws {
    let opts = benchOptions(args, defaults: ["--field": "text", "--repeat": "3", "--tokenizer": "o200k_base", "--working": "0"])
    guard let corpus = opts["--corpus"] else { fail("merges needs --corpus") }
    let t = try TokenizerLoader.load(opts["--tokenizer"]!, threads: 1)
    var pieces: [[UInt8]] = []
    for text in try loadTexts(corpus, field: opts["--field"]!) {
        let ends = text.withUnsafeBufferPointer { Pretokenizer.o200kPieceEnds($0, windows: false) }
        var s = 0
        for e in ends {
            let m = e - s
            if m >= 2 && m <= 16 && text[s] < 0x80 {
                let r = text.withUnsafeBufferPointer { t.ranks.rank($0.baseAddress! + s, m) }
                if r == RankTable.none { pieces.append(Array(text[s..<e])) }
            }
            s = e
        }
    }
    if opts["--distinct"] == "1" { var seen = Set<[UInt8]>(); pieces = pieces.filter { seen.insert($0).inserted } }
    let working = Int(opts["--working"]!) ?? 0
    if working > 0 { let w = Array(pieces.prefix(working)); pieces = Array(repeating: w, count: max(1, pieces.count / working)).flatMap { $0 } }
    var best = Double.infinity, tokens = 0
    for _ in 0..<(Int(opts["--repeat"]!) ?? 3) {
        let t0 = now()
        tokens = BenchHooks.shortMerges(t, pieces, rounds: 1)
        best = min(best, now() - t0)
    }
    print(#"{"bench": "merges", "pieces": \#(pieces.count), "tokens": \#(tokens), "ns_per_piece": \#(best / Double(pieces.count) * 1e9)}"#)
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
    case "wincheck": try benchWindowCheck(Array(argv.dropFirst()))
    case "merges": try benchMerges(Array(argv.dropFirst()))
    case "idwriter": try benchIDWriter(Array(argv.dropFirst()))
    default: fail("usage: tokenmill-bench bpe --tokenizer T --corpus FILE.jsonl [--field text] [--threads N] [--repeat R]\n"
                  + "       tokenmill-bench minhash --corpus FILE.jsonl [--field text] [--mode signatures|dedup] [--threads N] [--permutations 128] [--ngram 5] [--threshold 0.8] [--limit N] [--repeat R] [--pairs-out P]\n"
                  + "       tokenmill-bench ingest --input FILE [--format F] [--field text] [--threads N] [--repeat R] [--from-memory 1]\n"
                  + "       tokenmill-bench ingest-scan --input FILE.jsonl [--repeat R]\n"
                  + "       tokenmill-bench ingest-extract --input FILE.jsonl [--field text] [--repeat R]\n"
                  + "       tokenmill-bench pack [--records 1000000] [--seq-len 4096] [--repeat R] [--seed S]\n"
                  + "       tokenmill-bench load --tokenizer T [--threads N] [--repeat R]\n"
                  + "       tokenmill-bench idwriter --ids IDS.jsonl [--lines 640] [--evict-kb 1024] [--repeat R]\n"
                  + "       tokenmill-bench scan --corpus FILE.jsonl [--field text] [--repeat R]\n"
                  + "       tokenmill-bench wincheck [--corpus FILE.jsonl] [--random N [--min 1] [--span 260]]\n"
                  + "       tokenmill-bench merges --corpus FILE.jsonl [--tokenizer o200k_base] [--distinct 1] [--working N] [--repeat R]")
    }
} catch {
    fail("\(error)")
}
