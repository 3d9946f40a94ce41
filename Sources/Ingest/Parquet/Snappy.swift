/// Raw Snappy decompression (the block format Parquet's SNAPPY codec uses; no framing).
///
/// Written here rather than linked because the format is small and the decoder must
/// distrust its input: every literal and copy is checked against both buffers, and the
/// output must come to exactly the length the stream (and the page header) promise.
enum Snappy {
    static func decompress(_ input: UnsafeBufferPointer<UInt8>, expected: Int) throws(ParquetError) -> [UInt8] {
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
        guard length == UInt64(expected) else {
            throw ParquetError("snappy: stream holds \(length) bytes, the page header says \(expected)")
        }
        let n = Int(length)
        var out = [UInt8](repeating: 0, count: n)
        var o = 0
        try out.withUnsafeMutableBufferPointer { (dst: inout UnsafeMutableBufferPointer<UInt8>) throws(ParquetError) in
            while p < input.count {
                let tag = input[p]; p += 1
                switch tag & 3 {
                case 0:   // literal
                    var len = Int(tag >> 2)
                    if len >= 60 {
                        let extra = len - 59
                        guard input.count - p >= extra else { throw ParquetError("snappy: literal length cut off") }
                        len = 0
                        for k in 0..<extra { len |= Int(input[p + k]) << (8 * k) }
                        p += extra
                    }
                    len += 1
                    guard input.count - p >= len, n - o >= len else { throw ParquetError("snappy: literal runs past the end") }
                    (dst.baseAddress! + o).update(from: input.baseAddress! + p, count: len)
                    p += len; o += len
                default:
                    let len: Int, offset: Int
                    switch tag & 3 {
                    case 1:
                        guard p < input.count else { throw ParquetError("snappy: copy cut off") }
                        len = 4 + Int((tag >> 2) & 7)
                        offset = Int(tag >> 5) << 8 | Int(input[p]); p += 1
                    case 2:
                        guard input.count - p >= 2 else { throw ParquetError("snappy: copy cut off") }
                        len = 1 + Int(tag >> 2)
                        offset = Int(input[p]) | Int(input[p + 1]) << 8; p += 2
                    default:
                        guard input.count - p >= 4 else { throw ParquetError("snappy: copy cut off") }
                        len = 1 + Int(tag >> 2)
                        offset = Int(input[p]) | Int(input[p + 1]) << 8 | Int(input[p + 2]) << 16 | Int(input[p + 3]) << 24; p += 4
                    }
                    guard offset > 0, offset <= o else { throw ParquetError("snappy: copy from before the start") }
                    guard n - o >= len else { throw ParquetError("snappy: copy runs past the end") }
                    let base = dst.baseAddress!
                    if offset >= len {
                        (base + o).update(from: base + o - offset, count: len)
                    } else {
                        // Overlapping copy repeats the last `offset` bytes: byte by byte.
                        for k in 0..<len { base[o + k] = base[o - offset + k] }
                    }
                    o += len
                }
            }
        }
        guard o == n else { throw ParquetError("snappy: stream ends after \(o) of \(n) bytes") }
        return out
    }
}
