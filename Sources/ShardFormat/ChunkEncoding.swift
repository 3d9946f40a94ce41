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
        // Stores into a buffer of the final size, every byte written once (the padding
        // zeroed): appending a token's bytes one call at a time was a fifth of the write
        // stage, and zero-filling the whole buffer first another pass over it.
        return [UInt8](unsafeUninitializedCapacity: size) { buf, count in
            let raw = UnsafeMutableRawBufferPointer(buf)
            var o = 0
            func put32(_ v: UInt32) { raw.storeBytes(of: v.littleEndian, toByteOffset: o, as: UInt32.self); o += 4 }
            put32(UInt32(records.count))
            for r in records { put32(UInt32(r.tokens.count)); put32(UInt32(r.docStarts.count)) }
            for r in records {
                r.tokens.withUnsafeBufferPointer { t in
                    if tokenWidth == 2 {
                        for v in t { raw.storeBytes(of: UInt16(truncatingIfNeeded: v).littleEndian, toByteOffset: o, as: UInt16.self); o += 2 }
                    } else {
                        #if _endian(little)
                        if let b = t.baseAddress { (raw.baseAddress! + o).copyMemory(from: b, byteCount: 4 * t.count) }
                        o += 4 * t.count
                        #else
                        for v in t { raw.storeBytes(of: v.littleEndian, toByteOffset: o, as: UInt32.self); o += 4 }
                        #endif
                    }
                }
            }
            while o < padEnd { raw[o] = 0; o += 1 }
            for r in records { for d in r.docStarts { put32(d) } }
            for r in records {
                r.lossMask.withUnsafeBufferPointer { m in
                    var i = 0
                    // Eight flags at a time when they are all 1 or all 0 (most of them:
                    // whole documents train, or whole prompts do not).
                    while i + 8 <= m.count {
                        let w = UnsafeRawPointer(m.baseAddress! + i).loadUnaligned(as: UInt64.self)
                        if w == 0x0101_0101_0101_0101 { raw[o] = 0xFF } else if w == 0 { raw[o] = 0 } else {
                            var byte: UInt8 = 0
                            for t in 0..<8 where m[i + t] != 0 { byte |= 1 << UInt8(t) }
                            raw[o] = byte
                        }
                        o += 1
                        i += 8
                    }
                    if i < m.count {
                        var byte: UInt8 = 0
                        for t in i..<m.count where m[t] != 0 { byte |= 1 << UInt8(t - i) }
                        raw[o] = byte; o += 1
                    }
                }
            }
            precondition(o == size)
            count = size
        }
    }

    /// Parses and validates a decompressed chunk into flat arrays (`into`'s are emptied
    /// first and reused, so a reader that decodes chunk after chunk allocates nothing
    /// once they have grown). Every count, offset, padding byte, unused mask bit and token
    /// id is checked; returns what breaks the layout, or nil.
    public static func decodeFlat(_ raw: UnsafeRawBufferPointer, tokenWidth: Int, vocabSize: Int?, expectedRecords: Int, expectedTokens: Int,
                                  into out: inout FlatChunk) -> ChunkFailure? {
        out.removeAll()
        func u32(_ at: Int) -> Int? { at + 4 <= raw.count ? Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self))) : nil }
        guard let count = u32(0), count == expectedRecords, count >= 1 else {
            return ChunkFailure("record count does not match the footer (\(expectedRecords))")
        }
        var sumN = 0, sumD = 0, maskTotal = 0
        out.recordStarts.reserveCapacity(count + 1)
        out.documentRecordStarts.reserveCapacity(count + 1)
        for k in 0..<count {
            guard let a = u32(4 + 8 * k), let c = u32(8 + 8 * k) else { return ChunkFailure("record table truncated") }
            if a == 0 || c == 0 { return ChunkFailure("record with zero tokens or zero documents") }
            sumN += a; sumD += c; maskTotal += (a + 7) / 8
            out.recordStarts.append(sumN); out.documentRecordStarts.append(sumD)
        }
        guard sumN == expectedTokens else { return ChunkFailure("token count \(sumN) differs from the footer's \(expectedTokens)") }
        let tokenStart = 4 + 8 * count
        let padStart = tokenStart + tokenWidth * sumN
        let padEnd = (padStart + 3) & ~3
        let expectedSize = padEnd + 4 * sumD + maskTotal
        guard expectedSize == raw.count else { return ChunkFailure("decompressed size \(raw.count) differs from the layout's \(expectedSize)") }
        for i in padStart..<padEnd where raw[i] != 0 { return ChunkFailure("non-zero padding byte at \(i)") }
        let limit = vocabSize.map { UInt32(clamping: $0) } ?? UInt32.max
        do {
            // Token ids: widened (or copied) in one pass, checked against the vocabulary by
            // their maximum (a branch-free loop the compiler vectorizes); only a chunk that
            // fails is searched for the record to name.
            var highest: UInt32 = 0
            out.tokens.append(contentsOf: repeatElement(0, count: sumN))
            out.tokens.withUnsafeMutableBufferPointer { t in
                if tokenWidth == 2 {
                    let src = raw.baseAddress! + tokenStart
                    for i in 0..<sumN {
                        let v = UInt32(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                        t[i] = v; highest = max(highest, v)
                    }
                } else {
                    UnsafeMutableRawBufferPointer(t).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[tokenStart..<padStart]))
                    for i in 0..<sumN { t[i] = UInt32(littleEndian: t[i]); highest = max(highest, t[i]) }
                }
            }
            if highest >= limit {
                let t = out.tokens.firstIndex { $0 >= limit }!
                let k = out.recordStarts.firstIndex { $0 > t }! - 1
                return ChunkFailure("record \(k): token id \(out.tokens[t]) is not below the vocabulary size \(limit)")
            }
            // Document starts, stored relative to their record, kept absolute (offsets into
            // `tokens`).
            out.documentStarts.reserveCapacity(sumD)
            var docOff = padEnd
            for k in 0..<Int(count) {
                let base = out.recordStarts[k], n = out.recordStarts[k + 1] - base
                var previous = -1
                for j in 0..<(out.documentRecordStarts[k + 1] - out.documentRecordStarts[k]) {
                    let s = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: docOff, as: UInt32.self)))
                    docOff += 4
                    if j == 0 && s != 0 { return ChunkFailure("record \(k): first document start is not 0") }
                    if j > 0 && s <= previous { return ChunkFailure("record \(k): document starts not increasing") }
                    if s >= n { return ChunkFailure("record \(k): document start out of bounds") }
                    out.documentStarts.append(base + s)
                    previous = s
                }
            }
            // Loss flags: each record's bits start on a byte of their own.
            var maskOff = docOff
            out.loss.append(contentsOf: repeatElement(0, count: sumN))
            let failure: ChunkFailure? = out.loss.withUnsafeMutableBufferPointer { m in
                for k in 0..<Int(count) {
                    let base = out.recordStarts[k], n = out.recordStarts[k + 1] - base
                    let full = n / 8
                    for byte in 0..<full {
                        let v = raw[maskOff + byte]
                        let o = base + 8 * byte
                        for bit in 0..<8 { m[o + bit] = (v >> UInt8(bit)) & 1 }
                    }
                    let used = n & 7
                    if used != 0 {
                        let v = raw[maskOff + full]
                        if v >> UInt8(used) != 0 { return ChunkFailure("record \(k): unused loss-mask bits are not zero") }
                        for bit in 0..<used { m[base + 8 * full + bit] = (v >> UInt8(bit)) & 1 }
                    }
                    maskOff += (n + 7) / 8
                }
                return nil
            }
            return failure
        }
    }
}

