import TokenmillCore
import XCTest

/// `JSONParser.onlyStringMember` (encode's fast path) against the full parser: it must
/// take exactly the lines that are one-member objects of the key with a string value that
/// has no escape and is valid UTF-8, and give the same text the parser does.
final class JSONSingleFieldTests: XCTestCase {
    func testAgreesWithTheFullParserOnRandomLines() throws {
        var rng = SystemRandomNumberGenerator()
        let pieces: [[UInt8]] = [Array("a".utf8), Array("é".utf8), Array("中".utf8), Array("😀".utf8), [0x20], [0x22], [0x5C],
                                 [0x09], [0x01], [0x7F], [0xFF], [0xC3], Array("\\n".utf8), Array("\\u00e9".utf8)]
        let spaces: [[UInt8]] = [[], [0x20], [0x09], [0x20, 0x20], [0x0D]]
        var taken = 0, refused = 0
        for _ in 0..<20_000 {
            // A string value: mostly plain text of 0-80 bytes, sometimes with a special byte.
            var value: [UInt8] = []
            let length = Int.random(in: 0...40, using: &rng)
            for _ in 0..<length {
                let plain = Int.random(in: 0..<10, using: &rng) < 9
                value += plain ? pieces[Int.random(in: 0..<4, using: &rng)] : pieces[Int.random(in: 0..<pieces.count, using: &rng)]
            }
            let key = Array((Int.random(in: 0..<8, using: &rng) == 0 ? "txt" : "text").utf8)
            let ws = { spaces[Int.random(in: 0..<spaces.count, using: &rng)] }
            var line = ws() + [0x7B] + ws() + [0x22] + key + [0x22] + ws() + [0x3A] + ws() + [0x22] + value + [0x22] + ws()
            switch Int.random(in: 0..<12, using: &rng) {
            case 0: line += [0x2C, 0x22, 0x78, 0x22, 0x3A, 0x31]                  // another member after
            case 1: line = [0x7B, 0x22, 0x78, 0x22, 0x3A, 0x31, 0x2C] + line.drop(while: { $0 != 0x22 })   // one before
            default: break
            }
            if Int.random(in: 0..<12, using: &rng) != 2 { line += [0x7D] + ws() }
            if Int.random(in: 0..<30, using: &rng) == 0 { line += [0x78] }          // trailing garbage

            let fast = line.withUnsafeBufferPointer { l in
                Array("text".utf8).withUnsafeBufferPointer { k in JSONParser.onlyStringMember(l, key: k) }
            }
            // The oracle: the full parser's value, and whether the line is that exact shape.
            var expected: [UInt8]? = nil
            if let v = try? JSONParser.parse(line), case .object(let members) = v, members.count == 1,
               members[0].key == Array("text".utf8), case .string(let s) = members[0].value,
               !value.contains(0x5C), !value.contains(where: { $0 < 0x20 }), String(validating: value, as: UTF8.self) != nil {
                expected = s
            }
            if let (a, b) = fast {
                taken += 1
                XCTAssertEqual(expected, Array(line[a..<b]), "line \(line)")
            } else {
                refused += 1
                XCTAssertNil(expected, "refused a line of the shape: \(line)")
            }
        }
        XCTAssertGreaterThan(taken, 2_000)
        XCTAssertGreaterThan(refused, 5_000)
    }
}
