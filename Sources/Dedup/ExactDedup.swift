import CIntrinsics
import TokenmillCore

/// Exact deduplication on a normalized key: the xxh3-128 of the compared text (`on`)
/// after compatibility decomposition, with diacritics (nonspacing marks) and punctuation
/// dropped, case folded and whitespace runs collapsed to one space (trimmed). "Hello,
/// World!" and "hello world" are duplicates; the first occurrence in spec order is kept.
///
/// Keys are computed in parallel by the caller (`key(of:on:)` is pure); the decision
/// pass is sequential over 16-byte summaries, so the result never depends on timing.
public struct ExactDedup {
    var seen: Set<UInt128Hash> = []
    public init() {}

    /// nil when nothing is left to compare (an empty response is nobody's duplicate).
    public static func key(of r: Record, on field: DedupField) -> UInt128Hash? {
        let text = field.text(of: r)
        return text.withUnsafeBufferPointer { t -> UInt128Hash? in
            if let h = withFastKey(t, { k -> UInt128Hash? in k.isEmpty ? nil : XXH3.hash128(UnsafeRawBufferPointer(k)) }) { return h }
            let k = generalKey(text)
            return k.isEmpty ? nil : XXH3.hash128(k)
        }
    }

    /// The normalized bytes the key hashes (public for tests and `inspect`).
    public static func normalizedKey(_ text: [UInt8]) -> [UInt8] {
        text.withUnsafeBufferPointer { t in withFastKey(t) { Array($0) } } ?? generalKey(text)
    }

    /// Whether the key drops a scalar: nonspacing marks (diacritics) and punctuation.
    static func isDropped(_ c: UInt32) -> Bool {
        switch UnicodeData.Category(rawValue: UnicodeData.category(c)) ?? .Cn {
        case .Mn, .Pc, .Pd, .Ps, .Pe, .Pi, .Pf, .Po: return true
        default: return false
        }
    }

    /// The key built scalar by scalar from `ExactKeyTable` into one buffer, passed to
    /// `body`; nil (and `body` not called) when the text holds a scalar whose key needs
    /// the general path.
    static func withFastKey<R>(_ t: UnsafeBufferPointer<UInt8>, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R? {
        let tables = ExactKeyTable.shared
        var cap = t.count + 80
        var buf = UnsafeMutablePointer<UInt8>.allocate(capacity: cap)
        defer { buf.deallocate() }
        var fc = 0, i = 0
        var pendingSpace = false
        let n = t.count
        func emit(_ piece: UnsafeBufferPointer<UInt8>) {
            for x in piece {
                if x == 0xFF { pendingSpace = fc > 0; continue }
                if pendingSpace { buf[fc] = 0x20; fc += 1; pendingSpace = false }
                buf[fc] = x
                fc += 1
            }
        }
        return asciiSteps.withUnsafeBufferPointer { ascii -> R? in
            while i < n {
                if t[i] < 0x80 {
                    // A run of ASCII without a branch per byte, and with a short chain from
                    // one byte to the next (`owe` 2 operations, `fc` and `started` one): a space
                    // is stored and kept only when owed before a kept byte, the byte stored
                    // and kept only when it is kept. (With branches, or with `fc > 0` in the
                    // chain, this loop took ~7 cycles a byte and 9% of a build.)
                    // `fc`, `i` and `buf` are captured by `emit`, so they live in boxes:
                    // the loop works on copies in registers.
                    var owe = pendingSpace ? 1 : 0
                    var started = fc > 0 ? 1 : 0
                    var f = fc, j = i
                    let out = buf
                    // Whole blocks of 16 ASCII bytes in C (`tm_exact_key_ascii`: the same
                    // state, the same bytes), then this loop for the rest of the run.
                    if n - j >= 16 {
                        var cOwe = UInt32(owe), cStarted = UInt32(started)
                        j += tm_exact_key_ascii(t.baseAddress! + j, n - j, out, &f, &cOwe, &cStarted,
                                                Self.keepTable, Self.spaceTable, ASCIIKernels.pack)
                        owe = Int(cOwe); started = Int(cStarted)
                    }
                    while j < n && t[j] < 0x80 {
                        let e = Int(ascii[Int(t[j])])
                        let keep = (e &>> 8) & 1, space = (e &>> 9) & 1
                        let lead = keep & owe
                        out[f] = 0x20
                        out[f &+ lead] = UInt8(truncatingIfNeeded: e)
                        f = f &+ keep &+ lead
                        owe = (owe & ~(keep | space)) | (space & started)
                        started |= keep
                        j = j &+ 1
                    }
                    fc = f; i = j
                    pendingSpace = owe != 0
                    continue
                }
                // A run of U+4000...U+9FFF (lead bytes E4-E9: CJK ideographs and the Yijing
                // hexagrams, none with a decomposition, a fold or a dropped category) keys
                // as its own bytes (`testCJKScalarsKeyAsThemselves`): copied without the
                // table's load a scalar, which missed L1 for Chinese text. Three bytes out
                // for three in, so the buffer's room (below) still holds.
                if t[i] &- 0xE4 < 6 && i + 2 < n {
                    // On copies in registers, as the ASCII path (the captured ones are boxed
                    // and checked for exclusive access at each use).
                    var f = fc, j = i
                    let out = buf
                    if pendingSpace { out[f] = 0x20; f += 1; pendingSpace = false }
                    repeat {
                        out[f] = t[j]; out[f + 1] = t[j + 1]; out[f + 2] = t[j + 2]
                        f += 3; j += 3
                    } while j + 2 < n && t[j] &- 0xE4 < 6
                    fc = f; i = j
                    continue
                }
                let (c, len) = Shingler.decode(t, i)
                i += len
                // Room for this scalar (at most 61 bytes), for the rest of the input if it
                // is ASCII or CJK (a byte at most a byte, and one space), and for the C
                // kernel's 16-byte stores past the end, so those paths need no check.
                if fc + 80 + (n - i) > cap {
                    let grown = max(cap * 2, fc + 80 + (n - i))
                    let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: grown)
                    bigger.update(from: buf, count: fc)
                    buf.deallocate()
                    buf = bigger; cap = grown
                }
                if c < 0x10000 {
                    let e = tables.entries[Int(c)]
                    let l = Int(e & 0xFF)
                    if l == 0 { continue }
                    if e & 0xFF == ExactKeyTable.slow { return nil }
                    emit(UnsafeBufferPointer(start: tables.pool + Int(e >> 8), count: l))
                } else {
                    guard let b = ExactKeyTable.contribution(c) else { return nil }
                    b.withUnsafeBufferPointer(emit)
                }
            }
            return body(UnsafeBufferPointer(start: buf, count: fc))
        }
    }

