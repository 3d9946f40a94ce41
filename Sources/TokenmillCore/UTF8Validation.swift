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

    public static func isValid(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        if isASCII(b) { return true }
        return String(validating: b, as: UTF8.self) != nil
    }

    /// The bytes with every invalid sequence replaced by U+FFFD; `nil` when already valid.
    public static func repaired(_ b: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        if isValid(b) { return nil }
        return Array(String(decoding: b, as: UTF8.self).utf8)
    }
}