/// A decoded chunk in flat arrays: record k's tokens and loss flags are
/// `tokens[tokenRange(k)]`, its document starts (offsets into `tokens`)
/// `documentStarts[documentRange(k)]`.
public struct FlatChunk: Sendable {
    public var tokens: [UInt32] = []
    public var loss: [UInt8] = []
    /// Where each record's tokens start, and the total (one more entry than records).
    public var recordStarts: [Int] = [0]
    /// Every record's document starts, as offsets into `tokens`.
    public var documentStarts: [Int] = []
    /// Where each record's entries in `documentStarts` start (one more entry than records).
    public var documentRecordStarts: [Int] = [0]
    /// Where `ShardReader` decompresses the chunk before decoding it (kept with the
    /// arrays so that a reused `FlatChunk` reuses it too).
    public var scratch = ScratchBuffer()

    public init() {}
    public var count: Int { recordStarts.count - 1 }
    public func tokenRange(_ k: Int) -> Range<Int> { recordStarts[k]..<recordStarts[k + 1] }
    public func documentRange(_ k: Int) -> Range<Int> { documentRecordStarts[k]..<documentRecordStarts[k + 1] }

    /// The records as `SequenceRecord`s (one allocation a record's arrays: readers that
    /// stream keep the flat arrays).
    public var records: [SequenceRecord] {
        (0..<count).map { k in
            let t = tokenRange(k), d = documentRange(k)
            return SequenceRecord(tokens: Array(tokens[t]), lossMask: Array(loss[t]),
                                  docStarts: documentStarts[d].map { UInt32($0 - t.lowerBound) })
        }
    }

    public mutating func removeAll() {
        tokens.removeAll(keepingCapacity: true); loss.removeAll(keepingCapacity: true)
        recordStarts.removeAll(keepingCapacity: true); recordStarts.append(0)
        documentStarts.removeAll(keepingCapacity: true)
        documentRecordStarts.removeAll(keepingCapacity: true); documentRecordStarts.append(0)
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
