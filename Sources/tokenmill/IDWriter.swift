/// Token ids as JSON lines: `[1,2,3]\n` per line. An id below 10^8 becomes eight digit
/// characters in one word (four two-digit pairs from a 200-byte table that stays in L1),
/// shifted past its leading zeros, with the comma after it: one 8-byte store. (A table of
/// every id's digits was slower: at 1.6 MB for o200k_base it missed the cache beside the
/// BPE tables.)
enum IDWriter {
    /// "00" ... "99" as little-endian pairs: the tens digit in the low byte.
    static let pairs: [UInt16] = {
        var t: [UInt16] = []
        for v in 0..<100 {
            let tens = UInt16(48 + v / 10), ones = UInt16(48 + v % 10)
            t.append(tens | ones << 8)
        }
        return t
    }()

    /// `ids[lineEnds[k-1]..<lineEnds[k]]` as line k.
    static func json(_ ids: [UInt32], lineEnds: [Int]) -> [UInt8] {
        let capacity = 11 * ids.count + 3 * lineEnds.count + 8
        return [UInt8](unsafeUninitializedCapacity: capacity) { out, count in
            pairs.withUnsafeBufferPointer { pairs in
                ids.withUnsafeBufferPointer { ids in
                    let base = UnsafeMutableRawPointer(out.baseAddress!)
                    let table = pairs.baseAddress!
                    var o = 0, i = 0
                    for end in lineEnds {
                        base.storeBytes(of: UInt8(ascii: "["), toByteOffset: o, as: UInt8.self)
                        o += 1
                        let first = i
                        while i < end { o = write(ids[i], base, o, table); i += 1 }
                        if i > first { o -= 1 }   // the last id's comma
                        base.storeBytes(of: UInt8(ascii: "]"), toByteOffset: o, as: UInt8.self)
                        base.storeBytes(of: UInt8(0x0A), toByteOffset: o + 1, as: UInt8.self)
                        o += 2
                    }
                    count = o
                }
            }
        }
    }

    /// `v` in decimal and a comma at `base + o` (room for 11 bytes); the offset after them.
    @inline(__always)
    static func write(_ v: UInt32, _ base: UnsafeMutableRawPointer, _ o: Int, _ table: UnsafePointer<UInt16>) -> Int {
        if v >= 100_000_000 { return writeLarge(v, base, o) }
        let hi = Int(v / 10_000), lo = Int(v % 10_000)
        let w0 = UInt64(table[hi / 100]), w1 = UInt64(table[hi % 100]) << 16
        let w2 = UInt64(table[lo / 100]) << 32, w3 = UInt64(table[lo % 100]) << 48
        let w = w0 | w1 | w2 | w3
        // Leading zeros are the low bytes whose digit is 0 (keep at least one digit).
        let digits = w &- 0x3030_3030_3030_3030
        let zeros = digits == 0 ? 7 : min(digits.trailingZeroBitCount >> 3, 7)
        let n = 8 - zeros
        let shifted = w >> UInt64(8 * zeros)
        if n < 8 {
            base.storeBytes(of: (shifted | UInt64(UInt8(ascii: ",")) << UInt64(8 * n)).littleEndian, toByteOffset: o, as: UInt64.self)
        } else {
            base.storeBytes(of: shifted.littleEndian, toByteOffset: o, as: UInt64.self)
            base.storeBytes(of: UInt8(ascii: ","), toByteOffset: o + 8, as: UInt8.self)
        }
        return o + n + 1
    }

    static func writeLarge(_ v: UInt32, _ base: UnsafeMutableRawPointer, _ o: Int) -> Int {
        var tmp: (UInt64, UInt64) = (0, 0)
        return withUnsafeMutableBytes(of: &tmp) { t in
            var x = v, n = 0
            repeat { t[15 - n] = UInt8(48 + x % 10); x /= 10; n += 1 } while x > 0
            (base + o).copyMemory(from: t.baseAddress! + 16 - n, byteCount: n)
            base.storeBytes(of: UInt8(ascii: ","), toByteOffset: o + n, as: UInt8.self)
            return o + n + 1
        }
    }
}
