import TokenmillCore

/// The decompressed layout of one chunk (FORMAT.md 1.2): record count, record table,
/// tokens, padding to 4, document starts, loss-mask bits.
public enum ChunkEncoding {
    public static func encode(_ records: ArraySlice<SequenceRecord>, tokenWidth: Int) -> [UInt8] {
        var totalTokens = 0, totalDocs = 0, maskBytes = 0
        for r in records { totalTokens += r.tokens.count; totalDocs += r.docStarts.count; maskBytes += (r.tokens.count + 7) / 8 }
        let tokenEnd = 4 + 8 * records.count + tokenWidth * totalTokens
        let padEnd = (tokenEnd + 3) & ~3
        let size = padEnd + 4 * totalDocs + maskBytes
        // Stores into a buffer of the final size (zero-filled, so padding and unused mask
        // bits are zero): appending a token's bytes one call at a time was a fifth of the
        // write stage.
        return [UInt8](unsafeUninitializedCapacity: size) { buf, count in
            let raw = UnsafeMutableRawBufferPointer(buf)
            raw.initializeMemory(as: UInt8.self, repeating: 0)
            var o = 0
            func put32(_ v: UInt32) { raw.storeBytes(of: v.littleEndian, toByteOffset: o, as: UInt32.self); o += 4 }
            put32(UInt32(records.count))
            for r in records { put32(UInt32(r.tokens.count)); put32(UInt32(r.docStarts.count)) }
            for r in records {
                r.tokens.withUnsafeBufferPointer { t in
                    if tokenWidth == 2 {
                        for v in t { raw.storeBytes(of: UInt16(truncatingIfNeeded: v).littleEndian, toByteOffset: o, as: UInt16.self); o += 2 }
                    } else {
                        for v in t { raw.storeBytes(of: v.littleEndian, toByteOffset: o, as: UInt32.self); o += 4 }
                    }
                }
            }
            o = padEnd
            for r in records { for d in r.docStarts { put32(d) } }
            for r in records {
                r.lossMask.withUnsafeBufferPointer { m in
                    var i = 0
                    while i < m.count {
                        var byte: UInt8 = 0
                        let e = min(m.count, i + 8)
                        for t in i..<e where m[t] != 0 { byte |= 1 << UInt8(t - i) }
                        raw[o] = byte; o += 1
                        i = e
                    }
                }
            }
            precondition(o == size)
            count = size
        }
    }

    /// Parses and validates a decompressed chunk. Every count, offset, padding byte,
    /// unused mask bit and token id is checked; `nil` records mean "validate only".
    public static func decode(_ b: [UInt8], tokenWidth: Int, vocabSize: Int?, expectedRecords: Int, expectedTokens: Int) -> Result<[SequenceRecord], ChunkFailure> {
        var r = ByteReader(b)
        guard let count = r.u32(), Int(count) == expectedRecords, count >= 1 else {
            return .failure(ChunkFailure("record count does not match the footer (\(expectedRecords))"))
        }
        var n: [Int] = [], d: [Int] = []
        var sumN = 0, sumD = 0
        for _ in 0..<Int(count) {
            guard let a = r.u32(), let c = r.u32() else { return .failure(ChunkFailure("record table truncated")) }
            if a == 0 || c == 0 { return .failure(ChunkFailure("record with zero tokens or zero documents")) }
            n.append(Int(a)); d.append(Int(c)); sumN += Int(a); sumD += Int(c)
        }
        guard sumN == expectedTokens else { return .failure(ChunkFailure("token count \(sumN) differs from the footer's \(expectedTokens)")) }
        var maskTotal = 0
        for x in n { maskTotal += (x + 7) / 8 }
        let tokenStart = r.offset
        let padStart = tokenStart + tokenWidth * sumN
        let padEnd = (padStart + 3) & ~3
        let expectedSize = padEnd + 4 * sumD + maskTotal
        guard expectedSize == b.count else { return .failure(ChunkFailure("decompressed size \(b.count) differs from the layout's \(expectedSize)")) }
        for i in padStart..<padEnd where b[i] != 0 { return .failure(ChunkFailure("non-zero padding byte at \(i)")) }
        var records: [SequenceRecord] = []
        records.reserveCapacity(Int(count))
        var tokOff = tokenStart, docOff = padEnd, maskOff = padEnd + 4 * sumD
        let limit = vocabSize.map { UInt32(clamping: $0) } ?? UInt32.max
        return b.withUnsafeBytes { raw -> Result<[SequenceRecord], ChunkFailure> in
            for k in 0..<Int(count) {
                var tokens = [UInt32](repeating: 0, count: n[k])
                for t in 0..<n[k] {
                    let v: UInt32 = tokenWidth == 2
                        ? UInt32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: tokOff + 2 * t, as: UInt16.self)))
                        : UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: tokOff + 4 * t, as: UInt32.self))
                    if v >= limit { return .failure(ChunkFailure("record \(k): token id \(v) is not below the vocabulary size \(limit)")) }
                    tokens[t] = v
                }
                tokOff += tokenWidth * n[k]
                var starts = [UInt32](repeating: 0, count: d[k])
                for j in 0..<d[k] {
                    starts[j] = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: docOff + 4 * j, as: UInt32.self))
                    if j == 0 && starts[j] != 0 { return .failure(ChunkFailure("record \(k): first document start is not 0")) }
                    if j > 0 && starts[j] <= starts[j - 1] { return .failure(ChunkFailure("record \(k): document starts not increasing")) }
                    if Int(starts[j]) >= n[k] { return .failure(ChunkFailure("record \(k): document start out of bounds")) }
                }
                docOff += 4 * d[k]
                var mask = [UInt8](repeating: 0, count: n[k])
                for t in 0..<n[k] { mask[t] = (b[maskOff + t / 8] >> UInt8(t & 7)) & 1 }
                let used = n[k] & 7
                if used != 0 && b[maskOff + n[k] / 8] >> UInt8(used) != 0 {
                    return .failure(ChunkFailure("record \(k): unused loss-mask bits are not zero"))
                }
                maskOff += (n[k] + 7) / 8
                records.append(SequenceRecord(tokens: tokens, lossMask: mask, docStarts: starts))
            }
            return .success(records)
        }
    }
}

public struct ChunkFailure: Error {
    public var message: String
    init(_ m: String) { message = m }
}

/// Bounds-checked little-endian reads: every read returns nil past the end.
struct ByteReader {
    let b: [UInt8]
    var offset = 0
    init(_ b: [UInt8], offset: Int = 0) { self.b = b; self.offset = offset }

    mutating func u32() -> UInt32? {
        guard offset >= 0, offset + 4 <= b.count else { return nil }
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(b[offset + i]) << (8 * UInt32(i)) }
        offset += 4
        return v
    }

    mutating func u64() -> UInt64? {
        guard offset >= 0, offset + 8 <= b.count else { return nil }
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(b[offset + i]) << (8 * UInt64(i)) }
        offset += 8
        return v
    }

    mutating func u16() -> UInt16? {
        guard offset >= 0, offset + 2 <= b.count else { return nil }
        let v = UInt16(b[offset]) | UInt16(b[offset + 1]) << 8
        offset += 2
        return v
    }
}
