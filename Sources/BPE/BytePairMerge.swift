/// The BPE merge for one pre-token: repeatedly merge the adjacent pair whose bytes have
/// the lowest rank (the leftmost on ties) until no pair is a token — tiktoken's
/// `byte_pair_merge`, with the same result on every input.
///
/// Two paths (design log):
/// - Short pieces (the vast majority: a word) use a flat loop: the minimum over at most
///   `shortLimit` parts (`flatMerge`), or `flatLimit` (`flatMerge32`), in vector
///   registers, which beats any heap at this size.
/// - Long pieces (runs of CJK text, long identifiers, base64, digit-free symbol runs)
///   use a min-heap of (rank, position) with lazy deletion and a doubly linked list of
///   parts: O(n log n) instead of O(n²). A 2,000-byte piece of Chinese takes ~2k merges;
///   the flat loop would scan ~2M entries for it.
/// Tried and dropped: caching whole-piece results per thread (a direct-mapped cache hit
/// costs about what the whole-piece rank lookup already costs, and misses add a copy).
struct BytePairMerge {
    static let shortLimit = 16
    /// The most parts `flatMerge32` takes; longer merges use the heap.
    static let flatLimit = 32

    /// Token id of each part.
    var ids: UnsafeMutablePointer<Int32>
    var ranks: UnsafeMutablePointer<UInt32>
    var next: UnsafeMutablePointer<Int32>
    var prev: UnsafeMutablePointer<Int32>
    var heap: UnsafeMutablePointer<UInt64>
    var capacity: Int
    /// Tokens produced and not yet handed over (`flush`): written through a raw pointer
    /// so the merge loops pay no `Array` uniqueness or capacity check per token.
    var tokens: UnsafeMutablePointer<UInt32>
    var tokenCount = 0
    var tokenCapacity: Int
    /// `splitLong`'s cut positions and the whole-part hashes of the parts between them.
    var cuts: UnsafeMutablePointer<Int32>
    var cutHashes: UnsafeMutablePointer<UInt64>
    var cutCapacity: Int

    init() {
        capacity = 256
        ids = .allocate(capacity: capacity + 1)
        ranks = .allocate(capacity: capacity + 1)
        next = .allocate(capacity: capacity + 1)
        prev = .allocate(capacity: capacity + 1)
        heap = .allocate(capacity: 2 * capacity + 2)
        tokenCapacity = 1 << 14
        tokens = .allocate(capacity: tokenCapacity)
        cutCapacity = 1024
        cuts = .allocate(capacity: cutCapacity + 1)
        cutHashes = .allocate(capacity: cutCapacity + 1)
    }

    /// Frees the scratch memory (the owner calls this; the struct is not reference counted).
    func deallocate() {
        ids.deallocate(); ranks.deallocate(); next.deallocate(); prev.deallocate(); heap.deallocate()
        tokens.deallocate(); cuts.deallocate(); cutHashes.deallocate()
    }

    /// Makes room for `n` more tokens (a piece of n bytes gives at most n), handing the
    /// tokens so far to `out` first when the buffer is short.
    @inline(__always)
    mutating func reserveTokens(_ n: Int, flushingInto out: inout [UInt32]) {
        if tokenCapacity - tokenCount >= n { return }
        if keep { return growTokens(n) }
        flush(into: &out)
        if n > tokenCapacity {
            tokens.deallocate()
            tokenCapacity = max(n, 2 * tokenCapacity)
            tokens = .allocate(capacity: tokenCapacity)
        }
    }

    mutating func flush(into out: inout [UInt32]) {
        if keep { return }
        out.append(contentsOf: UnsafeBufferPointer(start: tokens, count: tokenCount))
        tokenCount = 0
    }

    /// When set, tokens stay in `tokens` across texts (the buffer grows instead of being
    /// handed on): `Tokenizer.Encoder.encodeKeeping`.
    var keep = false

    /// Room for `n` more tokens after the ones kept.
    mutating func growTokens(_ n: Int) {
        let capacity = max(tokenCount + n, 2 * tokenCapacity)
        let grown = UnsafeMutablePointer<UInt32>.allocate(capacity: capacity)
        grown.update(from: tokens, count: tokenCount)
        tokens.deallocate()
        tokens = grown
        tokenCapacity = capacity
    }

