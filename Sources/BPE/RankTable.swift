#if canImport(Glibc)
import Glibc
#endif
import CIntrinsics
import Dispatch
import TokenmillCore

/// The mergeable ranks of a byte-level BPE vocabulary: token bytes <-> rank.
///
/// Layout: every token's bytes back to back in one buffer (`bytes`), `offsets[r]..<
/// offsets[r+1]` for rank `r`, and an open-addressing table (linear probing, load <= 0.5)
/// whose 24-byte slots hold a hash tag, the key length and rank + 1 (0 = empty), and the
/// key's first 16 bytes: lookups of keys up to 16 bytes (almost all) read one slot and
/// nothing else. (With 16-byte slots, keys of 9 to 16 bytes, 15% of o200k_base's lookups
/// on the mixed corpus, also read `offsets` and `bytes`: two more dependent cache misses.) All
/// storage is raw memory owned by this object and never mutated after `init`, so worker
/// threads share it without reference counting in the hot loop (a `[[UInt8]: Int]`
/// would hash a heap array and retain it per lookup).
///
/// The hash (`RankTable.hash`) loads the key in at most two 8-byte words for keys up to
/// 16 bytes (almost every BPE lookup) and falls back to xxh3 beyond.
public final class RankTable: @unchecked Sendable {
    public let count: Int
    let bytes: UnsafeMutableBufferPointer<UInt8>
    let offsets: UnsafeMutableBufferPointer<UInt32>
    let slots: UnsafeMutableBufferPointer<UInt64>
    let mask: Int
    /// Rank of each single byte value (byte-level BPE vocabularies contain all 256).
    let byteRanks: UnsafeMutableBufferPointer<UInt32>
    /// The pair table: for tokens a and b that the merge joins into token t (t's canonical
    /// split, `canonicalPairs`, or a Hugging Face merge), one slot
    /// `a << 41 | b << 21 | (priority + 1)`. The merge loop only ever joins two adjacent parts
    /// that are tokens (it starts from single bytes and merges only into tokens), so
    /// `rank(bytes(a) + bytes(b))` is always a pair-table lookup: two integers hashed
    /// with one multiply, one slot compared, no byte strings touched.
    let pairSlots: UnsafeMutableBufferPointer<UInt64>
    let pairShift: UInt64
    /// Two bits per token, bit `2t` set when t is the left token of some pair in the
    /// pair table and bit `2t + 1` when it is the right one. Most pair lookups of the merge
    /// loops find nothing (62% on o200k over the mixed corpus), and over half of those
    /// involve a token that never starts or never ends a pair: this 50 KiB bitmap, which
    /// stays in cache, answers them without probing the 4 MiB table.
    let pairSides: UnsafeMutableBufferPointer<UInt64>
    /// A blocked Bloom filter of the pair table's keys, about five bits a pair (128 KiB for
    /// o200k_base): two bits of one word per pair. Of the lookups that find nothing and
    /// pass `pairSides`, 88% stop here (o200k, mixed corpus), again without a probe of the
    /// table, whose lines mostly miss the cache.
    let pairFilter: UnsafeMutableBufferPointer<UInt64>
    let pairFilterShift: UInt64
    /// Bit r set when token r's own bytes merge to r (every token of the built-in
    /// vocabularies): only then is a cut part (`BytePairMerge.part`) whose bytes are
    /// token r encoded as r.
    let reachable: UnsafeMutableBufferPointer<UInt64>
    public static let maxPairVocabulary = 1 << 20
    /// Bit `x` set when the 3 bytes `x >> 16, x >> 8 & 0xFF, x & 0xFF` occur inside some
    /// token (2 MiB), and bit `y` of `pairTokens` when the 2 bytes of `y` are a token:
    /// together they find places in a piece that no token can span (see `cutAt`).
    let trigrams: UnsafeMutableBufferPointer<UInt64>
    /// `pairRank` of every two single-byte tokens, indexed `b0 << 8 | b1` (256 KiB): the
    /// first round of every merge reads this instead of probing the pair table.
    let bytePairs: UnsafeMutableBufferPointer<UInt32>
    let pairTokens: UnsafeMutableBufferPointer<UInt64>
    /// Characters' own tokens, for merging a part from its characters (`CharStarts`); nil
    /// when the vocabulary does not allow that. (Set at the end of init: an image's tables
    /// are checked before it is built from them. Tests turn it off to compare the two
    /// merges. Not checked for exclusive access at run time: a class's `var` is, on every
    /// read, and the merge reads it for every non-ASCII piece; only tests write it.)
    @exclusivity(unchecked) var charStarts: CharStarts?

    public static let none = UInt32.max

    /// Merged token of a pair-table priority; nil when priorities are the merged tokens'
    /// own ranks (tiktoken). Hugging Face BPE ranks merges by their line in `merges`.
    let priorityToID: UnsafeMutableBufferPointer<UInt32>?
    /// Whether a whole piece that is a token is emitted directly (tiktoken; HF only with
    /// `ignore_merges`). Without it, HF BPE applies the merges even to such pieces.
    public let wholeLookups: Bool
    /// Bytes the vocabulary has no token for (GPT-NeoX lacks C0, C1 and F5-FF, which UTF-8
    /// never holds; Falcon also some control bytes). `tokenizers` drops such a byte from its
    /// piece before merging, and so does the merge here (`BytePairMerge.encode`).
    public let hasByteHoles: Bool
    let byteHoles: UnsafeMutableBufferPointer<Bool>

