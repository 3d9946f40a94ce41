import TokenmillCore
import XCTest

final class HashingTests: XCTestCase {
    // Reference values from the xxhash Python package (xxh3_64_intdigest / xxh3_128).
    func testXXH3MatchesReferenceValues() {
        XCTAssertEqual(XXH3.hash64([UInt8]()), 0x2D06800538D394C2)
        XCTAssertEqual(XXH3.hash64(Array("hello world".utf8)), 0xD447B1EA40E6988B)
        XCTAssertEqual(XXH3.hex(0x2D06800538D394C2), "2d06800538d394c2")
        XCTAssertEqual(XXH3.hex(1), "0000000000000001")
    }

    func testStreamingEqualsOneShot() {
        var rng = SplitMix64(seed: 3)
        let data = (0..<10_000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        var s = XXH3Stream()
        var i = 0
        while i < data.count {
            let n = min(data.count - i, 1 + Int(rng.below(700)))
            data[i..<(i + n)].withUnsafeBytes { s.update($0) }
            i += n
        }
        XCTAssertEqual(s.digest(), XXH3.hash64(data))
    }

    func testSplitMixIsDeterministicAndBelowIsInRange() {
        var a = SplitMix64(seed: 42), b = SplitMix64(seed: 42)
        for _ in 0..<100 { XCTAssertEqual(a.next(), b.next()) }
        for bound in [1, 2, 3, 7, 1000] as [UInt64] { for _ in 0..<100 { XCTAssertLessThan(a.below(bound), bound) } }
    }

    /// The content hash streams the fields; it must equal the hash of the bytes the docs
    /// define (docs/PIPELINE.md, "Shape"), which `dedupKey` spells out.
    func testContentHashIsTheHashOfTheDefinedBytes() {
        let records = [
            Record(source: 0, file: 0, line: 1, kind: .text, text: Array("héllo 中文".utf8)),
            Record.instruction(source: 0, file: 0, line: 2, system: [], prompt: Array("ab".utf8), response: Array("c".utf8)),
            Record.instruction(source: 0, file: 0, line: 3, system: [], prompt: Array("a".utf8), response: Array("bc".utf8)),
        ]
        for r in records { XCTAssertEqual(r.contentHash, XXH3.hash64(r.dedupKey)) }
        XCTAssertNotEqual(records[1].contentHash, records[2].contentHash, "field boundaries do not alias")
        // The bytes of a text record, written out: kind 1, system (0xFF, 0), text (0xFE, n, bytes).
        var bytes: [UInt8] = [1, 0xFF] + [UInt8](repeating: 0, count: 8) + [0xFE]
        withUnsafeBytes(of: UInt64(records[0].text.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes += records[0].text
        XCTAssertEqual(records[0].contentHash, XXH3.hash64(bytes))
    }

    /// The open-addressing map answers as `Dictionary` does, through growth, overwrites and
    /// keys that share their low bits (so their slots collide and probe).
    func testHashKeyMapAgreesWithDictionary() {
        var rng = SplitMix64(seed: 11)
        var map = HashKeyMap<Int>()
        var set = HashKeySet()
        var reference: [UInt128Hash: Int] = [:]
        var keys: [UInt128Hash] = []
        for step in 0..<200_000 {
            let key: UInt128Hash
            switch rng.next() % 4 {
            case 0 where !keys.isEmpty: key = keys[Int(rng.next() % UInt64(keys.count))]
            case 1: key = UInt128Hash(low: rng.next() % 64, high: rng.next())   // crowded slots
            default: key = UInt128Hash(low: rng.next(), high: rng.next())
            }
            keys.append(key)
            if rng.next() % 3 == 0 {
                XCTAssertEqual(map[key], reference[key])
                XCTAssertEqual(set.contains(key), reference[key] != nil)
            } else {
                XCTAssertEqual(set.insert(key), reference[key] == nil)
                map[key] = step
                reference[key] = step
            }
        }
        XCTAssertEqual(map.count, reference.count)
        XCTAssertEqual(set.count, reference.count)
        for (k, v) in reference { XCTAssertEqual(map[k], v) }
    }
    /// The 32-byte-step byte count equals a plain count at every length and alignment
    /// around its blocks, with the byte at the edges.
    func testCountBytesEqualsAPlainCount() {
        var rng = SplitMix64(seed: 32)
        for n in 0..<200 {
            for _ in 0..<8 {
                let bytes = (0..<n).map { _ in rng.below(4) == 0 ? UInt8(0x0A) : UInt8(rng.below(256)) }
                for start in 0..<min(3, n + 1) {
                    let slice = Array(bytes[start...])
                    XCTAssertEqual(slice.withUnsafeBufferPointer { countBytes($0, equalTo: 0x0A) }, slice.filter { $0 == 0x0A }.count)
                }
            }
        }
    }
}
