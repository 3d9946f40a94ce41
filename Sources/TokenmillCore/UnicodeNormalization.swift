/// Unicode NFC and NFKC on UTF-8 bytes (UAX #15) exactly as the Hugging Face `tokenizers`
/// library normalizes, from generated tables (`Generated/generate_normalization_tables.py`:
/// Unicode 16.0 data restricted to the older Unicode version `tokenizers` knows).
///
/// The Swift standard library offers only NFC, with its own (newer) Unicode data;
/// tokenizer.json normalizers must match `tokenizers` on every input, so both forms are
/// implemented here: full decomposition (Hangul algorithmically), canonical ordering by
/// combining class, then canonical composition of primary composites. ASCII is returned
/// unchanged without work.
public enum UnicodeNormalization {
    struct Tables {
        var cccIndex: [UInt16]
        var cccBlocks: [UInt8]
        var canonical: [UInt32: [UInt32]]
        var decompositions: [UInt32: [UInt32]]
        var compositions: [UInt64: UInt32]
        /// One bit a code point: set when `canonical` / `decompositions` has it, so most
        /// scalars (ASCII, CJK ideographs, ...) skip the dictionary lookup.
        var canonicalBits: [UInt64]
        var decompositionBits: [UInt64]
        /// Set for code points that can make NFC change a text: those with a canonical
        /// decomposition, a nonzero combining class, the second half of a composition pair,
        /// and Hangul vowel and trailing jamo. A text with none of them is its own NFC.
        var nfcUnsafeBits: [UInt64]
    }

    static func nfcUnsafe(_ can: [UInt32: [UInt32]], _ comp: [UInt64: UInt32], _ index: [UInt16], _ blocks: [UInt8]) -> [UInt64] {
        var b = bits(can)
        func set(_ cp: UInt32) { if cp < 0x110000 { b[Int(cp >> 6)] |= 1 << UInt64(cp & 63) } }
        for k in comp.keys { set(UInt32(truncatingIfNeeded: k)) }
        for cp in UInt32(0x1161)...UInt32(0x11C2) { set(cp) }
        for cp in UInt32(0)..<UInt32(0x110000) where blocks[Int(index[Int(cp >> 8)]) << 8 | Int(cp & 0xFF)] != 0 { set(cp) }
        return b
    }

    /// True when NFC leaves `text` (valid UTF-8) unchanged because no scalar can change it.
    static func isNFCStable(_ text: [UInt8], _ t: Tables) -> Bool {
        text.withUnsafeBufferPointer { p in
            var i = 0
            let n = p.count
            while i < n {
                let b0 = UInt32(p[i])
                var cp: UInt32
                if b0 < 0x80 { i += 1; continue }
                if b0 < 0xE0 {
                    guard i + 1 < n else { return false }
                    cp = (b0 & 0x1F) << 6 | UInt32(p[i + 1] & 0x3F); i += 2
                } else if b0 < 0xF0 {
                    guard i + 2 < n else { return false }
                    cp = (b0 & 0x0F) << 12 | UInt32(p[i + 1] & 0x3F) << 6 | UInt32(p[i + 2] & 0x3F); i += 3
                } else {
                    guard i + 3 < n else { return false }
                    cp = (b0 & 0x07) << 18 | UInt32(p[i + 1] & 0x3F) << 12 | UInt32(p[i + 2] & 0x3F) << 6 | UInt32(p[i + 3] & 0x3F); i += 4
                }
                if cp >= 0x110000 || t.nfcUnsafeBits[Int(cp >> 6)] & (1 << UInt64(cp & 63)) != 0 { return false }
            }
            return true
        }
    }

    static func bits(_ m: [UInt32: [UInt32]]) -> [UInt64] {
        var b = [UInt64](repeating: 0, count: 0x110000 / 64)
        for cp in m.keys where cp < 0x110000 { b[Int(cp >> 6)] |= 1 << UInt64(cp & 63) }
        return b
    }

