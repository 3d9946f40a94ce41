import TokenmillCore

/// NFC's quick check (UAX #15 section 9) for the normalizer: a text whose scalars all are
/// NFC_QC=Yes with combining class 0 is its own NFC, so most non-ASCII texts (CJK, most
/// Latin, Cyrillic) skip the standard library's normalizer, which copied and revalidated
/// every text (4% of a build).
///
/// The normalizer's NFC is the standard library's, whose Unicode data may be newer than
/// the generated tables, so a BMP scalar counts as safe only when both agree: the tables
/// (`mayChangeUnderNFC`) and the standard library (combining class 0, and a text of the
/// scalar alone is its own NFC). Scalars beyond the BMP always take the normalizer.
enum NFCQuickCheck {
    /// One bit a BMP scalar: set when it may make NFC change a text.
    static let unsafeBits: UnsafePointer<UInt64> = {
        let bits = UnsafeMutablePointer<UInt64>.allocate(capacity: 1024)
        bits.initialize(repeating: 0, count: 1024)
        for c in UInt32(0x80)..<0x10000 {
            var unsafe = true
            if let s = Unicode.Scalar(c), !UnicodeNormalization.mayChangeUnderNFC(c), s.properties.canonicalCombiningClass.rawValue == 0 {
                let alone = String(Character(s))
                unsafe = alone._nfcCodeUnits != Array(alone.utf8)
            }
            if unsafe { bits[Int(c >> 6)] |= 1 << UInt64(c & 63) }
        }
        return UnsafePointer(bits)
    }()

    /// True when NFC leaves `text` (valid UTF-8) unchanged; false when it may not.
    static func isStable(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        let bits = unsafeBits
        var i = 0
        let n = text.count
        while i < n {
            let b0 = UInt32(text[i])
            if b0 < 0x80 { i += 1; continue }
            // U+4000...U+9FFF (CJK ideographs, Yijing hexagrams): stable, no bit set
            // (`testCJKIsNFCStable`); skipped without decoding.
            if b0 &- 0xE4 < 6 && i + 2 < n { i += 3; continue }
            let cp: UInt32
            if b0 < 0xE0 {
                guard i + 1 < n else { return false }
                cp = (b0 & 0x1F) << 6 | UInt32(text[i + 1] & 0x3F); i += 2
            } else if b0 < 0xF0 {
                guard i + 2 < n else { return false }
                cp = (b0 & 0x0F) << 12 | UInt32(text[i + 1] & 0x3F) << 6 | UInt32(text[i + 2] & 0x3F); i += 3
            } else {
                return false
            }
            if bits[Int(cp >> 6)] & (1 << UInt64(cp & 63)) != 0 { return false }
        }
        return true
    }
}
