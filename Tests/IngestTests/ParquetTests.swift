import XCTest
@testable import Ingest
import TokenmillCore

/// The Parquet reader against pyarrow's reading of the same files
/// (Fixtures/make_parquet_fixtures.py writes both), and under seeded random damage.
final class ParquetTests: XCTestCase {
    static let fixtures = ["fuzz_snappy_dict_v1.parquet", "fuzz_zstd_plain_v2.parquet",
                           "fuzz_gzip_none_v1.parquet", "fuzz_plain_uncompressed_v2.parquet"]

    func fixture(_ name: String) throws -> [UInt8] {
        try FileSystem.readFile(FileSystem.join(FileSystem.dirname(of: #filePath), "Fixtures/" + name))
    }

    /// A mapping that names every top-level column, so nothing is projected away.
    static let everyColumn: SourceConfig = {
        var chat = FieldMapping.Chat(messages: ["messages"])
        chat.roleKey = "role"
        let text = try! FieldMapping.Value.parse("{prompt}{input}{response}{n}{x}{flag}{meta.title}")
        return SourceConfig(name: "f", index: 0, files: [], format: .parquet,
                            mapping: FieldMapping(text: text, chat: chat), skipBadRows: true)
    }()

    func rows(_ bytes: [UInt8], threads: Int = 1) throws -> Rows<JSONValue> {
        try bytes.withUnsafeBufferPointer { buf in
            try ParquetReader.read(Self.everyColumn, fileIndex: 0, path: "f.parquet", data: buf, threads: threads) { v, _ in v }
        }
    }

    func testEveryEncodingAndCodecReadsWhatPyarrowReads() throws {
        let expected = try fixture("fuzz_expected.jsonl")
        let oracle = try String(decoding: expected, as: UTF8.self).split(separator: "\n").map { try JSONParser.parse(Array($0.utf8)) }
        XCTAssertEqual(oracle.count, 60)
        for name in Self.fixtures {
            for threads in [1, 2] {
                let r = try rows(try fixture(name), threads: threads)
                XCTAssertEqual(r.rejects.count, 0, name)
                XCTAssertEqual(r.items.count, oracle.count, name)
                for (i, (got, want)) in zip(r.items, oracle).enumerated() where got != want {
                    XCTFail("\(name) row \(i + 1): \(got) != \(want)")
                    break
                }
            }
        }
    }

    /// Seeded damage: byte flips (most in the footer and page headers, where a flip
    /// changes structure rather than text), truncation, duplicated ranges. The reader
    /// returns rows or a typed error; never a crash, a hang or an out-of-bounds read.
    /// When it returns, rows read + rejected equal the rows its footer declares.
    func testRandomDamageNeverCrashes() throws {
        var rng = SplitMix64(seed: 7)
        var outcomes = [0, 0]
        for name in Self.fixtures {
            let base = try fixture(name)
            for _ in 0..<4000 {
                var b = base
                switch rng.below(10) {
                case 0:
                    b.removeLast(1 + Int(rng.below(UInt64(b.count - 1))))
                case 1:
                    let a = Int(rng.below(UInt64(b.count))), n = Int(rng.below(64))
                    b.insert(contentsOf: b[a..<min(b.count, a + n)], at: Int(rng.below(UInt64(b.count))))
                default:
                    for _ in 0..<(1 + Int(rng.below(6))) {
                        // Half the flips land in the last fifth (the footer), half anywhere.
                        let lo = rng.below(2) == 0 ? b.count * 4 / 5 : 0
                        let at = lo + Int(rng.below(UInt64(b.count - lo)))
                        b[at] = rng.below(3) == 0 ? UInt8(truncatingIfNeeded: rng.next()) : b[at] ^ (1 << UInt8(rng.below(8)))
                    }
                }
                do {
                    let r = try rows(b, threads: Int(1 + rng.below(2)))
                    let declared = try b.withUnsafeBufferPointer { try ParquetReader.footer($0, path: "f").0.numRows }
                    XCTAssertEqual(Int64(r.items.count + r.rejects.count), declared, name)
                    outcomes[0] += 1
                } catch is TokenmillError {
                    outcomes[1] += 1
                }
            }
        }
        // Both outcomes happen: damage is sometimes survivable (text bytes), sometimes not.
        XCTAssertGreaterThan(outcomes[0], 100)
        XCTAssertGreaterThan(outcomes[1], 100)
    }

    func testSnappyRejectsCopiesBeforeTheStart() {
        // Length 4, then a copy with offset 1 before any output.
        let stream: [UInt8] = [4, 0b0000_0001, 1]
        XCTAssertThrowsError(try stream.withUnsafeBufferPointer { b throws(ParquetError) in try Snappy.decompress(b, expected: 4) })
        // Literal "ab", then an overlapping copy of length 4 at offset 2: "ababab".
        let ok: [UInt8] = [6, 0b0000_0100, 0x61, 0x62, 0b0000_0001, 2]
        XCTAssertEqual(try ok.withUnsafeBufferPointer { b throws(ParquetError) in try Snappy.decompress(b, expected: 6) }, Array("ababab".utf8))
    }

    func testHybridRunsDecode() throws {
        // RLE run of 3 x value 5 (width 3), then a bit-packed group of 8 values 0...7.
        let bytes: [UInt8] = [3 << 1, 5, (1 << 1) | 1, 0b10001000, 0b11000110, 0b11111010]
        var out: [UInt8] = []
        try bytes.withUnsafeBufferPointer { b throws(ParquetError) in
            try ParquetPages.hybrid(b, start: 0, end: b.count, width: 3, count: 11, into: &out)
        }
        XCTAssertEqual(out, [5, 5, 5, 0, 1, 2, 3, 4, 5, 6, 7])
    }
}
