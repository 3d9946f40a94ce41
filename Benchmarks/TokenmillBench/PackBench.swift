import Packing
import TokenmillCore

/// Best-fit-decreasing packing of `--records` documents into `--seq-len` sequences, the
/// pack stage's inner step (issue 16: "a million records pack in seconds"). Lengths are
/// drawn from a heavy-tailed mix like instruction data (most 50-600 tokens, some long ones
/// that overflow and are split), deterministic from `--seed`. Prints the best of
/// `--repeat` runs and the packing efficiency (tokens / capacity).
func benchPack(_ args: [String]) throws {
    let opts = benchOptions(args, defaults: ["--records": "1000000", "--seq-len": "4096", "--repeat": "3", "--seed": "1"])
    let n = Int(opts["--records"]!) ?? 1_000_000, seqLen = Int(opts["--seq-len"]!) ?? 4096
    let repeats = Int(opts["--repeat"]!) ?? 3
    var rng = SplitMix64(seed: UInt64(opts["--seed"]!) ?? 1)
    let lengths = (0..<n).map { _ -> Int in
        let r = rng.below(100)
        if r < 70 { return 50 + Int(rng.below(550)) }
        if r < 95 { return 600 + Int(rng.below(2400)) }
        return 3000 + Int(rng.below(9000))
    }
    var best = Double.infinity
    var sequences = 0, tokens = 0
    for _ in 0..<repeats {
        let t0 = now()
        let r = Packer.pack(lengths: lengths, seqLen: seqLen, strategy: .bestFit, overflow: .split)
        best = min(best, now() - t0)
        sequences = r.sequences.count
        tokens = r.sequences.reduce(0) { $0 + $1.reduce(0) { $0 + $1.count } }
    }
    let efficiency = Double(tokens) / Double(sequences * seqLen)
    print(#"{"tool": "tokenmill", "strategy": "best-fit", "records": \#(n), "seq_len": \#(seqLen), "seconds": \#(best), "sequences": \#(sequences), "tokens": \#(tokens), "efficiency": \#(efficiency)}"#)
}
