import CIntrinsics
import TokenmillCore

/// Shingles of a text, as near-dedup and decontamination compare them (docs/DEDUP.md):
/// case-folded scalars, White_Space as separators; `n` consecutive words joined by one
/// space for spaced scripts, `n` consecutive non-space scalars for text that is mostly
/// CJK, Thai, Lao, Khmer or Myanmar (a record is shingled by its script); a text shorter
/// than one shingle is one shingle of all it has. Each shingle is hashed with xxh3-64.
///
/// A `Shingler` owns its scratch buffers (one per thread): the folded text is rebuilt
/// once into `folded`, so every shingle is a contiguous byte range of it and hashing
/// needs no allocation. Pure-ASCII text (checked 16 bytes at a time) skips the script
/// count and the UTF-8 decoding.
public struct Shingler {
    /// Folded UTF-8 (the first `foldedCount` bytes): words separated by one space (word
    /// mode) or units back to back. Sized for the longest text seen; reused.
    public private(set) var folded: [UInt8] = []
    public private(set) var foldedCount = 0
    /// Start offset in `folded` of each word / unit, then an end marker (`unitCount + 1`
    /// entries are meaningful).
    public private(set) var starts: [Int32] = []
    public private(set) var unitCount = 0
    public private(set) var characterMode = false
    public let ngram: Int

    public init(ngram: Int) {
        precondition(ngram >= 1)
        self.ngram = ngram
    }

    /// Scalars of unspaced scripts: Hiragana, Katakana, CJK ideographs, Thai, Lao,
    /// Myanmar, Khmer, halfwidth Katakana.
    @inline(__always)
    static func isUnspaced(_ c: UInt32) -> Bool {
        switch c {
        case 0x0E00...0x0EFF, 0x1000...0x109F, 0x1780...0x17FF, 0x3040...0x30FF, 0x31F0...0x31FF,
             0x3400...0x4DBF, 0x4E00...0x9FFF, 0xF900...0xFAFF, 0xFF66...0xFF9F, 0x20000...0x3134F:
            return true
        default: return false
        }
    }

    @inline(__always)
    static func isASCIISpace(_ b: UInt8) -> Bool { b == 0x20 || b &- 0x09 < 5 }

    /// ASCII byte -> its lowercase, whitespace -> 0xFF (never an ASCII byte).
    static let asciiFold: UnsafePointer<UInt8> = {
        let t = UnsafeMutablePointer<UInt8>.allocate(capacity: 256)
        for b in 0..<256 {
            let c = UInt8(b)
            t[b] = isASCIISpace(c) ? 0xFF : (c &- 0x41 < 26 ? c | 0x20 : c)
        }
        return UnsafePointer(t)
    }()

    /// Whether more than half of the non-space scalars are in unspaced scripts.
    static func isMostlyUnspaced(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        var nonSpace = 0, unspaced = 0
        var i = 0
        let n = text.count
        var scalarUntil = 0
        while i < n {
            // Whole blocks of 32 ASCII bytes in C (AVX2): their non-space count from one
            // comparison (texts that take this path hold some non-ASCII, most of them
            // little). Then the block with a non-ASCII byte goes scalar by scalar.
            if i >= scalarUntil, i + 32 <= n, let base = text.baseAddress {
                var blockNonSpace = 0
                i += tm_ascii_blocks_nonspace(base + i, n - i, &blockNonSpace)
                nonSpace += blockNonSpace
                scalarUntil = i + 32
                if i >= n { break }
            }
            let b = text[i]
            if b < 0x80 {
                if !isASCIISpace(b) { nonSpace += 1 }
                i += 1
                continue
            }
            // U+5000...U+9FFF: CJK ideographs, unspaced, without decoding.
            if b &- 0xE5 < 5 {
                nonSpace += 1; unspaced += 1
                i += 3
                continue
            }
            let (c, len) = decode(text, i)
            i += len
            if UnicodeData.isSpace(c) { continue }
            nonSpace += 1
            if isUnspaced(c) { unspaced += 1 }
        }
        return 2 * unspaced > nonSpace
    }

