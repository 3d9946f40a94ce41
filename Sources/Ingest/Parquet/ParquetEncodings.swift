/// The value encodings beyond PLAIN and dictionary that current writers emit on request
/// (parquet-format's Encodings.md): DELTA_BINARY_PACKED, DELTA_LENGTH_BYTE_ARRAY,
/// DELTA_BYTE_ARRAY and BYTE_STREAM_SPLIT. Every count and length comes from the file and
/// is checked against the page before it is used.
enum ParquetEncodings {
    /// An unsigned LEB128 varint at `p` (advanced past it).
    static func uleb(_ b: UnsafeBufferPointer<UInt8>, _ p: inout Int, end: Int) throws(ParquetError) -> UInt64 {
        var v: UInt64 = 0, shift: UInt64 = 0
        while true {
            guard p < end else { throw ParquetError("DELTA header cut off") }
            let byte = b[p]; p += 1
            v |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return v }
            shift += 7
            guard shift < 64 else { throw ParquetError("DELTA varint too long") }
        }
    }

    static func zigzag(_ v: UInt64) -> Int64 { Int64(bitPattern: (v >> 1) ^ (0 &- (v & 1))) }

    /// DELTA_BINARY_PACKED: a header (values per block, miniblocks per block, total count,
    /// first value), then blocks of (min delta, one bit width a miniblock, the miniblocks'
    /// bit-packed deltas). Appends the values (wrapping 64-bit arithmetic; INT32 callers
    /// truncate) and returns where the encoding ends, which DELTA_LENGTH_BYTE_ARRAY needs.
    @discardableResult
    static func deltaBinaryPacked(_ b: UnsafeBufferPointer<UInt8>, start: Int, end: Int, into out: inout [Int64]) throws(ParquetError) -> Int {
        var p = start
        let blockSize = try uleb(b, &p, end: end)
        let miniblocks = try uleb(b, &p, end: end)
        let total = try uleb(b, &p, end: end)
        var value = zigzag(try uleb(b, &p, end: end))
        guard blockSize > 0, blockSize % 128 == 0, miniblocks > 0, blockSize % miniblocks == 0, blockSize <= 1 << 20 else {
            throw ParquetError("DELTA_BINARY_PACKED header: block of \(blockSize) values in \(miniblocks) miniblocks")
        }
        let perMini = Int(blockSize / miniblocks)
        guard perMini % 32 == 0 else { throw ParquetError("DELTA_BINARY_PACKED miniblocks of \(perMini) values (not a multiple of 32)") }
        // Every value after the first takes at least a bit's share of a byte of a miniblock
        // header: a count the page cannot hold is a damaged header.
        guard total <= UInt64(end - start) &* 64 &+ 1 else { throw ParquetError("DELTA_BINARY_PACKED claims \(total) values in \(end - start) bytes") }
        let count = Int(total)
        if count == 0 { return p }
        out.reserveCapacity(out.count + count)
        out.append(value)
        var left = count - 1
        var widths = [Int](repeating: 0, count: Int(miniblocks))
        while left > 0 {
            let minDelta = zigzag(try uleb(b, &p, end: end))
            guard end - p >= widths.count else { throw ParquetError("DELTA_BINARY_PACKED bit widths cut off") }
            for k in widths.indices { widths[k] = Int(b[p + k]) }
            p += widths.count
            for width in widths where left > 0 {
                guard width <= 64 else { throw ParquetError("DELTA_BINARY_PACKED bit width \(width) over 64") }
                // A miniblock is always whole (padded), even the last one used.
                let bytes = perMini * width / 8
                guard end - p >= bytes else { throw ParquetError("DELTA_BINARY_PACKED miniblock cut off") }
                let take = min(perMini, left)
                if width == 0 {
                    for _ in 0..<take { value = value &+ minDelta; out.append(value) }
                } else {
                    let mask: UInt64 = width == 64 ? ~0 : (1 << UInt64(width)) - 1
                    var bit = 0
                    for _ in 0..<take {
                        let byte = p + bit >> 3, off = bit & 7
                        // Up to 64 + 7 bits: gather 9 bytes at most.
                        var lo: UInt64 = 0
                        let span = min((off + width + 7) / 8, 9)
                        for k in 0..<min(span, 8) { lo |= UInt64(b[byte + k]) << (8 * UInt64(k)) }
                        var d = lo >> UInt64(off)
                        if span == 9 { d |= UInt64(b[byte + 8]) << UInt64(64 - off) }
                        value = value &+ minDelta &+ Int64(bitPattern: d & mask)
                        out.append(value)
                        bit += width
                    }
                }
                p += bytes
                left -= take
            }
        }
        return p
    }

    /// DELTA_LENGTH_BYTE_ARRAY: the lengths (DELTA_BINARY_PACKED), then the bytes back to
    /// back. Returns the values and where they end.
    static func deltaLengthByteArray(_ b: UnsafeBufferPointer<UInt8>, start: Int, end: Int) throws(ParquetError) -> (values: [Range<Int>], end: Int) {
        var lengths: [Int64] = []
        var p = try deltaBinaryPacked(b, start: start, end: end, into: &lengths)
        var out: [Range<Int>] = []
        out.reserveCapacity(lengths.count)
        for n in lengths {
            guard n >= 0, n <= Int64(end - p) else { throw ParquetError("DELTA_LENGTH_BYTE_ARRAY value of \(n) bytes runs past the page") }
            out.append(p..<(p + Int(n)))
            p += Int(n)
        }
        return (out, p)
    }

    /// DELTA_BYTE_ARRAY: prefix lengths (DELTA_BINARY_PACKED), then the suffixes
    /// (DELTA_LENGTH_BYTE_ARRAY); value i is the first `prefix[i]` bytes of value i - 1
    /// followed by suffix i.
    static func deltaByteArray(_ b: UnsafeBufferPointer<UInt8>, start: Int, end: Int) throws(ParquetError) -> [[UInt8]] {
        var prefixes: [Int64] = []
        let p = try deltaBinaryPacked(b, start: start, end: end, into: &prefixes)
        let suffixes = try deltaLengthByteArray(b, start: p, end: end).values
        guard suffixes.count == prefixes.count else {
            throw ParquetError("DELTA_BYTE_ARRAY: \(prefixes.count) prefix lengths but \(suffixes.count) suffixes")
        }
        var out: [[UInt8]] = []
        out.reserveCapacity(prefixes.count)
        var previous: [UInt8] = []
        for (k, n) in prefixes.enumerated() {
            guard n >= 0, n <= Int64(previous.count) else { throw ParquetError("DELTA_BYTE_ARRAY prefix of \(n) bytes, the previous value has \(previous.count)") }
            var v = Array(previous[0..<Int(n)])
            v.append(contentsOf: UnsafeBufferPointer(rebasing: b[suffixes[k]]))
            out.append(v)
            previous = v
        }
        return out
    }

    /// BYTE_STREAM_SPLIT: `count` values of `width` bytes stored as `width` streams (byte
    /// j of every value, then byte j + 1, ...); returns them re-interleaved, value after value.
    static func byteStreamSplit(_ b: UnsafeBufferPointer<UInt8>, start: Int, end: Int, count: Int, width: Int) throws(ParquetError) -> [UInt8] {
        guard width > 0, count <= (end - start) / width else { throw ParquetError("BYTE_STREAM_SPLIT: \(count) values of \(width) bytes run past the page") }
        var out = [UInt8](repeating: 0, count: count * width)
        for j in 0..<width {
            let stream = start + j * count
            for k in 0..<count { out[k * width + j] = b[stream + k] }
        }
        return out
    }
}
