import ShardFormat
import TestSupport
import TokenmillCore
import XCTest

func randomRecords(_ rng: inout SplitMix64, count: Int, maxTokens: Int, vocab: UInt32) -> [SequenceRecord] {
    (0..<count).map { _ in
        let n = 1 + Int(rng.below(UInt64(maxTokens)))
        let tokens = (0..<n).map { _ in UInt32(rng.below(UInt64(vocab))) }
        let mask = (0..<n).map { _ in UInt8(rng.below(2)) }
        var starts: [UInt32] = [0]
        for s in 1..<n where rng.below(8) == 0 { starts.append(UInt32(s)) }
        return SequenceRecord(tokens: tokens, lossMask: mask, docStarts: starts)
    }
}

final class ShardRoundTripTests: XCTestCase {
    func testRoundTripAcrossSizesAndWidths() throws {
        let dir = makeTemporaryDirectory("shard")
        var rng = SplitMix64(seed: 7)
        for width in [2, 4] {
            for count in [1, 2, 3, 17, 300] {
                let vocab: UInt32 = width == 2 ? 65536 : 200_019
                let recs = randomRecords(&rng, count: count, maxTokens: 5000, vocab: vocab)
                let path = "\(dir)/t-\(width)-\(count).tkm"
                let summary = try ShardWriter.write(path: path, records: recs[...], tokenWidth: width, zstdLevel: 3, threads: 2)
                let reader = try ShardReader(path: path, vocabSize: Int(vocab))
                XCTAssertEqual(reader.recordCount, count)
                XCTAssertEqual(summary.tokens, recs.reduce(0) { $0 + $1.tokens.count })
                XCTAssertEqual(reader.fileChecksum, summary.checksum)
                for i in 0..<count { XCTAssertEqual(try reader.record(i), recs[i]) }
                XCTAssertGreaterThan(reader.chunks.count, count == 300 ? 1 : 0)
            }
        }
    }

    func testThreadCountDoesNotChangeBytes() throws {
        let dir = makeTemporaryDirectory("shard-threads")
        var rng = SplitMix64(seed: 8)
        let recs = randomRecords(&rng, count: 400, maxTokens: 3000, vocab: 100_000)
        let a = try ShardWriter.write(path: "\(dir)/a.tkm", records: recs[...], tokenWidth: 4, zstdLevel: 3, threads: 1)
        let b = try ShardWriter.write(path: "\(dir)/b.tkm", records: recs[...], tokenWidth: 4, zstdLevel: 3, threads: 2)
        XCTAssertEqual(try FileSystem.readFile("\(dir)/a.tkm"), try FileSystem.readFile("\(dir)/b.tkm"))
        XCTAssertEqual(a.checksum, b.checksum)
    }

    /// Every single flipped byte must be reported as damage by open or by reading every
    /// chunk: never a crash, never different records.
    func testEveryFlippedByteIsDetected() throws {
        let dir = makeTemporaryDirectory("shard-flip")
        var rng = SplitMix64(seed: 9)
        let recs = randomRecords(&rng, count: 5, maxTokens: 40, vocab: 50_000)
        let path = "\(dir)/s.tkm"
        _ = try ShardWriter.write(path: path, records: recs[...], tokenWidth: 2, zstdLevel: 3, threads: 1)
        let good = try FileSystem.readFile(path)
        for i in 0..<good.count {
            for flip: UInt8 in [0x01, 0x80] {
                var bad = good
                bad[i] ^= flip
                try FileSystem.writeAtomically(path, bad)
                do {
                    let r = try ShardReader(path: path, vocabSize: 50_000)
                    var got: [SequenceRecord] = []
                    for k in r.chunks.indices { got += try r.readChunk(k) }
                    XCTFail("flip of byte \(i) (^\(flip)) went unnoticed; records equal: \(got == recs)")
                } catch let e as TokenmillError {
                    guard case .corrupt(let p, _) = e else { return XCTFail("byte \(i): wrong error \(e)") }
                    XCTAssertEqual(p, path)
                }
            }
        }
    }

    func testTruncatedFilesAreRejected() throws {
        let dir = makeTemporaryDirectory("shard-trunc")
        var rng = SplitMix64(seed: 10)
        let recs = randomRecords(&rng, count: 3, maxTokens: 100, vocab: 1000)
        let path = "\(dir)/s.tkm"
        _ = try ShardWriter.write(path: path, records: recs[...], tokenWidth: 2, zstdLevel: 3, threads: 1)
        let good = try FileSystem.readFile(path)
        for n in [0, 1, 31, 32, 60, good.count / 2, good.count - 1] {
            try FileSystem.writeAtomically(path, Array(good[0..<n]))
            XCTAssertThrowsError(try { let r = try ShardReader(path: path); for k in r.chunks.indices { _ = try r.readChunk(k) } }(), "truncated to \(n)")
        }
    }