    /// Rebuilds the folded text and unit starts for `text` (valid UTF-8); returns the
    /// number of shingles. Hot loop: writes through raw pointers into reused buffers.
    @discardableResult
    public mutating func prepare(_ text: UnsafeBufferPointer<UInt8>) -> Int {
        let n = text.count
        let ascii = UTF8Validation.isASCII(text)
        // Folding can grow a scalar by one byte (U+023A, 2 bytes -> U+2C65, 3 bytes), and
        // word mode adds one space a word: 2n + 8 bytes always suffice, n + 8 for ASCII
        // (a separating space replaces at least one whitespace byte; the C kernel's stores
        // take 16 bytes past the end for ASCII). Words are at most
        // n/2 + 1 (a word and its separator take two bytes); units at most n.
        let needFolded = ascii ? n + 24 : 2 * n + 24, needStarts = ascii ? n / 2 + 2 : n + 2
        if folded.count < needFolded { folded = [UInt8](repeating: 0, count: needFolded) }
        if starts.count < needStarts { starts = [Int32](repeating: 0, count: needStarts) }
        let charMode = ascii ? false : Shingler.isMostlyUnspaced(text)
        characterMode = charMode
        var fc = 0, sc = 0
        folded.withUnsafeMutableBufferPointer { fb in
            starts.withUnsafeMutableBufferPointer { sb in
                let f = fb.baseAddress!, st = sb.baseAddress!
                var i = 0
                var inWord = false
                if ascii {
                    // One table load a byte: the folded byte, or 0xFF for whitespace. No
                    // branch per byte (a word's start and end mispredicted about twice a
                    // word): the separating space, the word's start and the byte are
                    // stored always and kept only when they count.
                    let table = Shingler.asciiFold
                    var word = 0, started = 0, fo = 0, so = 0
                    // Whole blocks of 16 bytes in C (`tm_shingle_words_ascii`: the same
                    // state, bytes and starts), then this loop for the last few bytes.
                    if n >= 16, let base = text.baseAddress {
                        var cWord: UInt32 = 0, cStarted: UInt32 = 0
                        i = tm_shingle_words_ascii(base, n, f, &fo, st, &so, &cWord, &cStarted, ASCIIKernels.shinglerSpace, ASCIIKernels.pack)
                        word = Int(cWord); started = Int(cStarted)
                    }
                    while i < n {
                        let v = table[Int(text[i])]
                        i &+= 1
                        let letter = v == 0xFF ? 0 : 1
                        let begins = letter & (word ^ 1)
                        f[fo] = 0x20
                        fo &+= begins & started
                        st[so] = Int32(truncatingIfNeeded: fo)
                        so &+= begins
                        f[fo] = v
                        fo &+= letter
                        started |= letter
                        word = letter
                    }
                    fc = fo; sc = so
                    st[sc] = Int32(fc + 1)
                    return
                }
                // Word mode: ASCII runs of mixed texts (English with a curly quote or a
                // dash) through the C kernel as whole blocks, as all-ASCII texts are.
                var kernelFrom = 0
                while i < n {
                    let b = text[i]
                    var c: UInt32
                    var cjk = false
                    if b < 0x80 {
                        if !charMode && i >= kernelFrom && n - i >= 16, let base = text.baseAddress {
                            var cWord: UInt32 = inWord ? 1 : 0, cStarted: UInt32 = sc > 0 ? 1 : 0
                            var fo = fc, so = sc
                            let used = tm_shingle_words_ascii(base + i, n - i, f, &fo, st, &so, &cWord, &cStarted,
                                                              ASCIIKernels.shinglerSpace, ASCIIKernels.pack)
                            fc = fo; sc = so
                            if used > 0 { i += used; inWord = cWord != 0; continue }
                            // The block holds a non-ASCII byte: scalar by scalar past it.
                            kernelFrom = i + 16
                        }
                        i += 1
                        if Shingler.isASCIISpace(b) { inWord = false; continue }
                        c = UInt32(b &- 0x41 < 26 ? b | 0x20 : b)
                    } else if b &- 0xE4 < 6 {
                        // U+4000...U+9FFF (CJK ideographs, Yijing hexagrams): never a
                        // space, each its own fold (`testCJKScalarsKeyAsThemselves`), so
                        // its three bytes are copied below without decoding or the fold table.
                        cjk = true
                        c = 0
                    } else {
                        let (d, len) = Shingler.decode(text, i)
                        i += len
                        if UnicodeData.isSpace(d) { inWord = false; continue }
                        c = UnicodeData.fold(d)
                    }
                    if charMode {
                        st[sc] = Int32(fc); sc += 1
                    } else if !inWord {
                        if sc > 0 { f[fc] = 0x20; fc += 1 }
                        st[sc] = Int32(fc); sc += 1
                        inWord = true
                    }
                    if cjk {
                        f[fc] = b; f[fc + 1] = text[i + 1]; f[fc + 2] = text[i + 2]
                        fc += 3; i += 3
                    } else {
                        fc += Shingler.write(c, to: f + fc)
                    }
                }
                // End marker: a word's end is the next start less the separating space.
                st[sc] = Int32(charMode ? fc : fc + 1)
            }
        }
        foldedCount = fc
        unitCount = sc
        return shingleCount
    }

