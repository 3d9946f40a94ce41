import CBrotli
import CLZ4
import CZlib
import CZstd

/// Page-level building blocks: codecs and the RLE/bit-packed hybrid that carries
/// repetition levels, definition levels and dictionary indices.
enum ParquetPages {
    /// Decompresses one page body into exactly `expected` bytes.
    static func decompress(codec: Int32, _ input: UnsafeBufferPointer<UInt8>, expected: Int) throws(ParquetError) -> PageBytes {
        // A damaged header must not make us allocate gigabytes: no codec we read expands
        // more than this (zstd's best case on a page of one repeated byte is ~1:30000,
        // which no real text column reaches).
        if codec != 0 && expected > input.count &* 8192 &+ (1 << 20) {
            throw ParquetError("page claims \(expected) bytes from \(input.count) compressed; the header is damaged")
        }
        // An empty page body (a v2 page of nulls only, or no values) holds nothing to
        // decompress, whatever the codec.
        if expected == 0 && input.isEmpty { return PageBytes(borrowing: input) }
        switch codec {
        case 0:
            // Read where it lies (the file's mapping outlives the row group's decoding).
            guard input.count == expected else { throw ParquetError("uncompressed page of \(input.count) bytes, header says \(expected)") }
            return PageBytes(borrowing: input)
        case 1:
            return try PageBytes(count: expected) { (dst) throws(ParquetError) in try Snappy.decompress(input, into: dst) }
        case 2:
            return try PageBytes(count: expected) { (dst) throws(ParquetError) in try inflate(input, into: dst) }
        case 6:
            return try PageBytes(count: expected) { (dst) throws(ParquetError) in
                // zstd writes every byte it reports; a short result is an error.
                let n = ZSTD_decompress(dst.baseAddress, expected, input.baseAddress, input.count)
                if ZSTD_isError(n) != 0 { throw ParquetError("zstd: \(String(cString: ZSTD_getErrorName(n)))") }
                guard n == expected else { throw ParquetError("zstd page gave \(n) bytes, header says \(expected)") }
            }
        case 4:
            return try PageBytes(count: expected) { (dst) throws(ParquetError) in try brotli(input, into: dst) }
        case 5:
            // "LZ4": Hadoop's framing in practice (parquet-mr), though some writers put a
            // bare LZ4 block there; Arrow reads both, trying Hadoop's first.
            return try PageBytes(count: expected) { (dst) throws(ParquetError) in
                if hadoopLZ4(input, into: dst) { return }
                try lz4Block(input, into: dst, codec: "LZ4")
            }
        case 7:
            return try PageBytes(count: expected) { (dst) throws(ParquetError) in try lz4Block(input, into: dst, codec: "LZ4_RAW") }
        default:
            throw ParquetError("compression codec \(ParquetNames.codec(codec)) is not supported (rewrite the file with snappy, gzip or zstd, e.g. pyarrow.parquet.write_table(..., compression=\"zstd\"))", unsupported: true)
        }
    }

    /// One LZ4 block (LZ4_RAW) that decompresses to exactly `dst.count` bytes.
    static func lz4Block(_ input: UnsafeBufferPointer<UInt8>, into dst: UnsafeMutableBufferPointer<UInt8>, codec: String) throws(ParquetError) {
        let expected = dst.count
        guard input.count <= Int(Int32.max), expected <= Int(Int32.max) else { throw ParquetError("\(codec) page too large") }
        let n = input.withMemoryRebound(to: CChar.self) { src in
            dst.withMemoryRebound(to: CChar.self) { d in LZ4_decompress_safe(src.baseAddress, d.baseAddress, Int32(input.count), Int32(expected)) }
        }
        guard n == Int32(expected) else {
            throw ParquetError(n < 0 ? "\(codec): the block is damaged" : "\(codec) page gave \(n) bytes, header says \(expected)")
        }
    }

    /// Hadoop's LZ4 framing: blocks of [u32 big-endian decompressed size][u32 big-endian
    /// compressed size][LZ4 block], back to back, filling the page exactly; false when the
    /// page is not framed that way.
    static func hadoopLZ4(_ input: UnsafeBufferPointer<UInt8>, into dst: UnsafeMutableBufferPointer<UInt8>) -> Bool {
        func be32(_ p: Int) -> Int { Int(input[p]) << 24 | Int(input[p + 1]) << 16 | Int(input[p + 2]) << 8 | Int(input[p + 3]) }
        let expected = dst.count
        var p = 0, o = 0
        while p < input.count {
            guard input.count - p >= 8 else { return false }
            let raw = be32(p), packed = be32(p + 4)
            p += 8
            guard packed <= input.count - p, raw <= expected - o else { return false }
            let n = input.withMemoryRebound(to: CChar.self) { src in
                dst.withMemoryRebound(to: CChar.self) { dd in LZ4_decompress_safe(src.baseAddress! + p, dd.baseAddress! + o, Int32(packed), Int32(raw)) }
            }
            guard n == Int32(raw) else { return false }
            p += packed; o += raw
        }
        return o == expected
    }

    /// A Brotli stream of exactly `dst.count` bytes.
    static func brotli(_ input: UnsafeBufferPointer<UInt8>, into dst: UnsafeMutableBufferPointer<UInt8>) throws(ParquetError) {
        let expected = dst.count
        var size = expected
        let result = BrotliDecoderDecompress(input.count, input.baseAddress, &size, dst.baseAddress)
        guard result == BROTLI_DECODER_RESULT_SUCCESS else { throw ParquetError("brotli: the stream is damaged or longer than the header's \(expected) bytes") }
        guard size == expected else { throw ParquetError("brotli page gave \(size) bytes, header says \(expected)") }
    }