    /// The key by decomposing the whole text (NFKD), then classifying and folding each
    /// scalar: the definition the table-driven path must equal.
    static func generalKey(_ text: [UInt8]) -> [UInt8] {
        let decomposed = text.withUnsafeBufferPointer(UTF8Validation.isASCII) ? text : UnicodeNormalization.nfkd(text)
        var out: [UInt8] = []
        out.reserveCapacity(decomposed.count)
        var pendingSpace = false
        decomposed.withUnsafeBufferPointer { t in
            var i = 0
            let ascii = Self.asciiClass
            while i < t.count {
                // ASCII through a table made by the same rules as the general path below.
                if t[i] < 0x80 {
                    let k = ascii[Int(t[i])]
                    i += 1
                    if k == 0x100 { continue }
                    if k == 0x101 { pendingSpace = !out.isEmpty; continue }
                    if pendingSpace { out.append(0x20); pendingSpace = false }
                    out.append(UInt8(k))
                    continue
                }
                var c = UInt32(t[i]), len = 1
                if c >= 0x80 { (c, len) = Shingler.decode(t, i) }
                i += len
                if UnicodeData.isSpace(c) { pendingSpace = !out.isEmpty; continue }
                let cat = UnicodeData.Category(rawValue: UnicodeData.category(c)) ?? .Cn
                switch cat {
                case .Mn, .Pc, .Pd, .Ps, .Pe, .Pi, .Pf, .Po: continue
                default: break
                }
                if pendingSpace { out.append(0x20); pendingSpace = false }
                Shingler.append(c < 0x80 ? (c >= 0x41 && c <= 0x5A ? c | 0x20 : c) : UnicodeData.fold(c), to: &out)
            }
        }
        return out
    }

    /// For each ASCII byte: 0x100 dropped (punctuation), 0x101 space, else the byte the key holds.
    /// `asciiClass` as the branch-free loop reads it: the key byte, bit 8 when the byte is
    /// kept, bit 9 when it is whitespace (neither: dropped).
    static let asciiSteps: [UInt16] = asciiClass.map { k in k == 0x100 ? 0 : k == 0x101 ? 0x200 : 0x100 | k }

    /// `asciiClass`'s kept bytes and whitespace as the C kernel's nibble tables.
    static let keepTable = ASCIIKernels.nibbleTable { asciiClass[Int($0)] < 0x100 }
    static let spaceTable = ASCIIKernels.nibbleTable { asciiClass[Int($0)] == 0x101 }

    static let asciiClass: [UInt16] = (0..<128).map { b -> UInt16 in
        let c = UInt32(b)
        if UnicodeData.isSpace(c) { return 0x101 }
        let cat = UnicodeData.Category(rawValue: UnicodeData.category(c)) ?? .Cn
        switch cat {
        case .Mn, .Pc, .Pd, .Ps, .Pe, .Pi, .Pf, .Po: return 0x100
        default: return UInt16(c >= 0x41 && c <= 0x5A ? c | 0x20 : c)
        }
    }

    /// True when `key` is new (keep the record); false for a duplicate.
    public mutating func insert(_ key: UInt128Hash) -> Bool {
        seen.insert(key).inserted
    }
}