    /// `tokens[r]` is the byte string of rank `r`, or nil for a hole (an id the ranks do not
    /// use, such as p50k_base's 50256, which is `<|endoftext|>`). With `merges` (Hugging
    /// Face BPE), merge `k` joins tokens `merges[k].0` and `.1` with priority `k`;
    /// without, every split of a token into two tokens is a merge ranked by the token.
    /// Owns every table's memory (freed when the arena goes): initialized before anything
    /// is allocated, so an init that throws halfway (a refused vocabulary) still frees what
    /// it allocated — a class's deinit does not run for a partly initialized object.
    private let arena = TableArena()

    public init(tokens: [[UInt8]?], merges: [(UInt32, UInt32)]? = nil, wholeLookups: Bool = true, threads: Int = activeProcessorCount) throws {
        self.wholeLookups = wholeLookups
        count = tokens.count
        let total = tokens.reduce(0) { $0 + ($1?.count ?? 0) }
        bytes = arena.table(UInt8.self, capacity: max(total, 1))
        offsets = arena.table(UInt32.self, capacity: count + 1)
        var capacity = 16
        while capacity < count * 2 { capacity <<= 1 }
        slots = arena.table(UInt64.self, capacity: 3 * capacity)
        slots.initialize(repeating: 0)
        mask = capacity - 1
        byteRanks = arena.buffer(UInt32.self, capacity: 256)
        byteRanks.initialize(repeating: RankTable.none)
        var off = 0
        for (r, t) in tokens.enumerated() {
            offsets[r] = UInt32(off)
            for b in t ?? [] { bytes[off] = b; off += 1 }
        }
        offsets[count] = UInt32(off)
        for r in 0..<count {
            let start = Int(offsets[r]), end = Int(offsets[r + 1])
            if start == end { continue }   // a hole
            let ptr = UnsafePointer(bytes.baseAddress! + start)
            if end - start == 1 { byteRanks[Int(bytes[start])] = UInt32(r) }
            let h = RankTable.hash(ptr, end - start)
            if end - start > 1 && Self.rankOf(ptr, end - start, in: slots, mask, offsets, bytes, byteRanks) != RankTable.none {
                throw TokenmillError.unsupported("vocabulary lists the token \(tokens[r]!) twice")
            }
            var i = Int(truncatingIfNeeded: h) & mask
            while slots[3 * i] != 0 { i = (i + 1) & mask }
            slots[3 * i] = Self.meta(h, end - start, r)
            slots[3 * i + 1] = Self.prefix(ptr, end - start)
            slots[3 * i + 2] = Self.secondWord(ptr, end - start)
        }
        byteHoles = arena.buffer(Bool.self, capacity: 256)
        for b in 0..<256 { byteHoles[b] = byteRanks[b] == RankTable.none }
        hasByteHoles = byteHoles.contains(true)
        guard byteHoles.contains(false) else {
            throw TokenmillError.unsupported("vocabulary has no single-byte token at all: not a byte-level BPE vocabulary")
        }
        guard count <= RankTable.maxPairVocabulary else {
            throw TokenmillError.unsupported("vocabulary of \(count) tokens: at most \(RankTable.maxPairVocabulary) are supported")
        }
        bytePairs = arena.buffer(UInt32.self, capacity: 1 << 16)
        trigrams = arena.table(UInt64.self, capacity: (1 << 24) / 64)
        trigrams.initialize(repeating: 0)
        pairTokens = arena.buffer(UInt64.self, capacity: (1 << 16) / 64)
        pairTokens.initialize(repeating: 0)
        for r in 0..<count {
            let start = Int(offsets[r]), end = Int(offsets[r + 1])
            if end - start == 2 {
                let y = Int(bytes[start]) << 8 | Int(bytes[start + 1])
                pairTokens[y >> 6] |= 1 << UInt64(y & 63)
            }
            if end - start < 3 { continue }
            for k in start..<(end - 2) {
                let x = Int(bytes[k]) << 16 | Int(bytes[k + 1]) << 8 | Int(bytes[k + 2])
                trigrams[x >> 6] |= 1 << UInt64(x & 63)
            }
        }
        // Pair table: every split of every token into two tokens (tiktoken), or the merges.
        var pairs: [UInt64] = []
        if let merges {
            let ids = arena.buffer(UInt32.self, capacity: max(merges.count, 1))
            priorityToID = ids
            pairs.reserveCapacity(merges.count)
            var seen = Set<UInt64>()
            let (sl, mk, of, by, br) = (slots, mask, offsets, bytes, byteRanks)
            for (k, (a, b)) in merges.enumerated() {
                guard Int(a) < count, Int(b) < count else { throw TokenmillError.unsupported("model.merges[\(k)]: token id out of range") }
                let joined = Array(UnsafeBufferPointer(start: bytes.baseAddress! + Int(offsets[Int(a)]), count: Int(offsets[Int(a) + 1] - offsets[Int(a)])))
                    + Array(UnsafeBufferPointer(start: bytes.baseAddress! + Int(offsets[Int(b)]), count: Int(offsets[Int(b) + 1] - offsets[Int(b)])))
                let t = joined.withUnsafeBufferPointer { Self.rankOf($0.baseAddress!, $0.count, in: sl, mk, of, by, br) }
                guard t != RankTable.none else { throw TokenmillError.unsupported("model.merges[\(k)]: the merged token is not in the vocabulary") }
                // A repeated pair keeps its first (highest-priority) line, as a map insert would not.
                guard seen.insert(UInt64(a) << 32 | UInt64(b)).inserted else { ids[k] = t; continue }
                ids[k] = t
                pairs.append(UInt64(a) << 41 | UInt64(b) << 21 | UInt64(k + 1))
            }
            guard merges.count < RankTable.maxPairVocabulary else { throw TokenmillError.unsupported("model.merges: more than \(RankTable.maxPairVocabulary) merges") }
        } else {
            priorityToID = nil
            // Every two-token split of every token (the slowest part of a load: two lookups
            // per byte boundary). Tokens are independent; batches concatenate in rank order.
            let (sl, mk, of, by, br) = (slots, mask, offsets, bytes, byteRanks)
            let batches = try parallelBatches(count: count, threads: threads, batchSize: 16_384) { range -> [UInt64] in
                var out: [UInt64] = []
                out.reserveCapacity(range.count * 6)
                for r in range {
                    let start = Int(of[r]), end = Int(of[r + 1])
                    if end - start < 2 { continue }
                    let base = UnsafePointer(by.baseAddress! + start)
                    for k in 1..<(end - start) {
                        let a = Self.rankOf(base, k, in: sl, mk, of, by, br)
                        if a == RankTable.none { continue }
                        let b = Self.rankOf(base + k, end - start - k, in: sl, mk, of, by, br)
                        if b == RankTable.none { continue }
                        out.append(UInt64(a) << 41 | UInt64(b) << 21 | UInt64(r + 1))
                    }
                }
                return out
            }
            pairs = batches.flatMap { $0 }
        }
        // Keep only each token's canonical split (see `canonicalPairs`): for tiktoken
        // vocabularies a table less than half the size; Hugging Face merges are one per
        // token already. The same pass finds the tokens the merge can reach.
        let full = Self.pairTable(pairs)
        let canonical = Self.canonicalPairs(count: count, offsets: offsets, bytes: bytes, byteRanks: byteRanks,
                                            full: full, priorityToID: priorityToID, threads: threads)
        reachable = arena.buffer(UInt64.self, capacity: count / 64 + 1)
        reachable.initialize(repeating: 0)
        for b in 0..<256 where byteRanks[b] != RankTable.none { let r = Int(byteRanks[b]); reachable[r >> 6] |= 1 << UInt64(r & 63) }
        for e in canonical {
            let priority = Int(truncatingIfNeeded: e & 0x1F_FFFF) - 1
            let r = Int(priorityToID.map { $0[priority] } ?? UInt32(priority))
            reachable[r >> 6] |= 1 << UInt64(r & 63)
        }
        if merges == nil {
            TableMemory.free(full.slots)
            (pairSlots, pairShift) = Self.pairTable(canonical)
        } else {
            (pairSlots, pairShift) = full   // the merges as they are
        }
        let kept = pairSlots
        arena.own { TableMemory.free(kept) }
        pairSides = arena.buffer(UInt64.self, capacity: count / 32 + 1)
        pairSides.initialize(repeating: 0)
        let entries = pairSlots.reduce(0) { $1 != 0 ? $0 + 1 : $0 }
        var filterBits = 12
        while (1 << filterBits) < 4 * entries { filterBits += 1 }
        pairFilter = arena.buffer(UInt64.self, capacity: 1 << (filterBits - 6))
        pairFilter.initialize(repeating: 0)
        pairFilterShift = UInt64(64 - (filterBits - 6))
        for e in pairSlots where e != 0 {
            let a = Int(e >> 41), b = Int(e >> 21 & 0xF_FFFF)
            pairSides[a >> 5] |= 1 << UInt64(2 * (a & 31))
            pairSides[b >> 5] |= 2 << UInt64(2 * (b & 31))
            let x = (e >> 21) &* RankTable.pairMultiplier
            pairFilter[Int(x >> pairFilterShift)] |= 1 << (x >> 32 & 63) | 1 << (x >> 38 & 63)
        }
        charStarts = CharStarts.make(count: count, offsets: offsets, bytes: bytes, pairSlots: pairSlots, reachable: reachable,
                                     priorityToID: priorityToID, hasByteHoles: hasByteHoles, arena: arena)
        for x in 0..<(1 << 16) {
            let a = byteRanks[x >> 8], b = byteRanks[x & 0xFF]
            bytePairs[x] = a == RankTable.none || b == RankTable.none ? RankTable.none : pairRank(a, b)   // a hole pairs with nothing
        }
    }

