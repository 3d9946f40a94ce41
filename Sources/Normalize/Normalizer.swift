import TokenmillCore

/// Text normalization (DESIGN.md `normalize`), applied to every text field of a record.
///
/// Order: Unicode NFC, newlines (`\r\n` and `\r` to `\n`), control characters (category
/// Cc except `\n` and `\t`) removed, then leading/trailing White_Space trimmed. Each
/// step has an ASCII fast path; NFC on non-ASCII text uses the standard library's
/// normalizer (`_nfcCodeUnits`, the one String comparison uses; no ICU, no Foundation).
public struct Normalizer: Sendable {
    public var nfc: Bool
    public var newlines: Bool
    public var stripControl: Bool
    public var trim: Bool

    public init(nfc: Bool = true, newlines: Bool = true, stripControl: Bool = true, trim: Bool = true) {
        self.nfc = nfc; self.newlines = newlines; self.stripControl = stripControl; self.trim = trim
    }

    public func apply(_ input: [UInt8]) -> [UInt8] {
        var b = input
        let ascii = b.withUnsafeBufferPointer { UTF8Validation.isASCII($0) }
        if nfc && !ascii && !b.withUnsafeBufferPointer(NFCQuickCheck.isStable) {
            b = String(decoding: b, as: UTF8.self)._nfcCodeUnits
        }
        if newlines || stripControl { b = cleanControls(b, ascii: ascii) }
        if trim { b = trimmed(b) }
        return b
    }

    /// One pass for both newline folding and control stripping: runs without a byte that
    /// needs a look (`nextControlByte`, 32 bytes a step) are copied whole; most texts have
    /// none and are returned as they are.
    func cleanControls(_ b: [UInt8], ascii: Bool) -> [UInt8] {
        b.withUnsafeBufferPointer { p -> [UInt8] in
            let n = p.count
            var k = nextControlByte(p, from: 0)
            if k == n { return b }
            var out: [UInt8] = []
            out.reserveCapacity(n)
            var i = 0
            while true {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: p[i..<k]))
                i = k
                if i >= n { break }
                let c = p[i]
                if c == 0x0D && newlines {
                    out.append(0x0A)
                    i += (i + 1 < n && p[i + 1] == 0x0A) ? 2 : 1
                } else if stripControl && ((c < 0x20 && c != 0x0A && c != 0x09) || c == 0x7F) {
                    i += 1
                } else if stripControl && c == 0xC2 && i + 1 < n && p[i + 1] >= 0x80 && p[i + 1] <= 0x9F {
                    // C1 controls U+0080..U+009F are encoded C2 80..C2 9F.
                    i += 2
                } else {
                    out.append(c)
                    i += 1
                }
                k = nextControlByte(p, from: i)
            }
            return out
        }
    }

    /// Removes leading and trailing White_Space scalars.
    func trimmed(_ b: [UInt8]) -> [UInt8] {
        var s = 0, e = b.count
        while s < e, let l = whiteSpaceLength(b, s) { s += l }
        while e > s {
            var p = e - 1
            while p > s && b[p] & 0xC0 == 0x80 { p -= 1 }
            guard let l = whiteSpaceLength(b, p), p + l == e else { break }
            e = p
        }
        if s == 0 && e == b.count { return b }
        return Array(b[s..<e])
    }

    /// Byte length of the White_Space scalar at `i`, or nil.
    func whiteSpaceLength(_ b: [UInt8], _ i: Int) -> Int? {
        let c = b[i]
        if c < 0x80 { return (c == 0x20 || (c >= 0x09 && c <= 0x0D)) ? 1 : nil }
        var v: UInt32 = 0, l = 0
        if c < 0xE0, i + 1 < b.count { v = UInt32(c & 0x1F) << 6 | UInt32(b[i + 1] & 0x3F); l = 2 }
        else if c < 0xF0, i + 2 < b.count { v = UInt32(c & 0x0F) << 12 | UInt32(b[i + 1] & 0x3F) << 6 | UInt32(b[i + 2] & 0x3F); l = 3 }
        else { return nil }
        switch v {
        case 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: return l
        default: return nil
        }
    }
}