    @inline(__always)
    mutating func emit(_ t: UInt32) { tokens[tokenCount] = t; tokenCount &+= 1 }

    /// Bytes dropped so far because the vocabulary has no token for them.
    var droppedBytes = 0

    /// A piece holding bytes the vocabulary has no token for is merged without them (as
    /// `tokenizers` drops such a byte, so its neighbours may merge); false when it holds
    /// none, and the caller merges it as it is.
    @inline(never)
    mutating func encodeDroppingHoles(_ p: UnsafePointer<UInt8>, _ n: Int, _ table: RankTable) -> Bool {
        guard let kept = Self.withoutHoles(p, n, table) else { return false }
        droppedBytes &+= n &- kept.count
        if !kept.isEmpty {
            kept.withUnsafeBufferPointer { encode($0.baseAddress!, kept.count, table) }
        }
        return true
    }

    /// The piece without the bytes the vocabulary has no token for; nil when it has none
    /// of them (the common case: no copy).
    static func withoutHoles(_ p: UnsafePointer<UInt8>, _ n: Int, _ table: RankTable) -> [UInt8]? {
        var i = 0
        while i < n && !table.byteHoles[Int(p[i])] { i &+= 1 }
        if i == n { return nil }
        var kept = Array(UnsafeBufferPointer(start: p, count: i))
        for k in (i &+ 1)..<max(i &+ 1, n) where !table.byteHoles[Int(p[k])] { kept.append(p[k]) }
        return kept
    }

    /// One piece straight into `out` (the general path; the plain loop batches instead).
    mutating func encode(_ p: UnsafePointer<UInt8>, _ n: Int, _ table: RankTable, into out: inout [UInt32]) {
        reserveTokens(n, flushingInto: &out)
        encode(p, n, table)
        flush(into: &out)
    }

    mutating func reserve(_ n: Int) {
        if n <= capacity { return }
        ids.deallocate(); ranks.deallocate(); next.deallocate(); prev.deallocate(); heap.deallocate()
        capacity = max(n, capacity &* 2)
        ids = .allocate(capacity: capacity &+ 1)
        ranks = .allocate(capacity: capacity &+ 1)
        next = .allocate(capacity: capacity &+ 1)
        prev = .allocate(capacity: capacity &+ 1)
        heap = .allocate(capacity: 2 &* capacity &+ 2)
    }

    @inline(__always)
    mutating func encode(_ p: UnsafePointer<UInt8>, _ n: Int, _ table: RankTable) {
        let w = table.wholeKey(p, n, readable16: false)
        encode(p, n, table, hash: w.hash, key: w.key, key2: w.key2)
    }

    /// `encode` with the piece's `RankTable.wholeKey` already computed (the scanner's
    /// look-ahead computes it to prefetch the slot).
    @inline(__always)
    mutating func encode(_ p: UnsafePointer<UInt8>, _ n: Int, _ table: RankTable, hash h: UInt64, key k1: UInt64, key2 k2: UInt64) {
        if table.hasByteHoles && encodeDroppingHoles(p, n, table) { return }
        if n == 1 { emit(table.byteRanks[Int(p[0])]); return }
        if table.wholeLookups {
            let whole = table.lookup(p, n, h, k1, k2)
            if whole != RankTable.none { emit(whole); return }
        }
        mergeParts(p, n, table)
    }

    /// A piece of two or more bytes that is not a token itself (its whole-piece lookup
    /// missed or there is none), without bytes the vocabulary lacks: merged from its parts.
    @inline(__always)
    mutating func mergeParts(_ p: UnsafePointer<UInt8>, _ n: Int, _ table: RankTable) {
        // Non-ASCII pieces (CJK runs above all) usually cut into single characters that are
        // tokens; ASCII words almost never cut, so they skip the check.
        if n > BytePairMerge.shortLimit || p[0] >= 0x80 {
            // A non-ASCII piece merges from its characters whole when it can (no straddling
            // token's window at any of its character boundaries): the cut test of every
            // byte position costs more than the pair lookups of its characters. (Up to 48
            // bytes only while the straddle filter's false positives failed a fifth of the
            // pieces; with them gone, longer pieces gained: 0.94x the time on non-ASCII
            // lines with 96 bytes, 0.96-0.99x more without a limit on documents.)
            if p[0] >= 0x80, let starts = table.charStarts, charPart(p, n, table, starts) { return }
            splitLong(p, n, table)
        } else {
            short(p, n, table)
        }
    }