    func testTokenIdsAtOrAboveTheVocabularyAreRejected() throws {
        let dir = makeTemporaryDirectory("shard-vocab")
        let recs = [SequenceRecord(tokens: [1, 2, 999], lossMask: [0, 1, 1], docStarts: [0])]
        _ = try ShardWriter.write(path: "\(dir)/s.tkm", records: recs[...], tokenWidth: 2, zstdLevel: 1, threads: 1)
        XCTAssertNoThrow(try ShardReader(path: "\(dir)/s.tkm", vocabSize: 1000).readChunk(0))
        XCTAssertThrowsError(try ShardReader(path: "\(dir)/s.tkm", vocabSize: 999).readChunk(0))
    }

    /// FORMAT.md 1.7: reserved fields must be zero in a file of this reader's minor (1) or an
    /// older one; a later minor may use them and this reader ignores them, checking the rest.
    func testReservedFieldsOfALaterMinorAreIgnored() throws {
        let dir = makeTemporaryDirectory("shard-reserved")
        var rng = SplitMix64(seed: 11)
        // Records of 200k-300k u32 tokens: several chunks of 1 MiB of token bytes.
        let recs = randomRecords(&rng, count: 12, maxTokens: 300_000, vocab: 100_000)
        let path = "\(dir)/s.tkm"
        _ = try ShardWriter.write(path: path, records: recs[...], tokenWidth: 4, zstdLevel: 1, threads: 2)
        let good = try FileSystem.readFile(path)
        XCTAssertEqual(Array(good[10..<12]), [0, 0], "the writer says minor 0")

        /// `good` with version_minor `minor` and the chosen reserved fields non-zero; the
        /// header and footer checksums recomputed, so only the reserved rule can object.
        func patched(minor: UInt16, header: Bool, footer: Bool, entries: Bool) -> [UInt8] {
            var b = good
            b[10] = UInt8(minor & 0xFF); b[11] = UInt8(minor >> 8)
            if header { for i in 13..<24 { b[i] = UInt8(i) } }
            let headerSum = XXH3.hash64(Array(b[0..<24]))
            b.withUnsafeMutableBytes { $0.storeBytes(of: headerSum.littleEndian, toByteOffset: 24, as: UInt64.self) }
            let t = b.count - 32
            let fo = Int(b[t..<(t + 8)].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
            let chunkCount = Int(b[fo + 16]) | Int(b[fo + 17]) << 8
            if footer { b[fo + 20] = 0x5A; b[fo + 23] = 0x01 }
            if entries { for k in 0..<chunkCount { b[fo + 24 + 40 * k + 20] = 0xFF; b[fo + 24 + 40 * k + 22] = 0x07 } }
            let sum = XXH3.hash64(Array(b[fo..<t]))
            b.withUnsafeMutableBytes { $0.storeBytes(of: sum.littleEndian, toByteOffset: t + 16, as: UInt64.self) }
            return b
        }

        try FileSystem.writeAtomically(path, patched(minor: 9, header: true, footer: true, entries: true))
        let later = try ShardReader(path: path, vocabSize: 100_000)
        XCTAssertEqual(later.versionMinor, 9)
        XCTAssertGreaterThan(later.chunks.count, 2)
        var got: [SequenceRecord] = []
        for k in later.chunks.indices { got += try later.readChunk(k) }
        XCTAssertEqual(got, recs)

        for minor: UInt16 in [0, 1] {
            for (h, f, e) in [(true, false, false), (false, true, false), (false, false, true), (true, true, true)] {
                try FileSystem.writeAtomically(path, patched(minor: minor, header: h, footer: f, entries: e))
                XCTAssertThrowsError(try ShardReader(path: path, vocabSize: 100_000), "minor \(minor) header \(h) footer \(f) entries \(e)") { err in
                    guard case .corrupt(let p, let m) = err as? TokenmillError else { return XCTFail("\(err)") }
                    XCTAssertEqual(p, path)
                    XCTAssertTrue(m.contains("reserved") && m.contains("version 1.\(minor)"), m)
                }
            }
        }
    }
}
