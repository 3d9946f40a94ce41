/// Merging a part from its characters instead of its bytes (`BytePairMerge.charPart`).
///
/// A run of Chinese is 3 bytes a character, and the byte-level merge spends two of every
/// three merges inside characters before it joins any two of them. Starting instead from
/// each character's own token is exact when two things hold (docs/BPE.md, "Characters
/// first"):
/// - the vocabulary's merges go up in rank: every pair (a, b) of the pair table merges
///   into a token ranked above both a and b (true of tiktoken's vocabularies, checked at
///   load). Then the merge loop's ranks never go down from one merge to the next, a merge
///   that joins character C to a neighbour ranks above C, and so it comes after every
///   merge inside C, which all rank at most C;
/// - no *straddling* token occurs in the part: a token that is not whole characters and
///   not a piece of one character (such as o200k_base's `\x97\xe4\xba\xac`, the last byte
///   of 北 and all of 京). Only such a token could join part of one character to another
///   before the first one is whole.
/// A character whose bytes merge to a single token (reachable) starts as that token;
/// any other byte starts as itself, as before.
struct CharStarts {
    /// The token of each 2- or 3-byte character, by code point (U+0080-U+FFFF), or
    /// `RankTable.none` (256 KiB).
    let tokens: UnsafeMutableBufferPointer<UInt32>
    /// A blocked Bloom filter (64 Ki bits, two bits of one word a key: `trigramKey`) of the
    /// 3-byte windows of straddling tokens that can meet a character boundary, and a
    /// bitmap of the straddling tokens of 2 bytes: a part none of whose boundary windows is
    /// in either holds no straddling token (a false positive only sends the part to the
    /// byte-level merge). A window checked at a boundary has a character's first byte at
    /// its second or third byte, so a token's window with continuation bytes in both (a
    /// whole 3-byte character, such as 京 in `\x97\xe4\xba\xac`) can never match one and is
    /// left out: 854 of o200k_base's 1,089 windows. With one bit a key and every window
    /// the filter was 1.6% full, and its false positives sent a fifth of the non-ASCII
    /// pieces of the benchmark's non-ASCII lines to the byte-level merge (2,447 of 12,048
    /// pieces, against 476 that hold a straddling token's window); now 100.
    let straddleTrigrams: UnsafeMutableBufferPointer<UInt64>
    let straddlePairs: UnsafeMutableBufferPointer<UInt64>
    static let filterWords = (1 &<< 16) / 64

    /// nil when the vocabulary does not allow it: a merge whose priority is not above both
    /// of its parts' own (the priority of the merge that made each part: tiktoken's rank;
    /// a Hugging Face merge's line, -1 for a token no merge makes), a token that two merges
    /// make (its own priority would not be one number), or bytes with no token.
    static func make(count: Int, offsets: UnsafeMutableBufferPointer<UInt32>, bytes: UnsafeMutableBufferPointer<UInt8>,
                     pairSlots: UnsafeMutableBufferPointer<UInt64>, reachable: UnsafeMutableBufferPointer<UInt64>,
                     priorityToID: UnsafeMutableBufferPointer<UInt32>?, hasByteHoles: Bool, arena: TableArena) -> CharStarts? {
        guard !hasByteHoles else { return nil }
        var made: [Int64]? = nil
        if let ids = priorityToID {
            var m = [Int64](repeating: -1, count: count)
            for k in 0..<ids.count {
                let t = Int(ids[k])
                guard t < count, m[t] < 0 else { return nil }
                m[t] = Int64(k)
            }
            made = m
        }
        for e in pairSlots where e != 0 {
            let a = Int(e &>> 41), b = Int(e &>> 21 & 0xF_FFFF), priority = Int64(e & 0x1F_FFFF) &- 1
            let pa = made.map { $0[a] } ?? Int64(a), pb = made.map { $0[b] } ?? Int64(b)
            if priority <= pa || priority <= pb { return nil }
        }
        let tokens = arena.buffer(UInt32.self, capacity: 1 &<< 16)
        tokens.initialize(repeating: RankTable.none)
        let trigrams = arena.buffer(UInt64.self, capacity: filterWords)
        trigrams.initialize(repeating: 0)
        let pairs = arena.buffer(UInt64.self, capacity: filterWords)
        pairs.initialize(repeating: 0)
        for r in 0..<count {
            let start = Int(offsets[r]), n = Int(offsets[r &+ 1]) &- start
            if n < 2 { continue }
            let p = UnsafePointer(bytes.baseAddress! + start)
            switch shape(p, n) {
            case .oneCharacter(let cp):
                if cp < 1 &<< 16 && reachable[r &>> 6] & (1 &<< UInt64(r & 63)) != 0 { tokens[Int(cp)] = UInt32(r) }
            case .characters, .fragment:
                break
            case .straddling:
                if n == 2 { let y = Int(p[0]) &<< 8 | Int(p[1]); pairs[y &>> 6] |= 1 &<< UInt64(y & 63) }
                for k in 0..<max(0, n &- 2) where p[k &+ 1] & 0xC0 != 0x80 || p[k &+ 2] & 0xC0 != 0x80 {
                    let (w, a, b) = trigramKey(p, k)
                    trigrams[w] |= 1 &<< a | 1 &<< b
                }
            }
        }
        return CharStarts(tokens: tokens, straddleTrigrams: trigrams, straddlePairs: pairs)
    }