    /// Cuts a long piece where no token can span the cut (`RankTable.cutAt`) and merges
    /// each part on its own: exact, and it turns a 300-byte run of Chinese into a few
    /// dozen short parts. Three passes, so that memory fetches overlap instead of waiting
    /// on each other: the cut test of every position (no branch on the bitmap words, so all
    /// their loads are in flight together), the whole-part slot prefetches, the merges.
    @inline(never)
    mutating func splitLong(_ p: UnsafePointer<UInt8>, _ n: Int, _ table: RankTable) {
        reserveCuts(n)
        let cut = cuts, hashes = cutHashes
        cut[0] = 0
        var m = 1
        for k in 1..<n {
            cut[m] = Int32(truncatingIfNeeded: k)
            m &+= table.cutAt(p, k, n)
        }
        cut[m] = Int32(truncatingIfNeeded: n)
        for j in 0..<m {
            let len = Int(cut[j &+ 1] &- cut[j])
            let h = len <= BytePairMerge.shortLimit ? table.wholeHash(p + Int(cut[j]), len) : 0
            if h != 0 { table.prefetch(h) }
            hashes[j] = h
        }
        for j in 0..<m {
            part(p + Int(cut[j]), Int(cut[j &+ 1] &- cut[j]), table, hash: hashes[j])
        }
    }

    /// Room for the cuts of an n-byte piece (`splitLong`).
    @inline(__always)
    mutating func reserveCuts(_ n: Int) {
        if n < cutCapacity { return }
        cuts.deallocate(); cutHashes.deallocate()
        cutCapacity = max(n &+ 1, 2 &* cutCapacity)
        cuts = .allocate(capacity: cutCapacity &+ 1)
        cutHashes = .allocate(capacity: cutCapacity &+ 1)
    }

    /// One cut part; `h` is its `RankTable.wholeHash` when it is at most `shortLimit` long.
    @inline(__always)
    mutating func part(_ p: UnsafePointer<UInt8>, _ n: Int, _ table: RankTable, hash h: UInt64) {
        if n == 1 { emit(table.byteRanks[Int(p[0])]); return }
        if n <= BytePairMerge.shortLimit && table.wholeLookups {
            // A part is not a whole piece: its bytes being a token is not enough, the
            // merge must reach that token from them.
            let whole = table.lookup(p, n, h)
            if whole != RankTable.none && table.isReachable(whole) { emit(whole); return }
        }
        if let starts = table.charStarts, charPart(p, n, table, starts) { return }
        if n <= BytePairMerge.shortLimit { short(p, n, table) } else { long(p, n, table) }
    }