    static let tables: Tables = {
        func decode(_ s: String) -> [UInt8] { Base64.decode(ArraySlice(s.utf8.filter { $0 != 0x0A }))! }
        func u32(_ b: [UInt8], _ o: Int) -> UInt32 {
            UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24
        }
        let idx = decode(NormalizationTables.cccIndexBase64)
        var index = [UInt16](repeating: 0, count: 0x1100)
        for i in 0..<0x1100 { index[i] = UInt16(idx[2 * i]) | UInt16(idx[2 * i + 1]) << 8 }
        let blocks = decode(NormalizationTables.cccBlocksBase64)
        func mapping(_ b64: String) -> [UInt32: [UInt32]] {
            var m: [UInt32: [UInt32]] = [:]
            let d = decode(b64)
            var o = 0
            while o < d.count {
                let cp = u32(d, o), n = Int(d[o + 4])
                o += 5
                m[cp] = (0..<n).map { u32(d, o + 4 * $0) }
                o += 4 * n
            }
            return m
        }
        let can = mapping(NormalizationTables.canonicalBase64)
        let dec = mapping(NormalizationTables.decompositionsBase64)
        var comp: [UInt64: UInt32] = [:]
        let c = decode(NormalizationTables.compositionsBase64)
        for k in stride(from: 0, to: c.count, by: 12) { comp[UInt64(u32(c, k)) << 32 | UInt64(u32(c, k + 4))] = u32(c, k + 8) }
        precondition(dec.count == NormalizationTables.decompositionCount && comp.count == NormalizationTables.compositionCount
                     && can.count == NormalizationTables.canonicalCount, "corrupt generated normalization tables")
        return Tables(cccIndex: index, cccBlocks: blocks, canonical: can, decompositions: dec, compositions: comp,
                      canonicalBits: bits(can), decompositionBits: bits(dec),
                      nfcUnsafeBits: nfcUnsafe(can, comp, index, blocks))
    }()

    static let sBase: UInt32 = 0xAC00, lBase: UInt32 = 0x1100, vBase: UInt32 = 0x1161, tBase: UInt32 = 0x11A7
    static let lCount: UInt32 = 19, vCount: UInt32 = 21, tCount: UInt32 = 28
    static let nCount = vCount * tCount, sCount = lCount * vCount * tCount

    @inline(__always)
    static func ccc(_ t: Tables, _ cp: UInt32) -> UInt8 {
        t.cccBlocks[Int(t.cccIndex[Int(cp >> 8)]) << 8 | Int(cp & 0xFF)]
    }

    /// Whether a scalar can make NFC change a text that holds it, by these tables (a
    /// canonical decomposition, a nonzero combining class, the second half of a
    /// composition pair, Hangul vowel and trailing jamo).
    public static func mayChangeUnderNFC(_ cp: UInt32) -> Bool {
        cp >= 0x110000 || tables.nfcUnsafeBits[Int(cp >> 6)] & (1 << UInt64(cp & 63)) != 0
    }

    /// The canonical combining class of a scalar (0 for starters).
    public static func combiningClass(_ cp: UInt32) -> UInt8 { cp < 0x110000 ? ccc(tables, cp) : 0 }

    /// Whether NFKD changes the scalar on its own (a compatibility or canonical
    /// decomposition, Hangul syllables included).
    public static func hasCompatibilityDecomposition(_ cp: UInt32) -> Bool {
        if cp >= sBase && cp < sBase + sCount { return true }
        return cp < 0x110000 && tables.decompositionBits[Int(cp >> 6)] & (1 << UInt64(cp & 63)) != 0
    }

    /// NFKC of valid UTF-8 `text`.
    public static func nfkc(_ text: [UInt8]) -> [UInt8] { normalize(text, compatibility: true, compose: true) }
    /// NFC of valid UTF-8 `text`.
    public static func nfc(_ text: [UInt8]) -> [UInt8] { normalize(text, compatibility: false, compose: true) }
    /// NFKD of valid UTF-8 `text`.
    public static func nfkd(_ text: [UInt8]) -> [UInt8] { normalize(text, compatibility: true, compose: false) }

