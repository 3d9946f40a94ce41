import CIntrinsics
/// UTF-8 checks on raw bytes. The ASCII fast path reads 8 bytes at a time; the rest
/// defers to the standard library's validator.
public enum UTF8Validation {
    public static func isASCII(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0
        let n = b.count
        let base = UnsafeRawPointer(b.baseAddress)
        while i + 8 <= n {
            if base!.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 != 0 { return false }
            i += 8
        }
        while i < n { if b[i] >= 0x80 { return false }; i += 1 }
        return true
    }

    /// Well-formed UTF-8 (Unicode's table 3-7: no overlong forms, no surrogates, nothing
    /// past U+10FFFF), checked in place: ASCII eight bytes a step, each multi-byte
    /// sequence by its lead byte's allowed second-byte range. (The standard library's
    /// `String(validating:)` answers the same but builds a String to do it, which cost
    /// 3% of `tokenmill encode` on mixed text.)
    public static func isValid(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let p = b.baseAddress else { return true }
        let n = b.count
        // 32 bytes a step where AVX2 is compiled in (`tm_utf8_valid`, CIntrinsics); the
        // loop below for short runs, where setting up the vectors costs more.
        if n >= 32 {
            let r = tm_utf8_valid(p, n)
            if r >= 0 { return r == 1 }
        }
        return isValidScalar(b)
    }

    /// The scalar validator (the reference the vector one is tested against).
    public static func isValidScalar(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let p = b.baseAddress else { return true }
        let n = b.count
        let raw = UnsafeRawPointer(p)
        var i = 0
        while i < n {
            if i + 8 <= n && raw.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 { i += 8; continue }
            let c = p[i]
            if c < 0x80 { i += 1; continue }
            @inline(__always) func cont(_ k: Int) -> Bool { p[i + k] & 0xC0 == 0x80 }
            if c < 0xC2 { return false }
            if c < 0xE0 {
                guard i + 1 < n, cont(1) else { return false }
                i += 2
            } else if c < 0xF0 {
                guard i + 2 < n, cont(2) else { return false }
                let c1 = p[i + 1]
                switch c {
                case 0xE0: guard c1 >= 0xA0 && c1 <= 0xBF else { return false }
                case 0xED: guard c1 >= 0x80 && c1 <= 0x9F else { return false }
                default: guard cont(1) else { return false }
                }
                i += 3
            } else if c < 0xF5 {
                guard i + 3 < n, cont(2), cont(3) else { return false }
                let c1 = p[i + 1]
                switch c {
                case 0xF0: guard c1 >= 0x90 && c1 <= 0xBF else { return false }
                case 0xF4: guard c1 >= 0x80 && c1 <= 0x8F else { return false }
                default: guard cont(1) else { return false }
                }
                i += 4
            } else {
                return false
            }
        }
        return true
    }

    /// The bytes with every invalid sequence replaced by U+FFFD; `nil` when already valid.
    public static func repaired(_ b: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        if isValid(b) { return nil }
        return Array(String(decoding: b, as: UTF8.self).utf8)
    }
}