    /// The merge of a part started from its characters' tokens rather than its bytes,
    /// when `CharStarts` says that is exact for it (false, with nothing emitted, when it
    /// is not, or when no character of the part starts as a token). A straddling token
    /// that occurs in the part spans a character boundary with bytes on both sides, so
    /// one of the windows checked at each boundary — its two bytes, and the 3-byte windows
    /// ending and starting there — is one of its own.
    @inline(never)
    mutating func charPart(_ p: UnsafePointer<UInt8>, _ n: Int, _ table: RankTable, _ starts: CharStarts) -> Bool {
        reserve(n)
        let tri = starts.straddleTrigrams, pairs = starts.straddlePairs
        var m = 0, i = 0
        var straddle: UInt64 = 0
        while i < n {
            if i > 0 {
                let y = Int(p[i &- 1]) &<< 8 | Int(p[i])
                straddle |= pairs[y &>> 6] &>> UInt64(y & 63)
                if i >= 2 { straddle |= CharStarts.straddles(tri, p, i &- 2) }
                if i &+ 1 < n { straddle |= CharStarts.straddles(tri, p, i &- 1) }
            }
            // Both decodings of a 2- or 3-byte lead are computed and one is selected, with no
            // branch on which script the text is in (Cyrillic next to Chinese mispredicted
            // the old decoder's tests). The text is valid UTF-8 (callers repair it first),
            // so the continuation bytes exist, though a cut part may end before them; a
            // character whose token is used is never cut inside (its bytes are a token, so
            // `cutAt` keeps them together), so `i` then stays within the part.
            let b = p[i]
            let two = b &- 0xC2 <= 0xDF &- 0xC2, three = b &- 0xE0 <= 0xEF &- 0xE0
            var t = RankTable.none, len = 1
            if two || three {
                let c1 = UInt32(p[i &+ 1] & 0x3F)
                let c2 = three ? UInt32(p[i &+ 2] & 0x3F) : 0
                let cp = three ? (UInt32(b) & 0x0F) &<< 12 | c1 &<< 6 | c2 : (UInt32(b) & 0x1F) &<< 6 | c1
                t = starts.tokens[Int(cp)]
                len = three ? 3 : 2
            }
            // A character with no token of its own (or none at all: ASCII, 4-byte) starts
            // as its bytes.
            let whole = t != RankTable.none
            ids[m] = Int32(bitPattern: whole ? t : table.byteRanks[Int(b)])
            m &+= 1
            i &+= whole ? len : 1
        }
        if m == n || straddle & 1 != 0 { return false }
        let r = ranks
        for k in 0..<(m &- 1) { r[k] = table.pairRank(UInt32(bitPattern: ids[k]), UInt32(bitPattern: ids[k &+ 1])) }
        if m <= BytePairMerge.shortLimit { flatMerge(m, table) } else if m <= BytePairMerge.flatLimit { flatMerge32(m, table) } else { heapMerge(m, table) }
        return true
    }

    /// tiktoken's loop over parts that are tokens: `ids[i]` is part i's token, `ranks[i]`
    /// the token of parts i and i+1 merged (a pair-table lookup), or none.
    @inline(never)
    mutating func short(_ p: UnsafePointer<UInt8>, _ n: Int, _ table: RankTable) {
        let r = ranks
        for i in 0..<n { ids[i] = Int32(bitPattern: table.byteRanks[Int(p[i])]) }
        for i in 0..<(n &- 1) { r[i] = table.bytePair(p[i], p[i &+ 1]) }
        prefetchFirstMerges(n, table)
        flatMerge(n, table)
    }

    /// Starts the fetch of the pair-table lines the first merges will read: for each pair
    /// with a rank, its token with the part before and with the part after. The merge
    /// loop's lookups depend each on the one before (a merge's token, then its pairs, then
    /// the next minimum), so a line missing from the cache stalls the loop; these lookups
    /// do not depend on one another, and their lines arrive together. On the short merges
    /// of ASCII words: 1.06-1.11x on the benchmark's English documents (simultaneous paired
    /// runs), 1.05x on its non-ASCII ones (their English words); in every flat merge,
    /// CJK merges included, no gain on the non-ASCII documents (0.98x, 1.00x): most of a
    /// CJK run's first pairs have no rank, and their lines were read just before.
    @inline(__always)
    func prefetchFirstMerges(_ n: Int, _ table: RankTable) {
        let r = ranks
        for i in 0..<(n &- 1) where r[i] != RankTable.none {
            let t = table.merged(r[i])
            if i > 0 { table.prefetchPair(UInt32(bitPattern: ids[i &- 1]), t) }
            if i &+ 2 < n { table.prefetchPair(t, UInt32(bitPattern: ids[i &+ 2])) }
        }
    }

