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

    /// One pass for both newline folding and control stripping.
    func cleanControls(_ b: [UInt8], ascii: Bool) -> [UInt8] {
        // Fast check: nothing to do when no byte is < 0x20 (other than \n, \t), 0x7F, or
        // the C1 lead byte 0xC2.
        if !b.withUnsafeBufferPointer(Self.mayHoldControls) { return b }
        var out: [UInt8] = []
        out.reserveCapacity(b.count)
        var i = 0
        let n = b.count
        while i < n {
            let c = b[i]
            if c == 0x0D && newlines {
                out.append(0x0A)
                i += (i + 1 < n && b[i + 1] == 0x0A) ? 2 : 1
                continue
            }
            if stripControl {
                if (c < 0x20 && c != 0x0A && c != 0x09) || c == 0x7F { i += 1; continue }
                // C1 controls U+0080..U+009F are encoded C2 80..C2 9F.
                if c == 0xC2 && i + 1 < n && b[i + 1] >= 0x80 && b[i + 1] <= 0x9F { i += 2; continue }
            }
            out.append(c)
            i += 1
        }
        return out
    }

    /// Whether any byte is < 0x20 other than \n and \t, 0x7F, or 0xC2 (the lead byte of
    /// C1 controls), eight bytes at a time with exact per-byte tests (no carry crosses a
    /// byte): bit 7 of each byte of `below20` is set iff that byte is < 0x20, of `equal(v)`
    /// iff it is v.
    static func mayHoldControls(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101, high: UInt64 = 0x8080_8080_8080_8080, low7: UInt64 = 0x7F7F_7F7F_7F7F_7F7F
        @inline(__always) func zeroBytes(_ y: UInt64) -> UInt64 { ~(((y & low7) &+ low7) | y) & high }
        @inline(__always) func equal(_ x: UInt64, _ v: UInt8) -> UInt64 { zeroBytes(x ^ (ones &* UInt64(v))) }
        let n = b.count
        var i = 0
        if let base = UnsafeRawPointer(b.baseAddress) {
            while i + 8 <= n {
                let x = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                let below20 = ~(((x & low7) &+ (ones &* 0x60)) | x) & high
                let hit = (below20 & ~equal(x, 0x0A) & ~equal(x, 0x09)) | equal(x, 0x7F) | equal(x, 0xC2)
                if hit != 0 { return true }
                i += 8
            }
        }
        while i < n {
            let c = b[i]
            if (c < 0x20 && c != 0x0A && c != 0x09) || c == 0x7F || c == 0xC2 { return true }
            i += 1
        }
        return false
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