    public var shingleCount: Int { unitCount == 0 ? 0 : max(1, unitCount - ngram + 1) }

    /// Byte range in `folded` of shingle k.
    @inline(__always)
    public func shingleRange(_ k: Int) -> Range<Int> {
        let last = min(k + ngram, unitCount)
        let end = characterMode ? Int(starts[last]) : Int(starts[last]) - 1
        return Int(starts[k])..<end
    }

    /// The xxh3-64 of every shingle, appended to `out`.
    public mutating func hashes(_ text: UnsafeBufferPointer<UInt8>, into out: inout [UInt64]) {
        let count = prepare(text)
        if count == 0 { return }
        out.reserveCapacity(out.count + count)
        let units = unitCount, n = ngram, charMode = characterMode
        folded.withUnsafeBytes { f in
            starts.withUnsafeBufferPointer { st in
                for k in 0..<count {
                    let last = min(k + n, units)
                    let end = charMode ? Int(st[last]) : Int(st[last]) - 1
                    let start = Int(st[k])
                    out.append(XXH3.hash64(UnsafeRawBufferPointer(start: f.baseAddress! + start, count: end - start)))
                }
            }
        }
    }

    public func shingleText(_ k: Int) -> String {
        String(decoding: folded[shingleRange(k)], as: UTF8.self)
    }

    @inline(__always)
    static func decode(_ t: UnsafeBufferPointer<UInt8>, _ i: Int) -> (UInt32, Int) {
        let b0 = UInt32(t[i])
        if b0 < 0xE0 { return ((b0 & 0x1F) << 6 | UInt32(t[i + 1] & 0x3F), 2) }
        if b0 < 0xF0 { return ((b0 & 0x0F) << 12 | UInt32(t[i + 1] & 0x3F) << 6 | UInt32(t[i + 2] & 0x3F), 3) }
        return ((b0 & 0x07) << 18 | UInt32(t[i + 1] & 0x3F) << 12 | UInt32(t[i + 2] & 0x3F) << 6 | UInt32(t[i + 3] & 0x3F), 4)
    }

    /// Writes the UTF-8 of `c` at `p`; returns its length.
    @inline(__always)
    static func write(_ c: UInt32, to p: UnsafeMutablePointer<UInt8>) -> Int {
        switch c {
        case 0..<0x80: p[0] = UInt8(c); return 1
        case 0x80..<0x800:
            p[0] = UInt8(0xC0 | c >> 6); p[1] = UInt8(0x80 | c & 0x3F); return 2
        case 0x800..<0x10000:
            p[0] = UInt8(0xE0 | c >> 12); p[1] = UInt8(0x80 | (c >> 6) & 0x3F); p[2] = UInt8(0x80 | c & 0x3F); return 3
        default:
            p[0] = UInt8(0xF0 | c >> 18); p[1] = UInt8(0x80 | (c >> 12) & 0x3F)
            p[2] = UInt8(0x80 | (c >> 6) & 0x3F); p[3] = UInt8(0x80 | c & 0x3F); return 4
        }
    }

    @inline(__always)
    static func append(_ c: UInt32, to out: inout [UInt8]) {
        switch c {
        case 0..<0x80: out.append(UInt8(c))
        case 0x80..<0x800:
            out.append(UInt8(0xC0 | c >> 6)); out.append(UInt8(0x80 | c & 0x3F))
        case 0x800..<0x10000:
            out.append(UInt8(0xE0 | c >> 12)); out.append(UInt8(0x80 | (c >> 6) & 0x3F)); out.append(UInt8(0x80 | c & 0x3F))
        default:
            out.append(UInt8(0xF0 | c >> 18)); out.append(UInt8(0x80 | (c >> 12) & 0x3F))
            out.append(UInt8(0x80 | (c >> 6) & 0x3F)); out.append(UInt8(0x80 | c & 0x3F))
        }
    }
}