    /// The flat loop over `n` parts (at most `shortLimit`) whose `ids` and `ranks` (of each
    /// part with the next) are set. The pairs' ranks live in two vector registers, as keys
    /// `rank << 4 | part` (all ones for no pair), so that one minimum gives the lowest rank
    /// and, on ties, the first part; parts do not move: a merged part's lane is dropped
    /// from `live`, and its neighbours are found in that mask. An earlier version shifted
    /// the arrays down in memory after each merge and reloaded the ranks 32 bytes at a
    /// time, and those loads, overlapping the stores just made, waited for them to reach
    /// the cache instead of taking their values from the store buffer (8% of `short`'s
    /// samples sat on one such load). Ranks must fit in 28 bits (they are below 2^21).
    @inline(__always)
    mutating func flatMerge(_ n: Int, _ table: RankTable) {
        let r = ranks
        let noPair = SIMD8<UInt32>(repeating: UInt32.max)
        let laneLo = SIMD8<UInt32>(0, 1, 2, 3, 4, 5, 6, 7), laneHi = laneLo &+ 8
        // `none` from the last pair on, so the 16 lanes read hold no stale rank.
        UnsafeMutableRawPointer(r + (n &- 1)).storeBytes(of: SIMD16<UInt32>(repeating: RankTable.none), as: SIMD16<UInt32>.self)
        let raw = UnsafeRawPointer(r)
        let r0 = raw.loadUnaligned(as: SIMD8<UInt32>.self), r1 = raw.loadUnaligned(fromByteOffset: 32, as: SIMD8<UInt32>.self)
        var lo = (r0 &<< 4 | laneLo).replacing(with: noPair, where: r0 .== noPair)
        var hi = (r1 &<< 4 | laneHi).replacing(with: noPair, where: r1 .== noPair)
        var live = UInt32(truncatingIfNeeded: (1 &<< n) &- 1)
        ids[16] = 0   // read (and not used) as the neighbour of an end part, below
        while true {
            let key = pointwiseMin(lo, hi).min()
            if key == UInt32.max { break }
            let i = Int(key & 15)
            let t = table.merged(key &>> 4)
            ids[i] = Int32(bitPattern: t)
            // Part i takes part j, the next live one (it exists: the pair had a rank).
            let after = live & ~((2 &<< UInt32(i)) &- 1)
            let j = after.trailingZeroBitCount
            live &= ~(1 &<< UInt32(j))
            let beyond = after & (after &- 1), before = live & ((1 &<< UInt32(i)) &- 1)
            // Both neighbours' pair lines are requested before either lookup runs: the
            // lookups branch on what they find, and a mispredicted branch in the first held
            // the second's request back (English documents 1.04-1.08x, the documents 1.03x).
            // Part 16 stands for the missing neighbour of an end part.
            let q = (beyond | 1 &<< 16).trailingZeroBitCount, previous = before == 0 ? 16 : 31 &- before.leadingZeroBitCount
            table.prefetchPair(t, UInt32(bitPattern: ids[q]))
            table.prefetchPair(UInt32(bitPattern: ids[previous]), t)
            var right = UInt32.max, left = UInt32.max, p = 16
            if beyond != 0 {
                let rank = table.pairRank(t, UInt32(bitPattern: ids[q]))
                if rank != RankTable.none { right = rank &<< 4 | UInt32(i) }
            }
            if before != 0 {
                p = previous
                let rank = table.pairRank(UInt32(bitPattern: ids[p]), t)
                if rank != RankTable.none { left = rank &<< 4 | UInt32(p) }
            }
            let vj = SIMD8<UInt32>(repeating: UInt32(j)), vi = SIMD8<UInt32>(repeating: UInt32(i)), vp = SIMD8<UInt32>(repeating: UInt32(p))
            let vr = SIMD8<UInt32>(repeating: right), vl = SIMD8<UInt32>(repeating: left)
            lo = lo.replacing(with: noPair, where: laneLo .== vj).replacing(with: vr, where: laneLo .== vi).replacing(with: vl, where: laneLo .== vp)
            hi = hi.replacing(with: noPair, where: laneHi .== vj).replacing(with: vr, where: laneHi .== vi).replacing(with: vl, where: laneHi .== vp)
        }
        while live != 0 {
            emit(UInt32(bitPattern: ids[live.trailingZeroBitCount]))
            live &= live &- 1
        }
    }

