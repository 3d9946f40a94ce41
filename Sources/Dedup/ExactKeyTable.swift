import TokenmillCore

/// What each scalar contributes to an exact-dedup key (`ExactDedup.normalizedKey`), looked
/// up instead of computed: its NFKD decomposition with nonspacing marks and punctuation
/// dropped, White_Space as a space marker (0xFF, never a UTF-8 byte) and the rest case
/// folded, as UTF-8. The general path decomposed every non-ASCII text into an array of
/// scalars, then classified and folded each one (16% of a build's profile on mixed text).
///
/// Per-scalar lookup equals decomposing the whole text except where NFKD's canonical
/// reordering could move a kept character: a scalar whose decomposition holds a
/// non-starter (combining class > 0) that the key keeps is marked `slow`, and a text with
/// one takes the general path. Non-starters the key drops (Mn) cannot change the result by
/// moving, since only their order relative to other non-starters changes.
enum ExactKeyTable {
    /// Per BMP scalar: pool offset << 8 | length; length 0 = contributes nothing,
    /// 255 = slow. ASCII entries are unused (the ASCII table handles them).
    static let slow: UInt32 = 255

    struct Tables {
        let entries: UnsafePointer<UInt32>
        let pool: UnsafePointer<UInt8>
    }

    static let shared: Tables = {
        var entries = [UInt32](repeating: 0, count: 0x10000)
        var pool: [UInt8] = []
        pool.reserveCapacity(1 << 18)
        for c in UInt32(0x80)..<0x10000 {
            if c >= 0xD800 && c < 0xE000 { continue }
            let start = pool.count
            guard appendContribution(c, to: &pool) else { entries[Int(c)] = slow; continue }
            if pool.count == start { continue }
            entries[Int(c)] = UInt32(start) << 8 | UInt32(pool.count - start)
        }
        let e = UnsafeMutablePointer<UInt32>.allocate(capacity: entries.count)
        e.initialize(from: entries, count: entries.count)
        let p = UnsafeMutablePointer<UInt8>.allocate(capacity: max(1, pool.count))
        p.initialize(from: pool, count: pool.count)
        return Tables(entries: UnsafePointer(e), pool: UnsafePointer(p))
    }()

    /// The key bytes of one scalar (0xFF = a space), or nil when it must take the general
    /// path. Also used directly for scalars beyond the BMP (kept out of line: inlined into
    /// the key's loop, it made the loop's captured variables checked for exclusive access
    /// at run time, 7% of a build).
    @inline(never)
    static func contribution(_ c: UInt32) -> [UInt8]? {
        var out: [UInt8] = []
        return appendContribution(c, to: &out) ? out : nil
    }

    /// Appends the key bytes of one scalar to `out`; false, leaving `out` as it was, when
    /// the scalar must take the general path. Appending in place (no arrays of its own
    /// for a scalar without a decomposition) keeps the table's one-time build to ~65,000
    /// scalars' lookups rather than twice as many allocations.
    static func appendContribution(_ c: UInt32, to out: inout [UInt8]) -> Bool {
        let start = out.count
        var ok = true
        if UnicodeNormalization.hasCompatibilityDecomposition(c) {
            var u = [UInt8](repeating: 0, count: 4)
            let n = u.withUnsafeMutableBufferPointer { Shingler.write(c, to: $0.baseAddress!) }
            for d in String(decoding: UnicodeNormalization.nfkd(Array(u[0..<n])), as: UTF8.self).unicodeScalars where ok {
                ok = appendKeyBytes(d.value, to: &out)
            }
        } else {
            ok = appendKeyBytes(c, to: &out)
        }
        // The fast path reserves 64 bytes a scalar; longer expansions (none known) go slow.
        if !ok || out.count - start > 60 {
            out.removeSubrange(start...)
            return false
        }
        return true
    }

    /// The key bytes of one scalar of a decomposition; false for a combining mark.
    static func appendKeyBytes(_ d: UInt32, to out: inout [UInt8]) -> Bool {
        if UnicodeData.isSpace(d) { out.append(0xFF); return true }
        if ExactDedup.isDropped(d) { return true }
        if UnicodeNormalization.combiningClass(d) != 0 { return false }
        Shingler.append(d < 0x80 ? (d >= 0x41 && d <= 0x5A ? d | 0x20 : d) : UnicodeData.fold(d), to: &out)
        return true
    }
}
