/// Raw Snappy decompression (the block format Parquet's SNAPPY codec uses; no framing).
///
/// Written here rather than linked because the format is small and the decoder must
/// distrust its input: every literal and copy is checked against both buffers, and the
/// output must come to exactly the length the stream (and the page header) promise.
enum Snappy {
    /// Decompresses a stream that must hold exactly `dst.count` bytes into `dst`.
    static func decompress(_ input: UnsafeBufferPointer<UInt8>, into dst: UnsafeMutableBufferPointer<UInt8>) throws(ParquetError) {
        var p = 0
        // Preamble: the uncompressed length as a varint.
        var length: UInt64 = 0, shift: UInt64 = 0
        while true {
            guard p < input.count else { throw ParquetError("snappy: stream ends in its length") }
            let b = input[p]; p += 1
            length |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { break }
            shift += 7
            if shift > 35 { throw ParquetError("snappy: length varint too long") }
        }
        guard length == UInt64(dst.count) else {
            throw ParquetError("snappy: stream holds \(length) bytes, the page header says \(dst.count)")
        }
        let n = Int(length)
        var o = 0
        // Every byte up to `o` is written by a literal or a copy of written bytes, and the
        // result counts only when `o` reaches `n`.
        try decode(input, from: p, into: dst, n: n, o: &o)
        guard o == n else { throw ParquetError("snappy: stream ends after \(o) of \(n) bytes") }
    }

    /// The same, as an array (tests).
    static func decompress(_ input: UnsafeBufferPointer<UInt8>, expected: Int) throws(ParquetError) -> [UInt8] {
        let page = try PageBytes(count: expected) { (dst) throws(ParquetError) in try decompress(input, into: dst) }
        return Array(page.bytes)
    }

    static func decode(_ input: UnsafeBufferPointer<UInt8>, from start: Int, into dst: UnsafeMutableBufferPointer<UInt8>, n: Int,
                       o: inout Int) throws(ParquetError) {
        var p = start
        do {
            guard let base = dst.baseAddress, let src = input.baseAddress else { return }
            let m = input.count
            while p < m {
                let tag = src[p]; p += 1
                if tag & 3 == 0 {   // literal
                    var len = Int(tag >> 2) + 1
                    // Fast path: a short literal with 16 bytes of slack on both sides is
                    // copied as two 8-byte words (the overshoot is overwritten later).
                    if len <= 16 && m - p >= 16 && n - o >= 16 {
                        copy8(base + o, src + p); copy8(base + o + 8, src + p + 8)
                        p += len; o += len
                        continue
                    }
                    if len > 60 {
                        let extra = len - 60
                        guard m - p >= extra else { throw ParquetError("snappy: literal length cut off") }
                        len = 0
                        for k in 0..<extra { len |= Int(src[p + k]) << (8 * k) }
                        p += extra
                        len += 1
                    }
                    guard m - p >= len, n - o >= len else { throw ParquetError("snappy: literal runs past the end") }
                    (base + o).update(from: src + p, count: len)
                    p += len; o += len
                    continue
                }
                let len: Int, offset: Int
                switch tag & 3 {
                case 1:
                    guard p < m else { throw ParquetError("snappy: copy cut off") }
                    len = 4 + Int((tag >> 2) & 7)
                    offset = Int(tag >> 5) << 8 | Int(src[p]); p += 1
                case 2:
                    guard m - p >= 2 else { throw ParquetError("snappy: copy cut off") }
                    len = 1 + Int(tag >> 2)
                    offset = Int(src[p]) | Int(src[p + 1]) << 8; p += 2
                default:
                    guard m - p >= 4 else { throw ParquetError("snappy: copy cut off") }
                    len = 1 + Int(tag >> 2)
                    offset = Int(src[p]) | Int(src[p + 1]) << 8 | Int(src[p + 2]) << 16 | Int(src[p + 3]) << 24; p += 4
                }
                guard offset > 0, offset <= o else { throw ParquetError("snappy: copy from before the start") }
                guard n - o >= len else { throw ParquetError("snappy: copy runs past the end") }
                if offset >= 8 && n - o >= len + 8 {
                    // 8 bytes at a time: each word reads only bytes already written
                    // (offset >= 8), and the overshoot stays inside the buffer.
                    var k = 0
                    while k < len { copy8(base + o + k, base + o - offset + k); k += 8 }
                } else {
                    // Overlapping copy repeats the last `offset` bytes: byte by byte.
                    for k in 0..<len { base[o + k] = base[o - offset + k] }
                }
                o += len
            }
        }
    }

    @inline(__always)
    static func copy8(_ to: UnsafeMutablePointer<UInt8>, _ from: UnsafePointer<UInt8>) {
        UnsafeMutableRawPointer(to).storeBytes(of: UnsafeRawPointer(from).loadUnaligned(as: UInt64.self), as: UInt64.self)
    }

    @inline(__always)
    static func copy8(_ to: UnsafeMutablePointer<UInt8>, _ from: UnsafeMutablePointer<UInt8>) {
        copy8(to, UnsafePointer(from))
    }
}