    /// `flatMerge` for 17 to 32 parts (`flatLimit`): four vector registers of keys
    /// `rank << 5 | part`, one minimum over them. Up to 32 parts this beats the heap, whose
    /// sift-down and stale entries branch on data (CJK runs of 17-32 characters, a sixth
    /// of the non-ASCII pieces that reach the merge in the benchmark's documents, and long
    /// parts of other text went to the heap): 1.04-1.05x on the non-ASCII documents.
    /// Ranks must fit in 27 bits. Its loop is `flatMerge`'s with four registers; one
    /// function for both (a constant `wide` flag, keys `rank << 5` and 64-bit masks in
    /// both) gave the same ids but cost 0.4% more instructions on English and 2.1% on
    /// non-ASCII text (0.979x and 0.969x by ab_pairs), so the two stay apart.
    @inline(never)
    mutating func flatMerge32(_ n: Int, _ table: RankTable) {
        let r = ranks
        let noPair = SIMD8<UInt32>(repeating: UInt32.max)
        let lane0 = SIMD8<UInt32>(0, 1, 2, 3, 4, 5, 6, 7)
        let lane1 = lane0 &+ 8, lane2 = lane0 &+ 16, lane3 = lane0 &+ 24
        // `none` from the last pair on, so the 32 lanes read hold no stale rank.
        let tail = UnsafeMutableRawPointer(r + (n &- 1))
        tail.storeBytes(of: SIMD16<UInt32>(repeating: RankTable.none), as: SIMD16<UInt32>.self)
        tail.storeBytes(of: SIMD16<UInt32>(repeating: RankTable.none), toByteOffset: 64, as: SIMD16<UInt32>.self)
        let raw = UnsafeRawPointer(r)
        func keys(_ k: Int, _ lanes: SIMD8<UInt32>) -> SIMD8<UInt32> {
            let v = raw.loadUnaligned(fromByteOffset: 32 &* k, as: SIMD8<UInt32>.self)
            return (v &<< 5 | lanes).replacing(with: noPair, where: v .== noPair)
        }
        var k0 = keys(0, lane0), k1 = keys(1, lane1), k2 = keys(2, lane2), k3 = keys(3, lane3)
        var live = UInt64((1 &<< n) &- 1)
        while true {
            let key = pointwiseMin(pointwiseMin(k0, k1), pointwiseMin(k2, k3)).min()
            if key == UInt32.max { break }
            let i = Int(key & 31)
            let t = table.merged(key &>> 5)
            ids[i] = Int32(bitPattern: t)
            // Part i takes part j, the next live one (it exists: the pair had a rank).
            let after = live & ~((2 &<< UInt64(i)) &- 1)
            let j = after.trailingZeroBitCount
            live &= ~(1 &<< UInt64(j))
            let beyond = after & (after &- 1), before = live & ((1 &<< UInt64(i)) &- 1)
            var right = UInt32.max, left = UInt32.max, p = 32
            if beyond != 0 {
                let rank = table.pairRank(t, UInt32(bitPattern: ids[beyond.trailingZeroBitCount]))
                if rank != RankTable.none { right = rank &<< 5 | UInt32(i) }
            }
            if before != 0 {
                p = 63 &- before.leadingZeroBitCount
                let rank = table.pairRank(UInt32(bitPattern: ids[p]), t)
                if rank != RankTable.none { left = rank &<< 5 | UInt32(p) }
            }
            let vj = SIMD8<UInt32>(repeating: UInt32(j)), vi = SIMD8<UInt32>(repeating: UInt32(i)), vp = SIMD8<UInt32>(repeating: UInt32(p))
            let vr = SIMD8<UInt32>(repeating: right), vl = SIMD8<UInt32>(repeating: left)
            k0 = k0.replacing(with: noPair, where: lane0 .== vj).replacing(with: vr, where: lane0 .== vi).replacing(with: vl, where: lane0 .== vp)
            k1 = k1.replacing(with: noPair, where: lane1 .== vj).replacing(with: vr, where: lane1 .== vi).replacing(with: vl, where: lane1 .== vp)
            k2 = k2.replacing(with: noPair, where: lane2 .== vj).replacing(with: vr, where: lane2 .== vi).replacing(with: vl, where: lane2 .== vp)
            k3 = k3.replacing(with: noPair, where: lane3 .== vj).replacing(with: vr, where: lane3 .== vi).replacing(with: vl, where: lane3 .== vp)
        }
        while live != 0 {
            emit(UInt32(bitPattern: ids[live.trailingZeroBitCount]))
            live &= live &- 1
        }
    }

