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

/// `JSONParser.fieldLine` (encode's one-pass path) against the full parser: on a line of
/// exactly `{"text": "..."}` or `{"text":"..."}` whose string is valid UTF-8 with no
/// escape, or only well-formed ones, it must give the parser's text and the line's end;
/// any line it takes must parse to that one member with that text; other layouts, control
/// bytes, lone surrogates, bad escapes, invalid UTF-8, `\r` and trailing bytes it must
/// leave to the general scan.
extension JSONSingleFieldTests {
    func testOnePassLinesAgreeWithTheFullParser() throws {
        var rng = SystemRandomNumberGenerator()
        let plain: [[UInt8]] = [Array("a".utf8), Array("é".utf8), Array("中".utf8), Array("😀".utf8), [0x20], Array("xyz ".utf8)]
        let odd: [[UInt8]] = [[0x22], [0x5C], [0x09], [0x01], [0xFF], [0xC3], Array("\\n".utf8), Array("\\u00e9".utf8),
                              Array("\\\"".utf8), Array("\\\\".utf8), Array("\\t".utf8), Array("\\ud83d\\ude00".utf8),
                              Array("\\u4e2d\\u6587".utf8), Array("\\ud800".utf8), Array("\\u12g4".utf8), Array("\\x".utf8)]
        let head = Array("{\"text\":".utf8)
        var taken = 0, takenEscaped = 0, refused = 0
        for _ in 0..<20_000 {
            var value: [UInt8] = []
            let special = Int.random(in: 0..<4, using: &rng) == 0
            for _ in 0..<Int.random(in: 0...50, using: &rng) { value += plain[Int.random(in: 0..<plain.count, using: &rng)] }
            let specialPiece = special ? odd[Int.random(in: 0..<odd.count, using: &rng)] : nil
            if let specialPiece {
                value.insert(contentsOf: specialPiece, at: Int.random(in: 0...value.count, using: &rng))
                // Sometimes a second escape of the well-formed kinds at the end (inside
                // another escape it would make a different string).
                if Int.random(in: 0..<2, using: &rng) == 0 { value += odd[[6, 7, 8, 9, 10, 11, 12].randomElement(using: &rng)!] }
            }
            let space = Int.random(in: 0..<2, using: &rng) == 0 ? [UInt8]() : [0x20]
            var line = head + space + [0x22] + value + [0x22, 0x7D]
            var exact = !special
            var layoutKept = true
            switch Int.random(in: 0..<10, using: &rng) {
            case 0: line.insert(0x20, at: 1); exact = false; layoutKept = false                          // a space after the brace
            case 1: line.insert(0x20, at: line.count - 1); exact = false; layoutKept = false             // before the closing brace
            case 2: line.append(0x0D); exact = false; layoutKept = false                                 // \r\n
            case 3: line.append(0x20); exact = false; layoutKept = false                                 // a trailing space
            case 4: line.insert(contentsOf: Array(", \"n\": 1".utf8), at: line.count - 1); exact = false; layoutKept = false
            case 5: line[2] = 0x54; exact = false; layoutKept = false                                      // {"Text": ...
            default: break
            }
            // The rest of the chunk after the line: another line, or nothing.
            let rest: [UInt8] = Int.random(in: 0..<2, using: &rng) == 0 ? [] : [0x0A] + Array("{\"text\": \"next\"}".utf8)
            let chunk = line + rest
            // The text, whether it lies in the line (no escape) or in the scratch memory, and
            // the line's end.
            let scratch = UnsafeMutablePointer<UInt8>.allocate(capacity: chunk.count + 32)
            defer { scratch.deallocate() }
            let got = chunk.withUnsafeBufferPointer { c in
                head.withUnsafeBufferPointer { h -> (inLine: Bool, text: [UInt8], lineEnd: Int)? in
                    JSONParser.fieldLine(c.baseAddress!, available: c.count, head: h, scratch: scratch).map {
                        ($0.text.baseAddress! != UnsafePointer(scratch), Array($0.text), $0.lineEnd)
                    }
                }
            }
            var parsed: [UInt8]? = nil
            if let v = try? JSONParser.parse(line), case .object(let members) = v, members.count == 1,
               members[0].key == Array("text".utf8), case .string(let s) = members[0].value {
                parsed = s
            }
            if let (inLine, text, e) = got, inLine {
                taken += 1
                XCTAssertEqual(e, line.count, "line end of \(line)")
                XCTAssertEqual(parsed, text, "text of \(line)")
                XCTAssertEqual(text, value, "\(line)")
            } else if let (_, text, e) = got {
                takenEscaped += 1
                XCTAssertEqual(e, line.count, "line end of \(line)")
                XCTAssertEqual(parsed, text, "text of \(line)")
            } else {
                refused += 1
                XCTAssertFalse(exact && String(validating: value, as: UTF8.self) != nil, "left an exact line to the general scan: \(line)")
                // An exact layout whose string holds only valid escapes and valid UTF-8.
                let validEscapes = specialPiece.map { odd.firstIndex(of: $0).map { (6...12).contains($0) } ?? false } ?? false
                XCTAssertFalse(layoutKept && validEscapes && String(validating: value, as: UTF8.self) != nil,
                               "left an exact line with escapes to the general scan: \(line)")
            }
        }
        XCTAssertGreaterThan(taken, 4_000)     // ~30% of the lines are of the exact shape
        XCTAssertGreaterThan(takenEscaped, 200)
        XCTAssertGreaterThan(refused, 10_000)
    }
}