    /// The filter word and two bits of the window `p[k..<k+3]`.
    @inline(__always)
    static func trigramKey(_ p: UnsafePointer<UInt8>, _ k: Int) -> (word: Int, UInt64, UInt64) {
        let x = (UInt64(p[k]) &<< 16 | UInt64(p[k &+ 1]) &<< 8 | UInt64(p[k &+ 2])) &* 0x9E37_79B9_7F4A_7C15
        return (Int(truncatingIfNeeded: x &>> 54), x &>> 20 & 63, x &>> 26 & 63)
    }

    /// 1 in bit 0 when the window `p[k..<k+3]` may be a straddling token's.
    @inline(__always)
    static func straddles(_ filter: UnsafeMutableBufferPointer<UInt64>, _ p: UnsafePointer<UInt8>, _ k: Int) -> UInt64 {
        let (w, a, b) = trigramKey(p, k)
        let v = filter[w]
        return v &>> a & v &>> b
    }

    enum Shape: Equatable { case oneCharacter(UInt32), characters, fragment, straddling }

    /// What a token's bytes are: one whole character, several, a piece of one character
    /// (a lead byte short of its continuation bytes, or up to three continuation bytes), or
    /// straddling (anything else: invalid UTF-8 beyond one character's piece).
    static func shape(_ p: UnsafePointer<UInt8>, _ n: Int) -> Shape {
        var i = 0, chars = 0
        var first: UInt32 = 0
        while i < n {
            guard let (cp, len) = character(p, i, n) else { break }
            if chars == 0 { first = cp }
            chars &+= 1
            i &+= len
        }
        if i == n { return chars == 1 ? .oneCharacter(first) : .characters }
        // Not whole characters: a piece of one character?
        if (0..<n).allSatisfy({ p[$0] & 0xC0 == 0x80 }) && n <= 3 { return .fragment }
        let lead = p[0]
        let need = lead >= 0xC2 && lead <= 0xDF ? 2 : lead >= 0xE0 && lead <= 0xEF ? 3 : lead >= 0xF0 && lead <= 0xF4 ? 4 : 0
        if need > n && (1..<n).allSatisfy({ p[$0] & 0xC0 == 0x80 }) { return .fragment }
        return .straddling
    }

    /// The valid UTF-8 character at `p[i]` (shortest form, no surrogates) and its length.
    @inline(__always)
    static func character(_ p: UnsafePointer<UInt8>, _ i: Int, _ n: Int) -> (UInt32, Int)? {
        let b0 = UInt32(p[i])
        if b0 < 0x80 { return (b0, 1) }
        if b0 >= 0xC2 && b0 <= 0xDF {
            guard i &+ 1 < n, p[i &+ 1] & 0xC0 == 0x80 else { return nil }
            return ((b0 & 0x1F) &<< 6 | UInt32(p[i &+ 1] & 0x3F), 2)
        }
        if b0 >= 0xE0 && b0 <= 0xEF {
            guard i &+ 2 < n, p[i &+ 1] & 0xC0 == 0x80, p[i &+ 2] & 0xC0 == 0x80 else { return nil }
            let cp = (b0 & 0x0F) &<< 12 | UInt32(p[i &+ 1] & 0x3F) &<< 6 | UInt32(p[i &+ 2] & 0x3F)
            guard cp >= 0x800, cp < 0xD800 || cp > 0xDFFF else { return nil }
            return (cp, 3)
        }
        if b0 >= 0xF0 && b0 <= 0xF4 {
            guard i &+ 3 < n, p[i &+ 1] & 0xC0 == 0x80, p[i &+ 2] & 0xC0 == 0x80, p[i &+ 3] & 0xC0 == 0x80 else { return nil }
            let cp = (b0 & 0x07) &<< 18 | UInt32(p[i &+ 1] & 0x3F) &<< 12 | UInt32(p[i &+ 2] & 0x3F) &<< 6 | UInt32(p[i &+ 3] & 0x3F)
            guard cp >= 0x10000, cp <= 0x10FFFF else { return nil }
            return (cp, 4)
        }
        return nil
    }
}
