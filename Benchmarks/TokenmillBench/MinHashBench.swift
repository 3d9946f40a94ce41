import Dedup
import TokenmillCore

/// `tokenmill-bench minhash --corpus F.jsonl [--field text] [--permutations 128] [--ngram 5]
///  [--threshold 0.8] [--threads 1] [--mode signatures|dedup] [--limit N] [--repeat R]
///  [--pairs-out P.jsonl]`
///
/// signatures: shingle + hash + sign every text (what a pipeline pays from text).
/// dedup: the whole near-dedup pass — signatures, LSH banding, confirmation, clusters.
/// With --pairs-out, every removed doc is written with the doc it was confirmed against
/// ({"a": kept-side index, "b": removed index, "similarity": s}, 0-based corpus order).
func benchMinHash(_ args: [String]) throws {
    let opts = benchOptions(args, defaults: ["--field": "text", "--threads": "1", "--repeat": "1", "--permutations": "128",
                                             "--ngram": "5", "--threshold": "0.8", "--mode": "signatures"])
    guard let corpus = opts["--corpus"] else { fail("minhash needs --corpus") }
    let threads = Int(opts["--threads"]!) ?? 1, repeats = Int(opts["--repeat"]!) ?? 1
    let p = Int(opts["--permutations"]!) ?? 128, n = Int(opts["--ngram"]!) ?? 5
    let threshold = Double(opts["--threshold"]!) ?? 0.8
    guard p > 0, p % 8 == 0 else { fail("--permutations must be a multiple of 8") }
    var texts = try loadTexts(corpus, field: opts["--field"]!)
    if let l = opts["--limit"].flatMap({ Int($0) }), l < texts.count { texts = Array(texts[..<l]) }
    let bytes = texts.reduce(0) { $0 + $1.count }
    let hasher = MinHasher(permutations: p, seed: 1)
    let dedup = opts["--mode"] == "dedup"
    var best = Double.infinity
    var result: NearDedup.Result? = nil
    var sink: UInt32 = 0
    for _ in 0..<repeats {
        let t0 = now()
        let (sigs, empty) = try hasher.signatures(count: texts.count, ngram: n, threads: threads) { texts[$0] }
        if let path = opts["--signatures-out"] {
            try sigs.withUnsafeBytes { try FileSystem.writeAtomically(path, Array($0)) }
        }
        if dedup {
            result = NearDedup.run(signatures: sigs, count: texts.count, permutations: p, empty: empty, threshold: threshold, threads: threads)
        }
        best = min(best, now() - t0)
        sink ^= sigs.first ?? 0
    }
    let lsh = LSHParameters.optimal(threshold: threshold, permutations: p)
    let dups = result?.removed.filter { $0 }.count ?? 0
    if let path = opts["--pairs-out"], let r = result {
        var out: [UInt8] = []
        for c in r.clusters {
            for e in c.removed { out.append(contentsOf: #"{"a": \#(e.matched), "b": \#(e.removed), "similarity": \#(e.similarity)}"#.utf8); out.append(0x0A) }
        }
        try FileSystem.writeAtomically(path, out)
    }
    print(#"{"tool": "tokenmill", "mode": "\#(dedup ? "dedup" : "signatures")", "threads": \#(threads), "docs": \#(texts.count), "bytes": \#(bytes), "seconds": \#(best), "docs_per_s": \#(Double(texts.count) / best), "mb_per_s": \#(Double(bytes) / best / 1e6), "bands": \#(lsh.bands), "rows": \#(lsh.rows), "duplicates": \#(dups), "sink": \#(sink % 10)}"#)
}
