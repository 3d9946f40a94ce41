import TokenmillCore
import XCTest

/// `IDWriter.json` against the plainest formatting there is (`String(v)` joined with
/// commas), at every length boundary of each of its paths and on random ids of every size.
final class IDWriterTests: XCTestCase {
    func reference(_ ids: [UInt32], _ ends: [Int]) -> String {
        var out = "", i = 0
        for e in ends {
            out += "[" + ids[i..<e].map { String($0) }.joined(separator: ",") + "]\n"
            i = e
        }
        return out
    }

    func testEveryPathAndLengthBoundary() {
        var values: [UInt32] = []
        var p: UInt64 = 1
        while p <= UInt64(UInt32.max) {
            for d in [-1, 0, 1] where Int64(p) + Int64(d) >= 0 && Int64(p) + Int64(d) <= Int64(UInt32.max) {
                values.append(UInt32(Int64(p) + Int64(d)))
            }
            p *= 10
        }
        values += [0, 200_018, 200_019, 999_999, 9_999_999, 10_000_000, 99_999_999, 100_000_000, UInt32.max]
        // One id a line, then all of them in one line, then an empty line.
        let ends = Array(1...values.count) + [2 * values.count, 2 * values.count]
        let ids = values + values
        XCTAssertEqual(String(decoding: IDWriter.json(ids, lineEnds: ends), as: UTF8.self), reference(ids, ends))
    }

    func testRandomIdsOfEverySize() {
        var rng = SystemRandomNumberGenerator()
        var ids: [UInt32] = [], ends: [Int] = []
        for _ in 0..<2_000 {
            for _ in 0..<Int.random(in: 0...12, using: &rng) {
                let digits = Int.random(in: 1...10, using: &rng)
                let top = digits == 10 ? UInt64(UInt32.max) : UInt64(pow(10.0, Double(digits))) - 1
                ids.append(UInt32(UInt64.random(in: 0...top, using: &rng)))
            }
            ends.append(ids.count)
        }
        XCTAssertEqual(String(decoding: IDWriter.json(ids, lineEnds: ends), as: UTF8.self), reference(ids, ends))
    }
}

extension IDWriterTests {
    /// Every id below 1,050,000 (each table entry, every carry between the high part and
    /// the last three digits), in lines of 1 to 9 ids.
    func testEveryIdBelowAMillionAndOn() {
        let ids = (0..<UInt32(1_050_000)).map { $0 }
        var ends: [Int] = [], e = 0, k = 1
        while e < ids.count { e = min(ids.count, e + k); ends.append(e); k = k % 9 + 1 }
        XCTAssertEqual(String(decoding: IDWriter.json(ids, lineEnds: ends), as: UTF8.self), reference(ids, ends))
    }
}