    /// Heap path. Parts are nodes `0..<n` (a node is named by its first byte), linked
    /// through `next`/`prev`; `ids[i]` is node i's token and `ranks[i]` the token of node i
    /// merged with its successor, or none. Heap entries are `rank << 32 | node`, so the
    /// minimum is the lowest rank, leftmost on ties. An entry is stale when its rank no
    /// longer equals the node's: a rank names one byte string, so equal ranks mean the
    /// same pair.
    @inline(never)
    mutating func long(_ p: UnsafePointer<UInt8>, _ n: Int, _ table: RankTable) {
        reserve(n)
        for i in 0..<n { ids[i] = Int32(bitPattern: table.byteRanks[Int(p[i])]) }
        for i in 0..<(n &- 1) { ranks[i] = table.bytePair(p[i], p[i &+ 1]) }
        if n <= BytePairMerge.flatLimit { flatMerge32(n, table) } else { heapMerge(n, table) }
    }

    /// The heap loop over `n` parts whose `ids` and `ranks` (of each part with the next;
    /// the last one's is set here) are set, with room for them (`reserve`).
    @inline(__always)
    mutating func heapMerge(_ n: Int, _ table: RankTable) {
        let r = ranks, nx = next, pv = prev, h = heap
        r[n &- 1] = RankTable.none
        var count = 0

        // `h[count]` is always UInt64.max: a node's second child may be read without
        // testing that it exists, and the smaller child is a select, not a branch (which
        // of two children is smaller is a coin toss: the sift-down's two `&&` tests were a
        // tenth of o200k_base's mispredictions on Chinese text).
        func push(_ v: UInt64) {
            var i = count
            count &+= 1
            h[count] = UInt64.max
            while i > 0 {
                let parent = (i &- 1) &>> 1
                let up = h[parent]
                if up <= v { break }
                h[i] = up
                i = parent
            }
            h[i] = v
        }
        func pop() -> UInt64 {
            let top = h[0]
            count &-= 1
            let last = h[count]
            h[count] = UInt64.max
            if count > 0 {
                var i = 0
                while true {
                    let l = 2 &* i &+ 1
                    if l >= count { break }
                    let right = l &+ 1
                    let c = h[right] < h[l] ? right : l
                    let child = h[c]
                    if child >= last { break }
                    h[i] = child
                    i = c
                }
                h[i] = last
            }
            return top
        }

        for i in 0..<n {
            nx[i] = i &+ 1 < n ? Int32(i &+ 1) : -1
            pv[i] = Int32(i &- 1)
        }
        for i in 0..<n {
            if r[i] != RankTable.none { push(UInt64(r[i]) &<< 32 | UInt64(i)) }
        }
        while count > 0 {
            let top = pop()
            let i = Int(top & 0xFFFF_FFFF)
            let rank = UInt32(top &>> 32)
            if r[i] != rank { continue }   // stale
            // Merge node i with its successor j.
            let j = Int(nx[i])
            let after = nx[j]
            let t = table.merged(rank)
            ids[i] = Int32(bitPattern: t)
            nx[i] = after
            if after >= 0 { pv[Int(after)] = Int32(i) }
            r[j] = RankTable.none
            r[i] = after >= 0 ? table.pairRank(t, UInt32(bitPattern: ids[Int(after)])) : RankTable.none
            if r[i] != RankTable.none { push(UInt64(r[i]) &<< 32 | UInt64(i)) }
            let q = Int(pv[i])
            if q >= 0 {
                r[q] = table.pairRank(UInt32(bitPattern: ids[q]), t)
                if r[q] != RankTable.none { push(UInt64(r[q]) &<< 32 | UInt64(q)) }
            }
        }
        var i: Int32 = 0
        while i >= 0 {
            emit(UInt32(bitPattern: ids[Int(i)]))
            i = nx[Int(i)]
        }
    }
}
