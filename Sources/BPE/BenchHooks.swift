/// Entry points for `tokenmill-bench` experiments on single stages.
public enum BenchHooks {
    /// Merges each piece from its bytes (`BytePairMerge.short`, pieces of 2-16 bytes) `rounds`
    /// times; returns the tokens made (so nothing is optimised away).
    public static func shortMerges(_ t: Tokenizer, _ pieces: [[UInt8]], rounds: Int) -> Int {
        var merge = BytePairMerge()
        defer { merge.deallocate() }
        var total = 0
        for _ in 0..<rounds {
            for p in pieces {
                p.withUnsafeBufferPointer { merge.short($0.baseAddress!, $0.count, t.ranks) }
                total &+= merge.tokenCount
                merge.tokenCount = 0
            }
        }
        return total
    }
}
