/// Token ids as JSON lines: `[1,2,3]\n` per line. An id is written with 8-byte stores
/// from two small tables (`write`). (A table of every id's digits was slower: at 1.6 MB
/// for o200k_base it missed the cache beside the BPE tables. Eight digits built from
/// two-digit pairs and shifted past the leading zeros took ~49 instructions an id, 7% of
/// `encode`'s on cl100k_base; the tables take ~16. Four ids at a time in AVX2 registers,
/// then one 8-byte store each, ran ~2.15 ns an id against the tables' ~1.96 with every
/// table in cache.)
public enum IDWriter {
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
    public static func json(_ ids: [UInt32], lineEnds: [Int]) -> [UInt8] {
        ids.withUnsafeBufferPointer { json($0, lineEnds: lineEnds) }
    }

    public static func json(_ ids: UnsafeBufferPointer<UInt32>, lineEnds: [Int]) -> [UInt8] {
        let capacity = 11 * ids.count + 3 * lineEnds.count + 16
        return [UInt8](unsafeUninitializedCapacity: capacity) { out, count in
            pairs.withUnsafeBufferPointer { pairs in
              small.withUnsafeBufferPointer { small in
               three.withUnsafeBufferPointer { three in
                let base = UnsafeMutableRawPointer(out.baseAddress!)
                let table = pairs.baseAddress!, smallTable = small.baseAddress!, threeTable = three.baseAddress!
                var o = 0, i = 0
                for end in lineEnds {
                    base.storeBytes(of: UInt8(ascii: "["), toByteOffset: o, as: UInt8.self)
                    o += 1
                    let first = i
                    while i < end { o = write(ids[i], base, o, table, smallTable, threeTable); i &+= 1 }
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
    }

    /// Numbers below 10,000: the digits and a comma in the low bytes, their count (comma
    /// included) in the top byte. `write` reads only its first thousand entries for an id
    /// below 10^6 (the id below 1,000, or the id's thousands), 8 KB that stay in L1/L2
    /// beside the BPE tables.
    /// (Built from the digits arithmetically: through `String(v)` it took ~1 ms of every
    /// run's start.)
    static let small: [UInt64] = [UInt64](unsafeUninitializedCapacity: 10_000) { t, count in
        for v in 0..<10_000 {
            let n = v < 10 ? 1 : v < 100 ? 2 : v < 1000 ? 3 : 4
            var w = UInt64(n + 1) << 56 | UInt64(UInt8(ascii: ",")) << UInt64(8 * n)
            var x = v
            for k in stride(from: n - 1, through: 0, by: -1) { w |= UInt64(48 + x % 10) << UInt64(8 * k); x /= 10 }
            t[v] = w
        }
        count = 10_000
    }

    /// "000," ... "999," as little-endian words (4 KB).
    static let three: [UInt32] = (0..<1000).map { (v: Int) -> UInt32 in
        let hundreds = UInt32(48 + v / 100), tens = UInt32(48 + v / 10 % 10), ones = UInt32(48 + v % 10)
        return hundreds | tens << 8 | ones << 16 | UInt32(UInt8(ascii: ",")) << 24
    }

    /// `v` in decimal and a comma at `base + o` (room for 11 bytes, and 4 more that may be
    /// scribbled past the end); the offset after them.
    /// Below 10^7 (every id of the built-in vocabularies) without a branch on the size: an
    /// id below 10^3 or not is a coin toss on real text, and a branch on it would
    /// mispredict that often. The high part (the whole id below 10^3, else the digits above
    /// the last three) comes from `small`; the last three digits and a comma from `three`
    /// are stored over its comma when the id has them, and otherwise just past the end,
    /// where the next write (an id, `]`, `[`) covers them. (The split was at 10^4, with the
    /// ids 1,000-9,999 read whole from `small`'s 72 KB above its first thousand entries:
    /// the BPE tables evict them between chunks, and the misses made the writer ~3.2 ns an
    /// id against ~2.5 split at 10^3, in a benchmark that evicts the cache between chunks
    /// as the encoder does.)
    @inline(__always)
    static func write(_ v: UInt32, _ base: UnsafeMutableRawPointer, _ o: Int, _ table: UnsafePointer<UInt16>, _ small: UnsafePointer<UInt64>,
                      _ three: UnsafePointer<UInt32>) -> Int {
        if v < 10_000_000 {
            let hi = v / 1000, lo = Int(truncatingIfNeeded: v &- hi &* 1000)
            let big = v >= 1000 ? 1 : 0
            let e = small[Int(truncatingIfNeeded: big != 0 ? hi : v)]
            base.storeBytes(of: e.littleEndian, toByteOffset: o, as: UInt64.self)
            let end = o &+ Int(truncatingIfNeeded: e >> 56)
            base.storeBytes(of: three[lo].littleEndian, toByteOffset: end &- big, as: UInt32.self)
            return end &+ 3 &* big
        }
        if v >= 100_000_000 { return writeLarge(v, base, o) }
        let hi = v / 10_000, lo = Int(v - hi * 10_000)
        let e = small[Int(hi)]
        base.storeBytes(of: e.littleEndian, toByteOffset: o, as: UInt64.self)
        let at = o + Int(e >> 56) - 1
        let w = UInt64(table[lo / 100]) | UInt64(table[lo % 100]) << 16 | UInt64(UInt8(ascii: ",")) << 32
        base.storeBytes(of: w.littleEndian, toByteOffset: at, as: UInt64.self)
        return at + 5
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