    static func normalize(_ text: [UInt8], compatibility: Bool, compose doCompose: Bool) -> [UInt8] {
        if text.withUnsafeBufferPointer({ UTF8Validation.isASCII($0) }) { return text }
        let t = tables
        if doCompose && !compatibility && text.withUnsafeBufferPointer(UTF8Validation.isValid) && isNFCStable(text, t) { return text }
        var cps = compatibility ? decompose(text, t.decompositions, t.decompositionBits) : decompose(text, t.canonical, t.canonicalBits)
        reorder(&cps, t)
        if doCompose { compose(&cps, t) }
        return encodeUTF8(cps)
    }

    static func decompose(_ text: [UInt8], _ table: [UInt32: [UInt32]], _ has: [UInt64]) -> [UInt32] {
        var out: [UInt32] = []
        out.reserveCapacity(text.count)
        for s in String(decoding: text, as: UTF8.self).unicodeScalars {
            let cp = s.value
            if cp >= sBase && cp < sBase + sCount {
                let si = cp - sBase
                out.append(lBase + si / nCount)
                out.append(vBase + (si % nCount) / tCount)
                if si % tCount != 0 { out.append(tBase + si % tCount) }
            } else if has[Int(cp >> 6)] & (1 << UInt64(cp & 63)) != 0, let d = table[cp] {
                out.append(contentsOf: d)
            } else {
                out.append(cp)
            }
        }
        return out
    }

    /// Canonical ordering: each run of non-starters sorted stably by combining class.
    static func reorder(_ cps: inout [UInt32], _ t: Tables) {
        var i = 0
        while i < cps.count {
            if ccc(t, cps[i]) == 0 { i += 1; continue }
            var j = i
            while j < cps.count && ccc(t, cps[j]) != 0 { j += 1 }
            if j - i > 1 {
                // Insertion sort: runs are short and it is stable.
                for a in (i + 1)..<j {
                    let v = cps[a], c = ccc(t, v)
                    var b = a - 1
                    while b >= i && ccc(t, cps[b]) > c { cps[b + 1] = cps[b]; b -= 1 }
                    cps[b + 1] = v
                }
            }
            i = j
        }
    }

    /// Canonical composition (UAX #15 D117): each character joins the last starter when
    /// it is not blocked and the pair is a primary composite.
    static func compose(_ cps: inout [UInt32], _ t: Tables) {
        guard !cps.isEmpty else { return }
        var out: [UInt32] = []
        out.reserveCapacity(cps.count)
        var starter = -1
        var lastCCC: Int = -1
        for cp in cps {
            let c = Int(ccc(t, cp))
            if starter >= 0 {
                let s = out[starter]
                let blocked = lastCCC != -1 && (lastCCC == 0 || lastCCC >= c)
                if !blocked || (lastCCC == -1) {
                    if let composite = composePair(s, cp, t) {
                        out[starter] = composite
                        continue
                    }
                }
            }
            if c == 0 {
                starter = out.count
                lastCCC = -1
            } else {
                lastCCC = c
            }
            out.append(cp)
        }
        cps = out
    }

    @inline(__always)
    static func composePair(_ a: UInt32, _ b: UInt32, _ t: Tables) -> UInt32? {
        if a >= lBase && a < lBase + lCount && b >= vBase && b < vBase + vCount {
            return sBase + ((a - lBase) * vCount + (b - vBase)) * tCount
        }
        if a >= sBase && a < sBase + sCount && (a - sBase) % tCount == 0 && b > tBase && b < tBase + tCount {
            return a + (b - tBase)
        }
        return t.compositions[UInt64(a) << 32 | UInt64(b)]
    }

    static func encodeUTF8(_ cps: [UInt32]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(cps.count * 2)
        for s in cps { UTF8Encoding.append(s, to: &out) }
        return out
    }
}
