/// The BPE merge loop for one pre-token (tiktoken's `byte_pair_merge`).
///
/// `parts` holds the start of every current part plus the rank of merging it with the
/// next one. Each round merges the lowest-ranked adjacent pair and recomputes only the
/// two neighbouring ranks. This is O(n²) in the piece length, but pieces are short (a
/// word) and the flat array stays in L1; tiktoken's design log argues the same against a
/// heap. Very long pieces (thousands of bytes of one script) are where this loses; the
/// BPE issue revisits it with a heap-based path.
struct BytePairMerge {
    var starts: [Int] = []
    var ranks: [UInt32] = []

    mutating func encode(_ p: UnsafePointer<UInt8>, _ n: Int, _ table: RankTable, into out: inout [UInt32]) {
        if n == 1 { out.append(table.rank(p, 1)); return }
        let whole = table.rank(p, n)
        if whole != RankTable.none { out.append(whole); return }
        starts.removeAll(keepingCapacity: true)
        ranks.removeAll(keepingCapacity: true)
        for i in 0..<n {
            starts.append(i)
            ranks.append(i + 1 < n ? table.rank(p + i, 2) : RankTable.none)
        }
        starts.append(n)
        ranks.append(RankTable.none)
        // Invariant: ranks[i] is the rank of bytes starts[i]..<starts[i+2], or none.
        starts.withUnsafeMutableBufferPointer { s in
            ranks.withUnsafeMutableBufferPointer { r in
                var len = n + 1
                while true {
                    var minRank = RankTable.none
                    var minIdx = 0
                    for i in 0..<(len - 1) where r[i] < minRank { minRank = r[i]; minIdx = i }
                    if minRank == RankTable.none { break }
                    let i = minIdx
                    // Merge part i with part i+1: drop entry i+1.
                    r[i] = i + 3 < len ? table.rank(p + s[i], s[i + 3] - s[i]) : RankTable.none
                    if i > 0 { r[i - 1] = table.rank(p + s[i - 1], s[i + 2] - s[i - 1]) }
                    var k = i + 1
                    while k + 1 < len { s[k] = s[k + 1]; r[k] = r[k + 1]; k += 1 }
                    len -= 1
                }
                for i in 0..<(len - 1) {
                    out.append(table.rank(p + s[i], s[i + 1] - s[i]))
                }
            }
        }
    }
}
