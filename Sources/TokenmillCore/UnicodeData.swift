/// General categories and simple case folding (the general regex path of the tokenizer,
/// near-dedup shingles and exact-dedup keys), from the
/// generated Unicode 16.0 tables (`Generated/RegexTables.swift`), decoded once.
public enum UnicodeData {
    /// Category numbers, in `RegexTables.categories` order.
    public enum Category: UInt8, Sendable {
        case Cn, Lu, Ll, Lt, Lm, Lo, Mn, Mc, Me, Nd, Nl, No, Pc, Pd, Ps, Pe, Pi, Pf, Po, Sm, Sc, Sk, So, Zs, Zl, Zp, Cc, Cf, Cs, Co
    }

    private static func decode(_ s: String) -> [UInt8] {
        Base64.decode(ArraySlice(s.utf8.filter { $0 != 0x0A }))!
    }

    private static func u32s(_ s: String) -> [UInt32] {
        let b = decode(s)
        var out: [UInt32] = []
        out.reserveCapacity(b.count / 4)
        var k = 0
        while k + 4 <= b.count {
            let lo = UInt32(b[k]) | UInt32(b[k + 1]) << 8
            let hi = UInt32(b[k + 2]) << 16 | UInt32(b[k + 3]) << 24
            out.append(lo | hi)
            k += 4
        }
        return out
    }

    private static let categoryTables: (index: [UInt16], blocks: [UInt8]) = {
        let idx = decode(RegexTables.categoryIndexBase64), blk = decode(RegexTables.categoryBlocksBase64)
        precondition(idx.count == 0x1100 * 2 && blk.count == RegexTables.blockCount * 256, "corrupt generated regex tables")
        return ((0..<0x1100).map { UInt16(idx[2 * $0]) | UInt16(idx[2 * $0 + 1]) << 8 }, blk)
    }()

    /// The category number of a scalar (0 = Cn for anything out of range).
    public static func category(_ c: UInt32) -> UInt8 {
        guard c < 0x110000 else { return 0 }
        let t = categoryTables
        return t.blocks[Int(t.index[Int(c >> 8)]) << 8 | Int(c & 0xFF)]
    }

    /// Sorted (scalar, simple fold) pairs.
    private static let folds: (from: [UInt32], to: [UInt32]) = {
        let v = u32s(RegexTables.foldsBase64)
        precondition(v.count == RegexTables.foldCount * 2, "corrupt generated fold table")
        return (stride(from: 0, to: v.count, by: 2).map { v[$0] }, stride(from: 1, to: v.count, by: 2).map { v[$0] })
    }()

    /// Every scalar that folds to a given fold target (the target itself included).
    private static let foldClasses: [UInt32: [UInt32]] = {
        var m: [UInt32: [UInt32]] = [:]
        for (a, b) in zip(folds.from, folds.to) { m[b, default: [b]].append(a) }
        return m
    }()

    private static let multiFolds: Set<UInt32> = Set(u32s(RegexTables.multiFoldsBase64))

    /// Simple case folding of every BMP scalar, indexed by scalar (128 KiB): a fold is one
    /// load instead of a binary search over the ~1,500 pairs (it was 5% of a build's
    /// profile through near-dedup shingles and exact keys). 0 marks a BMP scalar whose
    /// fold lies outside the BMP (none in Unicode 16; kept general).
    public static let foldBMP: UnsafePointer<UInt16> = {
        let t = UnsafeMutablePointer<UInt16>.allocate(capacity: 0x10000)
        for c in 0..<0x10000 { t[c] = UInt16(c) }
        for (a, b) in zip(folds.from, folds.to) where a < 0x10000 { t[Int(a)] = b < 0x10000 ? UInt16(b) : 0 }
        return UnsafePointer(t)
    }()

    @inline(__always)
    public static func fold(_ c: UInt32) -> UInt32 {
        if c < 0x10000 {
            let v = foldBMP[Int(c)]
            if v != 0 || c == 0 { return UInt32(v) }
        }
        return foldSearch(c)
    }

    /// The fold by binary search over the sorted pairs (any scalar).
    public static func foldSearch(_ c: UInt32) -> UInt32 {
        let f = folds.from
        var lo = 0, hi = f.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if f[mid] < c { lo = mid + 1 } else { hi = mid }
        }
        return lo < f.count && f[lo] == c ? folds.to[lo] : c
    }

    /// The scalars equal to `c` under simple case folding, `c` included.
    public static func caseVariants(_ c: UInt32) -> [UInt32] {
        let f = fold(c)
        return foldClasses[f] ?? [c]
    }

    /// Scalars whose full case folding is several scalars (`ß` -> `ss`).
    public static func hasMultiScalarFold(_ c: UInt32) -> Bool { multiFolds.contains(c) }

    /// White_Space (Oniguruma's and the regex crate's `\s`).
    public static func isSpace(_ c: UInt32) -> Bool {
        switch c {
        case 0x09...0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: return true
        default: return false
        }
    }
}
