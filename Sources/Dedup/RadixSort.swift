/// LSD radix sort of u64 values, 16 bits a pass (4 passes): the band buckets are sorted
/// arrays of (key << 32 | record), and a comparison sort of a million of them per band
/// was a tenth of the near-dedup pass.
func radixSort(_ a: inout [UInt64]) {
    let n = a.count
    if n < 256 { a.sort(); return }
    var tmp = [UInt64](repeating: 0, count: n)
    var counts = [Int](repeating: 0, count: 65536)
    a.withUnsafeMutableBufferPointer { src0 in
        tmp.withUnsafeMutableBufferPointer { dst0 in
            counts.withUnsafeMutableBufferPointer { c in
                var src = src0.baseAddress!, dst = dst0.baseAddress!
                for pass in 0..<4 {
                    let shift = UInt64(pass * 16)
                    for k in 0..<65536 { c[k] = 0 }
                    for i in 0..<n { c[Int((src[i] >> shift) & 0xFFFF)] += 1 }
                    var sum = 0
                    for k in 0..<65536 { let v = c[k]; c[k] = sum; sum += v }
                    for i in 0..<n {
                        let v = src[i]
                        let d = Int((v >> shift) & 0xFFFF)
                        dst[c[d]] = v
                        c[d] += 1
                    }
                    swap(&src, &dst)
                }
                // Four passes: the sorted data is back in the original buffer.
            }
        }
    }
}
