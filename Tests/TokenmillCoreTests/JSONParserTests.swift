import TokenmillCore
import TestSupport
import XCTest

final class JSONParserTests: XCTestCase {
    func parse(_ s: String) throws -> JSONValue { try JSONParser.parse(Array(s.utf8)) }

    func testParsesNestedValuesAndKeepsMemberOrder() throws {
        let v = try parse(#"{"b": [1, -2.5e3, true, false, null], "a": {"x": "y"}}"#)
        XCTAssertEqual(v.objectValue?.map(\.keyString), ["b", "a"])
        XCTAssertEqual(v["b"]?.arrayValue?.count, 5)
        XCTAssertEqual(v["b"]?.arrayValue?[1], .number(Array("-2.5e3".utf8)))
        XCTAssertEqual(v["a"]?["x"]?.stringValue, "y")
    }

    func testUnescapesIntoUTF8() throws {
        let v = try parse(#""a\"b\\c\/d\b\f\n\r\t\u00e9\u4e2d\ud83d\ude00""#)
        XCTAssertEqual(v.stringValue, "a\"b\\c/d\u{8}\u{c}\n\r\té中😀")
    }

    /// The eight-bytes-at-a-time string scan: a quote, an escape, a control byte or a
    /// non-ASCII scalar at every offset of strings of every length up to 40.
    func testStringScanFindsEverySpecialByteAtEveryOffset() throws {
        for length in 0...40 {
            for at in 0..<max(length, 1) {
                for (insert, expect, valid) in [("\\\"", "\"", true), ("\\n", "\n", true), ("é", "é", true), ("\u{01}", "", false)] {
                    var chars = Array(repeating: "a", count: length)
                    if length > 0 { chars[at] = insert }
                    let body = chars.joined()
                    let json = "[\"" + body + "\"]"
                    if !valid && length > 0 {
                        XCTAssertThrowsError(try JSONParser.parse(Array(json.utf8)), "control byte at \(at) of \(length)")
                        continue
                    }
                    var want = Array(repeating: "a", count: length)
                    if length > 0 { want[at] = expect }
                    XCTAssertEqual(try JSONParser.parse(Array(json.utf8)), .array([.string(Array(want.joined().utf8))]), "\(insert) at \(at) of \(length)")
                }
            }
        }
    }

    func testLoneSurrogatesBecomeReplacementCharacter() throws {
        XCTAssertEqual(try parse(#""x\ud800y""#).stringValue, "x\u{FFFD}y")
        XCTAssertEqual(try parse(#""\udc00""#).stringValue, "\u{FFFD}")
        XCTAssertEqual(try parse(#""\ud800\u0041""#).stringValue, "\u{FFFD}A")
    }

    func testInvalidUTF8InStringsIsRepaired() throws {
        var bytes = Array("\"a".utf8); bytes.append(0xFF); bytes.append(contentsOf: Array("b\"".utf8))
        XCTAssertEqual(try JSONParser.parse(bytes).stringValue, "a\u{FFFD}b")
    }

    func testRejectsMalformedInputWithOffset() {
        let cases = ["{", "[1,]", "{\"a\" 1}", "\"abc", "tru", "01", "1.", "-", "{\"a\":1}x", "\"\\x\"", "\"a\u{1}\"", "[1 2]", ""]
        for c in cases {
            XCTAssertThrowsError(try parse(c), "should reject \(c.debugDescription)") { e in
                XCTAssertTrue(e is JSONParser.Failure)
            }
        }
    }

    func testDeepNestingIsAnErrorNotACrash() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        XCTAssertThrowsError(try parse(deep))
    }

    func testRandomMutationsNeverCrash() {
        var rng = SplitMix64(seed: 1)
        let seed = Array(#"{"instruction": "Say \"hi\"\n", "input": [1, 2.5, {"k": null}], "output": "é中😀\u00e9"}"#.utf8)
        for _ in 0..<20_000 {
            var b = seed
            mutate(&b, edits: 1 + Int(rng.below(4)), &rng)
            let full = try? JSONParser.parse(b)
            // Keeping only some keys accepts exactly the same inputs and keeps exactly
            // those members (skipped values are still checked for syntax).
            let row: JSONValue? = b.withUnsafeBufferPointer { buf in
                var p = JSONParser(buf)
                guard let v = try? p.parseRow(keeping: [Array("output".utf8), Array("k".utf8)]) else { return nil }
                p.skipWhitespace()
                return p.atEnd ? v : nil
            }
            XCTAssertEqual(full == nil, row == nil, String(decoding: b, as: UTF8.self))
            if case .object(let members)? = full, let row {
                XCTAssertEqual(row, .object(members.filter { $0.key == Array("output".utf8) || $0.key == Array("k".utf8) }))
            }
        }
    }

    func testWriterOutputParsesBackToTheSameString() throws {
        var rng = SplitMix64(seed: 9)
        for _ in 0..<500 {
            var scalars = String.UnicodeScalarView()
            for _ in 0..<Int(rng.below(30)) {
                let pick = rng.below(4)
                let v: UInt32 = pick == 0 ? UInt32(rng.below(0x20)) : pick == 1 ? UInt32(rng.below(0x80)) : pick == 2 ? 0x4E00 + UInt32(rng.below(100)) : 0x1F600 + UInt32(rng.below(50))
                scalars.append(Unicode.Scalar(v)!)
            }
            let s = String(scalars)
            XCTAssertEqual(try parse(JSONWriter.quoted(s)).stringValue, s)
        }
    }

    func testLineNumberOfOffset() {
        let b = Array("a\nb\nc".utf8)
        b.withUnsafeBufferPointer { p in
            XCTAssertEqual(lineNumber(of: 0, in: p), 1)
            XCTAssertEqual(lineNumber(of: 2, in: p), 2)
            XCTAssertEqual(lineNumber(of: 4, in: p), 3)
        }
    }

    /// The in-place validator answers as the standard library's does, on every sequence of
    /// up to three bytes drawn from the bytes where UTF-8's rules change, embedded at each
    /// offset of an ASCII run (so the 8-byte ASCII step meets them at every alignment), and
    /// on random byte strings.
    func testUTF8ValidatorAgreesWithTheStandardLibrary() {
        let edges: [UInt8] = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED,
                              0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF]
        func check(_ bytes: [UInt8]) {
            let want = bytes.withUnsafeBufferPointer { String(validating: $0, as: UTF8.self) != nil }
            XCTAssertEqual(bytes.withUnsafeBufferPointer(UTF8Validation.isValid), want, "\(bytes)")
        }
        var sequences: [[UInt8]] = edges.map { [$0] }
        for a in edges { for b in edges { sequences.append([a, b]); for c in edges { sequences.append([a, b, c]) } } }
        for s in sequences {
            // Offsets up to past one 32-byte block of the vector validator, so each sequence
            // meets its block boundaries at every position that matters.
            for offset in [0, 3, 7, 8, 13, 29, 30, 31, 32, 33, 45, 61, 62, 63] {
                check(Array(repeating: 0x61, count: offset) + s + Array(repeating: 0x62, count: 9))
                check(Array(repeating: 0x61, count: offset) + s)
            }
            check(Array(repeating: 0x61, count: 40) + s + Array("é漢🙂".utf8) + Array(repeating: 0x62, count: 30))
            check(s + [0x80])
            check([0xF0, 0x9F] + s)
        }
        var rng = SplitMix64(seed: 7)
        for _ in 0..<20_000 {
            let n = Int(rng.next() % 24)
            check((0..<n).map { _ in rng.next() % 3 == 0 ? UInt8(truncatingIfNeeded: rng.next()) : edges[Int(rng.next() % UInt64(edges.count))] })
        }
        check(Array("ascii, ü, 中文, 🎉, and more".utf8))
        // Longer texts (the vector path): valid UTF-8 of every sequence length, cut at a
        // random place, with a byte changed, dropped or inserted at random.
        let text = Array(("plain ascii text, é ñ ü, 中文字符, 🎉🙂, " + String(repeating: "xyz", count: 20) + " ż 語 𝄞").utf8)
        for _ in 0..<20_000 {
            var b = Array(text[Int(rng.next() % 40)...].prefix(Int(rng.next() % 160)))
            switch rng.next() % 4 {
            case 0: if !b.isEmpty { b[Int(rng.next() % UInt64(b.count))] = UInt8(truncatingIfNeeded: rng.next()) }
            case 1: if !b.isEmpty { b.remove(at: Int(rng.next() % UInt64(b.count))) }
            case 2: b.insert(edges[Int(rng.next() % UInt64(edges.count))], at: Int(rng.next() % UInt64(b.count + 1)))
            default: break
            }
            check(b)
        }
    }
}

/// `decodeString` (the in-place decoder of encode and ingest, with its run of `\u` escapes
/// decoded at once by `tm_json_u_escapes`) against the general string path
/// (`parseString`, one escape at a time through `escapeScalar`), on random strings
/// written as JSON writers that escape every non-ASCII character do: BMP characters,
/// surrogate pairs, lone high and low surrogates, a high one before a `\u` that is not a
/// low one, bad hex digits, `\u0000`, both hex cases, one-letter escapes and plain runs.
extension JSONParserTests {
    func testEscapeRunsDecodeAsTheGeneralPathDoes() throws {
        var rng = SystemRandomNumberGenerator()
        let pieces = ["\\u4e2d", "\\u00E9", "\\u0041", "\\u0000", "\\u07ff", "\\u0800", "\\uffff", "\\ud83d\\ude00", "\\uD800\\uDC00",
                      "\\udbff\\udfff", "\\ud800", "\\udc00", "\\ud800\\u0041", "\\ud800\\ud800", "\\u12g4", "\\u", "\\n", "\\\"",
                      "a", "é", " ", "\\u00"]
        var decoded = 0, repaired = 0, failed = 0
        for _ in 0..<20_000 {
            var body = ""
            for _ in 0..<Int.random(in: 0...12, using: &rng) {
                // Mostly well-formed escapes, as real files hold; the odd ones sometimes.
                body += pieces[Int.random(in: 0..<(Int.random(in: 0..<4, using: &rng) == 0 ? pieces.count : 10), using: &rng)]
            }
            let json = Array(("\"" + body + "\"").utf8)
            json.withUnsafeBufferPointer { buf in
                var general = JSONParser(buf)
                let want = try? general.parseString()
                let dst = UnsafeMutablePointer<UInt8>.allocate(capacity: json.count)
                defer { dst.deallocate() }
                var fast = JSONParser(buf)
                do {
                    if let n = try fast.decodeString(into: dst) {
                        decoded += 1
                        XCTAssertEqual(Array(UnsafeBufferPointer(start: dst, count: n)), want, "\(body)")
                        XCTAssertEqual(fast.position, json.count, "\(body)")
                    } else {
                        // nil: the string needs a repair, which the general path makes (or,
                        // past the repair, rejects: a bad escape further on).
                        repaired += 1
                        XCTAssertTrue(want.map { String(decoding: $0, as: UTF8.self).contains("\u{FFFD}") } ?? true, "\(body)")
                    }
                } catch {
                    failed += 1
                    XCTAssertNil(want, "decodeString threw on \(body), parseString did not")
                }
            }
        }
        XCTAssertGreaterThan(decoded, 10_000)
        XCTAssertGreaterThan(repaired, 100)
        XCTAssertGreaterThan(failed, 100)
    }
}