    /// GZIP pages: a gzip (or, leniently, zlib) stream of exactly `dst.count` bytes.
    static func inflate(_ input: UnsafeBufferPointer<UInt8>, into dst: UnsafeMutableBufferPointer<UInt8>) throws(ParquetError) {
        var stream = z_stream()
        // 32 + MAX_WBITS: accept gzip or zlib headers.
        guard inflateInit2_(&stream, 32 + MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw ParquetError("zlib could not start")
        }
        defer { inflateEnd(&stream) }
        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
        stream.avail_in = UInt32(input.count)
        stream.next_out = dst.baseAddress
        stream.avail_out = UInt32(dst.count)
        var status = CZlib.inflate(&stream, Z_FINISH)
        // A page of several gzip members (`cat a.gz b.gz`, as some writers emit): each
        // member ends the stream; go on with the next while input is left.
        while status == Z_STREAM_END && stream.avail_in > 0 && stream.avail_out > 0 {
            guard inflateReset(&stream) == Z_OK else { break }
            status = CZlib.inflate(&stream, Z_FINISH)
        }
        guard status == Z_STREAM_END, stream.avail_out == 0 else {
            let msg = stream.msg.map { String(cString: $0) } ?? (status == Z_STREAM_END ? "short page" : "stream damaged or cut off")
            throw ParquetError("gzip: \(msg)")
        }
    }

    static func crc32(_ data: UnsafeBufferPointer<UInt8>) -> UInt32 {
        UInt32(truncatingIfNeeded: CZlib.crc32(0, data.baseAddress, UInt32(data.count)))
    }

    /// Bits needed for values up to `max` (level bit width).
    static func bitWidth(_ max: Int) -> Int { max == 0 ? 0 : Int.bitWidth - max.leadingZeroBitCount }

    /// The RLE/bit-packed hybrid: `count` values of `width` bits from `buf[start..<end]`,
    /// appended to `out`. Returns where the runs it used end.
    @discardableResult
    static func hybrid<T: FixedWidthInteger>(_ buf: UnsafeBufferPointer<UInt8>, start: Int, end: Int, width: Int, count: Int,
                                              into out: inout [T]) throws(ParquetError) -> Int {
        guard width <= 32 else { throw ParquetError("bit width \(width) over 32") }
        var p = start, left = count
        let valueBytes = (width + 7) / 8
        let mask: UInt64 = width == 64 ? ~0 : (1 << UInt64(width)) - 1
        while left > 0 {
            // Run header: varint.
            var header: UInt64 = 0, shift: UInt64 = 0
            while true {
                guard p < end else { throw ParquetError("level or index data ends early") }
                let b = buf[p]; p += 1
                header |= UInt64(b & 0x7F) << shift
                if b & 0x80 == 0 { break }
                shift += 7
                if shift > 35 { throw ParquetError("run header varint too long") }
            }
            if header & 1 == 0 {
                let run = Int(header >> 1)
                guard run > 0 else { throw ParquetError("empty RLE run") }
                guard end - p >= valueBytes else { throw ParquetError("RLE run value cut off") }
                var v: UInt64 = 0
                for k in 0..<valueBytes { v |= UInt64(buf[p + k]) << (8 * UInt64(k)) }
                p += valueBytes
                guard v <= mask, let value = T(exactly: v) else { throw ParquetError("RLE value \(v) wider than \(width) bits") }
                let take = min(run, left)
                out.append(contentsOf: repeatElement(value, count: take))
                left -= take
            } else {
                let groups = Int(header >> 1)
                guard groups > 0 else { throw ParquetError("empty bit-packed run") }
                let values = min(groups * 8, left)
                // Writers pad the last group; accept a run cut after the values it needs.
                let needBytes = (values * width + 7) / 8
                guard end - p >= needBytes else { throw ParquetError("bit-packed run cut off") }
                if width == 0 {
                    out.append(contentsOf: repeatElement(0, count: values))
                } else {
                    var bit = 0
                    for _ in 0..<values {
                        let byte = p + bit >> 3, off = UInt64(bit & 7)
                        var word: UInt64 = 0
                        let span = min((Int(off) + width + 7) / 8, end - byte)
                        for k in 0..<span { word |= UInt64(buf[byte + k]) << (8 * UInt64(k)) }
                        out.append(T(truncatingIfNeeded: (word >> off) & mask))
                        bit += width
                    }
                }
                p += min(groups * width, end - p)
                left -= values
            }
        }
        return p
    }

    /// The deprecated BIT_PACKED level encoding: `count` values, most significant bit
    /// first, no run headers.
    static func bitPackedMSB(_ buf: UnsafeBufferPointer<UInt8>, start: Int, end: Int, width: Int, count: Int,
                             into out: inout [UInt8]) throws(ParquetError) -> Int {
        let bytes = (count * width + 7) / 8
        guard end - start >= bytes else { throw ParquetError("bit-packed levels cut off") }
        var bit = 0
        for _ in 0..<count {
            var v = 0
            for _ in 0..<width {
                let b = buf[start + bit >> 3] >> (7 - UInt8(bit & 7)) & 1
                v = v << 1 | Int(b); bit += 1
            }
            out.append(UInt8(truncatingIfNeeded: v))
        }
        return start + bytes
    }
}
