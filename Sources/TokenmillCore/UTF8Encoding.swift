/// UTF-8 encoding of one scalar, for the places that build bytes from code points (JSON
/// `\u` escapes, Unicode normalization).
public enum UTF8Encoding {
    /// Writes the UTF-8 of `s` at `dst` (room for 4 bytes); returns its length (1 to 4).
    @inline(__always)
    public static func write(_ s: UInt32, _ dst: UnsafeMutablePointer<UInt8>) -> Int {
        switch s {
        case 0..<0x80: dst[0] = UInt8(s); return 1
        case 0x80..<0x800:
            dst[0] = UInt8(0xC0 | (s >> 6)); dst[1] = UInt8(0x80 | (s & 0x3F)); return 2
        case 0x800..<0x10000:
            dst[0] = UInt8(0xE0 | (s >> 12)); dst[1] = UInt8(0x80 | ((s >> 6) & 0x3F)); dst[2] = UInt8(0x80 | (s & 0x3F)); return 3
        default:
            dst[0] = UInt8(0xF0 | (s >> 18)); dst[1] = UInt8(0x80 | ((s >> 12) & 0x3F))
            dst[2] = UInt8(0x80 | ((s >> 6) & 0x3F)); dst[3] = UInt8(0x80 | (s & 0x3F)); return 4
        }
    }

    /// Appends the UTF-8 of `s` to `out`.
    @inline(__always)
    public static func append(_ s: UInt32, to out: inout [UInt8]) {
        if s < 0x80 { out.append(UInt8(s)); return }
        var four: UInt32 = 0
        let n = withUnsafeMutableBytes(of: &four) { write(s, $0.baseAddress!.assumingMemoryBound(to: UInt8.self)) }
        withUnsafeBytes(of: four) { out.append(contentsOf: $0.prefix(n)) }
    }
}
