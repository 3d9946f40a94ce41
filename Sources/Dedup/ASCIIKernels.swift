import CIntrinsics

/// Tables the C kernels of `asciitext.h` read (the exact key's and the shingler's ASCII
/// runs, 16 bytes a step).
enum ASCIIKernels {
    /// `pack[m]`: the positions of the set bits of the byte m, in order, one a byte of the
    /// word from the lowest; the bytes after them 0x80 (a shuffle writes 0 there).
    static let pack: UnsafePointer<UInt64> = {
        let t = UnsafeMutablePointer<UInt64>.allocate(capacity: 256)
        for m in 0..<256 {
            var w: UInt64 = 0x8080_8080_8080_8080
            var k = 0
            for bit in 0..<8 where m & (1 << bit) != 0 {
                w = (w & ~(0xFF << UInt64(8 * k))) | UInt64(bit) << UInt64(8 * k)
                k += 1
            }
            t[m] = w
        }
        return UnsafePointer(t)
    }()

    /// The nibble table of a set of ASCII bytes: bit (b >> 4) of entry b & 15 is set when
    /// b is in it.
    static func nibbleTable(_ member: (UInt8) -> Bool) -> UnsafePointer<UInt8> {
        let t = UnsafeMutablePointer<UInt8>.allocate(capacity: 16)
        t.initialize(repeating: 0, count: 16)
        for b in 0..<128 where member(UInt8(b)) { t[b & 15] |= UInt8(1 << (b >> 4)) }
        return UnsafePointer(t)
    }

    /// ASCII whitespace as the shingler counts it (space, \t \n \v \f \r).
    static let shinglerSpace = nibbleTable(Shingler.isASCIISpace)
}