    /// The tables of an image file (`RankTable.readImage` has checked its header and
    /// size), used where they lie: the file is mapped read-only and the tables point into
    /// the mapping, so a load neither copies ~21 MB nor zeroes fresh memory for them, and
    /// processes on one machine share one copy in the page cache (whose large folios the
    /// kernel maps with 2 MiB entries, as the tables' own huge pages were). Every section is
    /// hashed and checked in place before it is used — the 12 MiB slot table on one worker,
    /// in chunks that are checked while they are in cache, the rest on another — then the
    /// checksum compared and every table checked (`checkImage`). The cache replaces an
    /// image by renaming a new file over it and removes old ones by unlinking, never
    /// rewriting one in place, so a mapped image does not change under a reader.
    init(imageFD fd: Int32, size: Int, header: [UInt64], sectionOffsets: [Int], checksumAt: Int, threads: Int) throws {
        let bad = TokenmillError.unsupported("vocabulary image: damaged")
        count = Int(header[3]); mask = Int(header[4]); pairShift = header[5]; pairFilterShift = header[6]
        wholeLookups = header[7] & 1 != 0
        hasByteHoles = header[7] & 2 != 0
        let counts = header[9...].map { Int($0) }
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else { throw bad }
        arena.own { munmap(mapped, size) }
        #if os(Linux)
        _ = madvise(mapped, size, MADV_HUGEPAGE)
        _ = madvise(mapped, size, 22)   // MADV_POPULATE_READ: every page mapped in one call, not faulted one by one
        // Locked where the memlock limit allows (root, or a raised limit): a mapped file's
        // pages can be reclaimed from under the hot loops (page-out of cold memory, such as
        // DAMON's on cloud VMs, then refaults from disk), where the tables in anonymous
        // memory without swap could not. Where it is not allowed the mapping works as is.
        _ = mlock(mapped, size)
        #endif
        let all = Section.allCases
        let raw: [UnsafeMutableRawBufferPointer] = all.map { s in
            UnsafeMutableRawBufferPointer(start: mapped + sectionOffsets[s.rawValue], count: counts[s.rawValue] * RankTable.elementSize(s))
        }
        let hashes = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: all.count)
        hashes.initialize(repeating: 0)
        let ok = UnsafeMutableBufferPointer<Bool>.allocate(capacity: 2)
        defer { hashes.deallocate(); ok.deallocate() }
        let n = count, capacity = mask + 1
        let groups: [[Section]] = [[.slots], all.filter { $0 != .slots }]
        // One worker a group (both on the calling thread for a one-thread load).
        let readGroup = { (g: Int) in
            var fine = true
            for s in groups[g] {
                let r = UnsafeRawBufferPointer(raw[s.rawValue])
                if s == .slots {
                    fine = checkImageSlots(r, capacity: capacity, count: n, hash: &hashes[s.rawValue])
                } else {
                    hashes[s.rawValue] = XXH3.hash64(r)
                }
            }
            ok[g] = fine
        }
        if threads >= 2 {
            DispatchQueue.concurrentPerform(iterations: 2, execute: readGroup)
        } else {
            readGroup(0); readGroup(1)
        }
        var summary = header.map(\.littleEndian)
        summary.append(contentsOf: hashes.map(\.littleEndian))
        var stored: UInt64 = 0
        memcpy(&stored, mapped + checksumAt, 8)
        guard ok[0], ok[1], UInt64(littleEndian: stored) == summary.withUnsafeBytes({ XXH3.hash64($0) }) else { throw bad }
        func typed<T>(_ s: Section, _: T.Type) -> UnsafeMutableBufferPointer<T> {
            let r = raw[s.rawValue]
            return UnsafeMutableBufferPointer(start: r.baseAddress!.bindMemory(to: T.self, capacity: max(counts[s.rawValue], 1)), count: counts[s.rawValue])
        }
        bytes = typed(.bytes, UInt8.self)
        offsets = typed(.offsets, UInt32.self)
        slots = typed(.slots, UInt64.self)
        byteRanks = typed(.byteRanks, UInt32.self)
        pairSlots = typed(.pairSlots, UInt64.self)
        pairSides = typed(.pairSides, UInt64.self)
        pairFilter = typed(.pairFilter, UInt64.self)
        reachable = typed(.reachable, UInt64.self)
        trigrams = typed(.trigrams, UInt64.self)
        bytePairs = typed(.bytePairs, UInt32.self)
        pairTokens = typed(.pairTokens, UInt64.self)
        // Bools are read as bytes and must be 0 or 1 before they are Bools.
        let holes = typed(.byteHoles, UInt8.self)
        guard holes.count == 256, holes.allSatisfy({ $0 <= 1 }) else { throw bad }
        byteHoles = typed(.byteHoles, Bool.self)
        priorityToID = header[7] & 4 != 0 ? typed(.priorityToID, UInt32.self) : nil
        guard checkImage() else { throw bad }
        // The character starts as built (`CharStarts.make`), or none: all three sections or
        // none of them, each character's token a token of the vocabulary.
        let ct = typed(.charTokens, UInt32.self), st = typed(.straddleTrigrams, UInt64.self), sp = typed(.straddlePairs, UInt64.self)
        if ct.count == 0 && st.count == 0 && sp.count == 0 {
            charStarts = nil
        } else {
            guard ct.count == 1 << 16, st.count == CharStarts.filterWords, sp.count == CharStarts.filterWords,
                  ct.allSatisfy({ $0 == RankTable.none || Int($0) < n }) else { throw bad }
            charStarts = CharStarts(tokens: ct, straddleTrigrams: st, straddlePairs: sp)
        }
    }

    /// The pair entries `a << 41 | b << 21 | (priority + 1)`, keyed by `a << 20 | b`, in
    /// buckets of 8 slots (one 64-byte line each), load < 0.8: a key's bucket is the top
    /// bits of its product with `pairMultiplier` (`shift` = 64 - log2(buckets)), filled
    /// from its first slot, overflowing to the next bucket. A lookup reads one line and
    /// compares its 8 keys at once (`tm_pair_probe8`). The table with one slot a probe
    /// (linear probing) had to stay below load 0.5 — 4 MiB for o200k_base's 199,742 pairs —
    /// because at 0.76 its longer probes cost more on Chinese text than the smaller table
    /// saved (1.06x slower on non-ASCII lines); buckets hold the same pairs in 2 MiB.
    static func pairTable(_ pairs: [UInt64]) -> (slots: UnsafeMutableBufferPointer<UInt64>, shift: UInt64) {
        var bits = 1
        while 8 << bits < pairs.count + pairs.count / 4 { bits += 1 }
        let table = TableMemory.allocate(UInt64.self, capacity: 8 << bits)
        table.initialize(repeating: 0)
        let shift = UInt64(64 - bits)
        let bmask = (1 << bits) - 1
        for e in pairs {
            var b = Int(truncatingIfNeeded: ((e >> 21) &* pairMultiplier) >> shift)
            while table[8 * b + 7] != 0 { b = (b + 1) & bmask }
            var i = 8 * b
            while table[i] != 0 { i += 1 }
            table[i] = e
        }
        return (table, shift)
    }

    static let pairMultiplier: UInt64 = 0x9E37_79B9_7F4A_7C15

    @inline(__always)
    static func pairLookup(_ a: UInt32, _ b: UInt32, _ slots: UnsafeMutableBufferPointer<UInt64>, _ shift: UInt64) -> UInt32 {
        let key = UInt64(a) &<< 20 | UInt64(b)
        return pairLookup(key, key &* pairMultiplier, slots, shift)
    }

    /// Probes for `key` (`a << 20 | b`), whose product with `pairMultiplier` is `x`.
    @inline(__always)
    static func pairLookup(_ key: UInt64, _ x: UInt64, _ slots: UnsafeMutableBufferPointer<UInt64>, _ shift: UInt64) -> UInt32 {
        let bmask = slots.count &>> 3 &- 1
        var b = Int(truncatingIfNeeded: x &>> shift)
        while true {
            let r = tm_pair_probe8(slots.baseAddress! + b &<< 3, key)
            if r != 0xFFFF_FFFF { return r &- 1 }   // 0 (absent) becomes none
            b = (b &+ 1) & bmask
        }
    }

    /// The one pair per token that the merge can ever join into it (priority: the token's
    /// rank for tiktoken, its merge line for Hugging Face): the last merge when the
    /// token's own bytes are merged alone. Why no other split of t matters: when t forms
    /// anywhere, every part that ever held one of its bytes lay inside t's bytes (parts
    /// only grow), and each of those merges had the lowest priority in the whole piece, so
    /// also among the pairs inside t; pairs inside t change only through merges inside t.
    /// So the merges inside t run exactly as when t's bytes are merged alone, and t's last
    /// merge is that canonical split. (o200k_base: 446,189 two-token splits, 199,742
    /// canonical.) A token whose bytes do not merge to itself gets no pair: the merge never
    /// produces it (none in the built-in vocabularies; a Hugging Face special token listed
    /// in the vocabulary is one).
    static func canonicalPairs(count: Int, offsets: UnsafeMutableBufferPointer<UInt32>, bytes: UnsafeMutableBufferPointer<UInt8>,
                               byteRanks: UnsafeMutableBufferPointer<UInt32>,
                               full: (slots: UnsafeMutableBufferPointer<UInt64>, shift: UInt64),
                               priorityToID: UnsafeMutableBufferPointer<UInt32>?, threads: Int) -> [UInt64] {
        var longest = 0
        for t in 0..<count { longest = max(longest, Int(offsets[t &+ 1] &- offsets[t])) }
        // Tokens are independent: batches run on the workers, results concatenate in order.
        let batches = try? parallelBatches(count: count, threads: threads, batchSize: 16_384) { range -> [UInt64] in
            var out: [UInt64] = []
            out.reserveCapacity(range.count)
            let ids = UnsafeMutablePointer<UInt32>.allocate(capacity: longest &+ 1)
            let ranks = UnsafeMutablePointer<UInt32>.allocate(capacity: longest &+ 1)
            defer { ids.deallocate(); ranks.deallocate() }
            for t in range {
                let start = Int(offsets[t]), end = Int(offsets[t &+ 1])
                if end &- start < 2 { continue }
                var len = end &- start
                for k in 0..<len { ids[k] = byteRanks[Int(bytes[start &+ k])] }
                for k in 0..<(len &- 1) { ranks[k] = pairLookup(ids[k], ids[k &+ 1], full.slots, full.shift) }
                var last: UInt64 = 0
                // tiktoken's loop: merge the lowest-priority adjacent pair, leftmost on ties.
                while len > 1 {
                    var minRank = RankTable.none, i = 0
                    for k in 0..<(len &- 1) where ranks[k] < minRank { minRank = ranks[k]; i = k }
                    if minRank == RankTable.none { break }
                    last = UInt64(ids[i]) &<< 41 | UInt64(ids[i &+ 1]) &<< 21 | UInt64(minRank &+ 1)
                    ids[i] = priorityToID.map { $0[Int(minRank)] } ?? minRank
                    var k = i &+ 1
                    while k &+ 1 < len { ids[k] = ids[k &+ 1]; ranks[k] = ranks[k &+ 1]; k &+= 1 }
                    len &-= 1
                    if i &+ 1 < len { ranks[i] = pairLookup(ids[i], ids[i &+ 1], full.slots, full.shift) }
                    if i > 0 { ranks[i &- 1] = pairLookup(ids[i &- 1], ids[i], full.slots, full.shift) }
                }
                if len == 1 && ids[0] == UInt32(t) { out.append(last) }
            }
            return out
        }
        return (batches ?? []).flatMap { $0 }
    }


    /// The token a merge of the given priority produces.
    @inline(__always)
    func merged(_ priority: UInt32) -> UInt32 {
        guard let ids = priorityToID else { return priority }
        return ids[Int(priority)]
    }

    /// 1 when no token can contain both `p[k-1]` and `p[k]` (0 < k < n), else 0: then no
    /// part of the merge ever spans position k, and the two sides can be merged
    /// independently with the same result. A token holding both bytes is either exactly
    /// those 2 bytes, or 3+ bytes containing `p[k-2..<k+1]` or `p[k-1..<k+2]`. The only
    /// branches are on k; none is on the bitmap words, so a loop over a piece keeps all
    /// their loads in flight at once.
    @inline(__always)
    func cutAt(_ p: UnsafePointer<UInt8>, _ k: Int, _ n: Int) -> Int {
        let y = Int(p[k &- 1]) &<< 8 | Int(p[k])
        var blocked = pairTokens[y &>> 6] &>> UInt64(y & 63)
        if k >= 2 {
            let before = Int(p[k &- 2]) &<< 16 | y
            blocked |= trigrams[before &>> 6] &>> UInt64(before & 63)
        }
        if k &+ 1 < n {
            let after = y &<< 8 | Int(p[k &+ 1])
            blocked |= trigrams[after &>> 6] &>> UInt64(after & 63)
        }
        return Int(truncatingIfNeeded: ~blocked & 1)
    }

    /// `pairRank` of the single-byte tokens of bytes `a` and `b`.
    @inline(__always)
    func bytePair(_ a: UInt8, _ b: UInt8) -> UInt32 { bytePairs[Int(a) &<< 8 | Int(b)] }

    /// Priority of merging tokens `a` then `b` (tiktoken: the merged token's rank), or none.
    @inline(__always)
    public func pairRank(_ a: UInt32, _ b: UInt32) -> UInt32 {
        let left = pairSides[Int(a &>> 5)] &>> UInt64(2 &* (a & 31)), right = pairSides[Int(b &>> 5)] &>> UInt64(2 &* (b & 31) &+ 1)
        if left & right & 1 == 0 { return RankTable.none }
        let key = UInt64(a) &<< 20 | UInt64(b)
        let x = key &* RankTable.pairMultiplier
        // The table's line is fetched alongside the filter word rather than after it: for
        // the lookups that find a pair, the two misses overlap instead of adding up.
        tm_prefetch(UnsafeRawPointer(pairSlots.baseAddress! + Int(truncatingIfNeeded: x &>> pairShift) &<< 3))
        let w = pairFilter[Int(truncatingIfNeeded: x &>> pairFilterShift)]
        if (w &>> (x &>> 32 & 63)) & (w &>> (x &>> 38 & 63)) & 1 == 0 { return RankTable.none }
        return RankTable.pairLookup(key, x, pairSlots, pairShift)
    }

    /// Starts the fetch of the lines `pairRank(a, b)` reads after the sides bitmap (its
    /// table line and its filter word), without waiting for them.
    @inline(__always)
    func prefetchPair(_ a: UInt32, _ b: UInt32) {
        let x = (UInt64(a) &<< 20 | UInt64(b)) &* RankTable.pairMultiplier
        tm_prefetch(UnsafeRawPointer(pairSlots.baseAddress! + Int(truncatingIfNeeded: x &>> pairShift) &<< 3))
        tm_prefetch(UnsafeRawPointer(pairFilter.baseAddress! + Int(truncatingIfNeeded: x &>> pairFilterShift)))
    }

    /// `rank` before `self` is fully initialised (used while building the pair table).
    static func rankOf(_ p: UnsafePointer<UInt8>, _ n: Int, in slots: UnsafeMutableBufferPointer<UInt64>, _ mask: Int,
                       _ offsets: UnsafeMutableBufferPointer<UInt32>, _ bytes: UnsafeMutableBufferPointer<UInt8>,
                       _ byteRanks: UnsafeMutableBufferPointer<UInt32>) -> UInt32 {
        if n == 1 { return byteRanks[Int(p[0])] }
        return find(p, n, hash(p, n), slots, mask, offsets, bytes)
    }

    /// The first (up to) 8 bytes of a key as a zero-padded little-endian word, read without
    /// touching bytes past the key.
    @inline(__always)
    static func prefix(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt64 {
        let raw = UnsafeRawPointer(p)
        if n >= 8 { return raw.loadUnaligned(as: UInt64.self) }
        if n >= 4 {
            let a = UInt64(raw.loadUnaligned(as: UInt32.self))
            let b = UInt64(raw.loadUnaligned(fromByteOffset: n &- 4, as: UInt32.self))
            return a | b &<< UInt64(8 &* (n &- 4))
        }
        var v: UInt64 = 0
        for k in 0..<n { v |= UInt64(p[k]) &<< UInt64(8 &* k) }
        return v
    }

    /// Slot meta word: 24 bits of hash tag, 8 bits of key length (capped), rank + 1.
    @inline(__always)
    static func meta(_ h: UInt64, _ n: Int, _ rank: Int) -> UInt64 {
        ((h &>> 40) &<< 8 | UInt64(min(n, 255))) &<< 32 | UInt64(rank &+ 1)
    }

    /// Bytes 8..<16 of a key as a zero-padded word (0 for keys up to 8 bytes).
    @inline(__always)
    static func secondWord(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt64 {
        n <= 8 ? 0 : prefix(p + 8, min(n, 16) &- 8)
    }

    /// Probes the table. A slot is three words, [meta, bytes 0..<8, bytes 8..<16]: keys up
    /// to 16 bytes are decided by the slot alone; longer keys compare the rest in `bytes`.
    @inline(__always)
    static func find(_ p: UnsafePointer<UInt8>, _ n: Int, _ h: UInt64, _ slots: UnsafeMutableBufferPointer<UInt64>, _ mask: Int,
                     _ offsets: UnsafeMutableBufferPointer<UInt32>, _ bytes: UnsafeMutableBufferPointer<UInt8>) -> UInt32 {
        find(p, n, h, prefix(p, n), secondWord(p, n), slots, mask, offsets, bytes)
    }

    /// `find` with the key's first two words (`prefix`, `secondWord`) already loaded.
    @inline(__always)
    static func find(_ p: UnsafePointer<UInt8>, _ n: Int, _ h: UInt64, _ key: UInt64, _ key2: UInt64,
                     _ slots: UnsafeMutableBufferPointer<UInt64>, _ mask: Int,
                     _ offsets: UnsafeMutableBufferPointer<UInt32>, _ bytes: UnsafeMutableBufferPointer<UInt8>) -> UInt32 {
        if n <= 16 { return find16(n, h, key, key2, slots.baseAddress!, mask) }
        var i = Int(truncatingIfNeeded: h) & mask
        let want = meta(h, n, 0) &>> 32
        while true {
            let m = slots[3 &* i]
            if m == 0 { return RankTable.none }
            let differ = (m &>> 32 ^ want) | (slots[3 &* i &+ 1] ^ key) | (slots[3 &* i &+ 2] ^ key2)
            if differ == 0 {
                let r = Int(truncatingIfNeeded: m & 0xFFFF_FFFF) &- 1
                let start = Int(offsets[r])
                if Int(offsets[r &+ 1]) &- start == n && memcmpBytes(UnsafeRawPointer(bytes.baseAddress! + start + 16), UnsafeRawPointer(p + 16), n - 16) {
                    return UInt32(r)
                }
            }
            i = (i &+ 1) & mask
        }
    }

    /// `find` of a key of up to 16 bytes: the slot alone decides (its two key words and the
    /// length in its meta word), with no read of `offsets` or `bytes`. Takes the slots' base
    /// address: the piece loop holds it in a local and calls this for keys of 2...16 bytes,
    /// so it carries none of the longer keys' comparison, which the compiler otherwise set
    /// up on every piece.
    @inline(__always)
    static func find16(_ n: Int, _ h: UInt64, _ key: UInt64, _ key2: UInt64,
                       _ sl: UnsafeMutablePointer<UInt64>, _ mask: Int) -> UInt32 {
        var i = Int(truncatingIfNeeded: h) & mask
        let want = (h &>> 40) &<< 8 | UInt64(truncatingIfNeeded: n)   // `meta(h, n, 0) >> 32`
        while true {
            let m = sl[3 &* i]
            if m == 0 { return RankTable.none }
            // All three words compared at once, one branch: `&&` branched on each in turn,
            // and whether a slot taken by another key shares its first word is a coin toss
            // (7.9% of `encode`'s mispredictions on o200k_base were this line's).
            let differ = (m &>> 32 ^ want) | (sl[3 &* i &+ 1] ^ key) | (sl[3 &* i &+ 2] ^ key2)
            if differ == 0 { return UInt32(truncatingIfNeeded: m) &- 1 }
            i = (i &+ 1) & mask
        }
    }

    /// Hash of `p[0..<n]`: keys up to 16 bytes from their two zero-padded words (`mix`),
    /// longer ones by xxh3. Reads no byte outside the key.
    @inline(__always)
    static func hash(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt64 {
        if n > 16 { return XXH3.hash64(UnsafeRawBufferPointer(start: UnsafeRawPointer(p), count: n)) }
        return mix(prefix(p, n), secondWord(p, n), n)
    }

    /// The hash of a key of up to 16 bytes from its words and length: one multiply a word,
    /// and the bytes swapped so that the products' top bits — the ones every input bit
    /// reaches — are the low bits the table indexes with (`h & mask`). Murmur3's finalizer
    /// (three dependent multiplies) took 13 instructions a piece on the way to the slot's
    /// prefetch; over o200k_base's tokens both give 1.30 probes a hit on average.
    @inline(__always)
    static func mix(_ key: UInt64, _ key2: UInt64, _ n: Int) -> UInt64 {
        (key &* 0x9E37_79B9_7F4A_7C15 ^ (key2 ^ UInt64(truncatingIfNeeded: n)) &* 0xC2B2_AE3D_27D4_EB4F).byteSwapped
    }

    /// `prefix` and `secondWord` of a key of 1...16 bytes with 16 bytes readable at `p`:
    /// two loads and two masks, no branch on the length. (The branches of `prefix`,
    /// `secondWord` and the old hash on the piece's length mispredicted about once a
    /// piece: lengths of words are a coin toss.)
    @inline(__always)
    static func words16(_ p: UnsafePointer<UInt8>, _ n: Int) -> (UInt64, UInt64) {
        let raw = UnsafeRawPointer(p)
        let a = raw.loadUnaligned(as: UInt64.self), b = raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        let bits = n &<< 3
        let low = UInt64.max &>> UInt64(truncatingIfNeeded: 64 &- min(bits, 64))
        let high = (UInt64.max &>> UInt64(truncatingIfNeeded: 128 &- max(bits, 65))) & (0 &- UInt64(bits > 64 ? 1 : 0))
        return (a & low, b & high)
    }

    @inline(__always)
    func lookup(_ p: UnsafePointer<UInt8>, _ n: Int, _ h: UInt64) -> UInt32 {
        RankTable.find(p, n, h, slots, mask, offsets, bytes)
    }

    /// `lookup` with the key's words already loaded (`words16`).
    @inline(__always)
    func lookup(_ p: UnsafePointer<UInt8>, _ n: Int, _ h: UInt64, _ key: UInt64, _ key2: UInt64) -> UInt32 {
        RankTable.find(p, n, h, key, key2, slots, mask, offsets, bytes)
    }

    /// The hash the whole-piece lookup of `p[0..<n]` probes with, or 0 when there is no
    /// such lookup (single bytes; Hugging Face BPE without `ignore_merges`).
    @inline(__always)
    func wholeHash(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt64 {
        wholeLookups && n > 1 ? RankTable.hash(p, n) : 0
    }

    /// `wholeHash` and the key's first two words (`prefix`, `secondWord`), which the probe
    /// compares with the slot's, computed once; all 0 when there is no whole-piece lookup.
    /// With `readable16` (16 bytes can be read at `p`) a key of up to 16 bytes takes two
    /// loads and two masks (`words16`) and no branch on its length.
    @inline(__always)
    func wholeKey(_ p: UnsafePointer<UInt8>, _ n: Int, readable16: Bool) -> (hash: UInt64, key: UInt64, key2: UInt64) {
        guard wholeLookups && n > 1 else { return (0, 0, 0) }
        if n > 16 { return (RankTable.hash(p, n), RankTable.prefix(p, n), RankTable.secondWord(p, n)) }
        let (k1, k2) = readable16 ? RankTable.words16(p, n) : (RankTable.prefix(p, n), RankTable.secondWord(p, n))
        return (RankTable.mix(k1, k2, n), k1, k2)
    }

    /// Starts fetching the first slot the whole-piece lookup with hash `h` reads (both ends:
    /// a 24-byte slot may straddle two cache lines).
    @inline(__always)
    func prefetch(_ h: UInt64) { RankTable.prefetch(h, slots.baseAddress!, mask) }

    @inline(__always)
    static func prefetch(_ h: UInt64, _ slots: UnsafeMutablePointer<UInt64>, _ mask: Int) {
        let slot = slots + 3 &* (Int(truncatingIfNeeded: h) & mask)
        tm_prefetch(UnsafeRawPointer(slot))
        tm_prefetch(UnsafeRawPointer(slot + 2))
    }

    /// The rank of `p[0..<n]`, or `RankTable.none`.
    @inline(__always)
    public func rank(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt32 {
        if n == 1 { return byteRanks[Int(p[0])] }
        return lookup(p, n, RankTable.hash(p, n))
    }

    /// True when token `r`'s own bytes merge to `r`.
    @inline(__always)
    func isReachable(_ r: UInt32) -> Bool { reachable[Int(r &>> 6)] & (1 &<< UInt64(r & 63)) != 0 }

    /// True when `rank` names a token (not a hole).
    @inline(__always)
    public func isToken(_ rank: Int) -> Bool { rank < count && offsets[rank] != offsets[rank &+ 1] }

    /// The bytes of a rank (valid while this table lives).
    @inline(__always)
    public func tokenBytes(_ rank: Int) -> UnsafeBufferPointer<UInt8> {
        let s = Int(offsets[rank]), e = Int(offsets[rank + 1])
        return UnsafeBufferPointer(start: bytes.baseAddress! + s, count: e - s)
    }
}

@inline(__always)
func memcmpBytes(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
    var i = 0
    while i + 8 <= n {
        if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) { return false }
        i += 8
    }
    while i < n {
        if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
        i += 1
    }
    return true
}

/// Memory a `RankTable` owns, freed together when the arena is released.
final class TableArena {
    private var frees: [() -> Void] = []

    /// Table memory (`TableMemory`: huge-page aligned when large).
    func table<T>(_ type: T.Type, capacity: Int) -> UnsafeMutableBufferPointer<T> {
        let b = TableMemory.allocate(type, capacity: capacity)
        frees.append { TableMemory.free(b) }
        return b
    }

    func buffer<T>(_ type: T.Type, capacity: Int) -> UnsafeMutableBufferPointer<T> {
        let b = UnsafeMutableBufferPointer<T>.allocate(capacity: capacity)
        frees.append { b.deallocate() }
        return b
    }

    /// Memory allocated elsewhere, freed by `free`.
    func own(_ free: @escaping () -> Void) { frees.append(free) }

    deinit { for f in frees { f() } }
}
