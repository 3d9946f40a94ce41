import XCTest
@testable import Ingest
import TokenmillCore
import TestSupport

/// The hot path (a row mapped from its bytes, `ScannedRow`) against the ordinary path
/// (parse to `JSONValue`, then map) on seeded random rows: whenever the hot path gives a
/// record, it is the ordinary path's record.
final class ScannedRowTests: XCTestCase {
    func randomString(_ rng: inout SplitMix64) -> String {
        let pieces = ["a", "Word", " ", "\\n", "\\t", "\\\"", "\\\\", "\\/", "\\u00e9", "\\ud83d\\ude00", "\\ud800", "é", "中文",
                      "😀", "{", "}", ",", ":", "[", "]", "0", "\\u0000", "\\b",
                      // Long runs cross the 16-byte SIMD blocks at every offset; U+E000 marks a
                      // spot the row's bytes turn into invalid UTF-8 (see `invalidate`).
                      "abcdefghijklmnopqrstu", "ééééééé", "\u{E000}"]
        var s = ""
        for _ in 0..<Int(rng.below(12)) { s += pieces[Int(rng.below(UInt64(pieces.count)))] }
        return "\"" + s + "\""
    }

    /// Each U+E000 (EE 80 80) becomes three bytes that are not UTF-8: the hot path must
    /// leave such rows to the ordinary path, which repairs and counts them.
    func invalidate(_ line: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        let bad: [[UInt8]] = [[0xFF, 0x41, 0x42], [0xE4, 0xB8, 0x41], [0x80, 0x80, 0x41], [0xC3, 0x28, 0x41]]
        var out = line
        var i = 0
        while i + 3 <= out.count {
            if out[i] == 0xEE && out[i + 1] == 0x80 && out[i + 2] == 0x80 {
                out.replaceSubrange(i..<(i + 3), with: bad[Int(rng.below(UInt64(bad.count)))])
                i += 3
            } else {
                i += 1
            }
        }
        return out
    }

    func randomValue(_ rng: inout SplitMix64, depth: Int = 0) -> String {
        switch rng.below(depth > 1 ? 6 : 8) {
        case 0, 1, 2: return randomString(&rng)
        case 3: return ["0", "-12", "3.25", "1e-7", "2E+3", "42"][Int(rng.below(6))]
        case 4: return ["true", "false"][Int(rng.below(2))]
        case 5: return "null"
        case 6: return "[" + (0..<Int(rng.below(3))).map { _ in randomValue(&rng, depth: depth + 1) }.joined(separator: ",") + "]"
        default: return "{\"k\": " + randomValue(&rng, depth: depth + 1) + "}"
        }
    }

    /// A mapped string that is not valid UTF-8 must leave the row to the ordinary path
    /// (which repairs and counts it), wherever the bad bytes sit in the 16-byte blocks the
    /// string scan reads, and whatever ends the run (the closing quote, an escape).
    func testInvalidUTF8NeverTakesTheHotPath() throws {
        let mapping = FieldMapping(prompt: try .parse("instruction"), response: try .parse("output"))
        let bad: [[UInt8]] = [[0xFF], [0x80], [0xE4, 0xB8], [0xC3, 0x28], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80]]
        func hot(_ line: [UInt8]) -> Record? {
            line.withUnsafeBufferPointer { b in
                var scanner = RowScanner(mapping)
                defer { scanner.deallocate() }
                return scanner.map({ row, line in try mapping.plainRecord(from: row, source: 0, file: 0, line: line) }, b, 0, b.count, line: 1)
            }
        }
        var checked = 0
        for seq in bad {
            for before in 0..<40 {
                for after in [0, 1, 7, 20] {
                    for end in ["", "\\n", "é"] {
                        let text = Array(repeating: UInt8(ascii: "a"), count: before) + seq + Array(repeating: UInt8(ascii: "b"), count: after)
                            + Array(end.utf8)
                        let good = Array(#"{"instruction": ""#.utf8) + Array(repeating: UInt8(ascii: "a"), count: before + after) + Array(#"", "output": "an answer long enough to fill blocks"}"#.utf8)
                        XCTAssertNotNil(hot(good), "a plain row must take the hot path")
                        let line = Array(#"{"instruction": ""#.utf8) + text + Array(#"", "output": "an answer long enough to fill blocks"}"#.utf8)
                        XCTAssertNil(hot(line), "bytes \(seq) after \(before) bytes took the hot path")
                        let swapped = Array(#"{"output": "x", "instruction": ""#.utf8) + text + Array(#""}"#.utf8)
                        XCTAssertNil(hot(swapped), "bytes \(seq) after \(before) bytes near the row's end took the hot path")
                        checked += 1
                    }
                }
            }
        }
        XCTAssertEqual(checked, 6 * 40 * 4 * 3)
    }

    /// Seeded byte mutations of real-looking rows (flip, insert, delete) through the hot
    /// path, which writes into raw scratch memory: no crash, and a record only when the
    /// ordinary path gives the same record with nothing to repair.
    func testMutatedRowsThroughTheHotPath() throws {
        let mapping = FieldMapping(prompt: try .parse("{instruction}[[\n\n{input}]]"), response: try .parse("output"))
        let seeds = [
            Array(#"{"instruction": "Say \"hi\"\n twice, then a long tail of text", "input": "", "output": "é中😀\u00e9 and \ud83d\ude00 done"}"#.utf8),
            Array(#"{"output": "abcdefghijklmnopqrstuvwxyz0123456789", "other": [1, {"k": "v"}], "instruction": "x\ty"}"#.utf8),
        ]
        var rng = SplitMix64(seed: 11)
        var taken = 0
        for k in 0..<20_000 {
            var b = seeds[k % seeds.count]
            mutate(&b, edits: 1 + Int(rng.below(3)), &rng)
            let hot: Record? = b.withUnsafeBufferPointer { buf in
                var scanner = RowScanner(mapping)
                defer { scanner.deallocate() }
                return scanner.map({ row, line in try mapping.plainRecord(from: row, source: 0, file: 0, line: line) }, buf, 0, buf.count, line: 1)
            }
            guard let hot else { continue }
            taken += 1
            var repairs = 0
            let parsed: JSONValue? = b.withUnsafeBufferPointer { buf in
                var p = JSONParser(buf)
                let v = try? p.parseRow(keeping: mapping.topLevelKeys)
                p.skipWhitespace()
                repairs = p.repairs
                return p.atEnd ? v : nil
            }
            XCTAssertEqual(repairs, 0, String(decoding: b, as: UTF8.self))
            XCTAssertEqual(hot, parsed.flatMap { try? mapping.record(from: $0, source: 0, file: 0, line: 1) }, String(decoding: b, as: UTF8.self))
        }
        XCTAssertGreaterThan(taken, 800, "the mutations hardly reached the hot path")
    }

    func testScannedRowsMapLikeParsedRows() throws {
        let mappings: [FieldMapping] = [
            FieldMapping(prompt: try .parse("{instruction}[[\n\n{input}]]"), response: try .parse("output")),
            FieldMapping(text: try .parse("{output} / {n} {flag}")),
            FieldMapping(prompt: try .parse("instruction"), response: try .parse("{output}{input}"), system: try .parse("sys")),
        ]
        var rng = SplitMix64(seed: 5)
        let keys = ["instruction", "input", "output", "n", "flag", "sys", "other", "inst\\u0072uction"]
        var fastRows = 0
        for _ in 0..<9000 {
            // Mostly rows the hot path takes (each key once, mostly scalars), some not.
            var members: [String] = []
            for key in keys.shuffled(using: &rng) where rng.below(5) > 0 {
                members.append("\"\(key)\": \(rng.below(4) == 0 ? randomValue(&rng) : randomString(&rng))")
            }
            if rng.below(8) == 0 { members.append("\"output\": \(randomValue(&rng))") }
            let line = invalidate(Array(("{" + members.joined(separator: ", ") + "}").utf8), &rng)
            for mapping in mappings {
                XCTAssertNotNil(mapping.scanKeys)
                let parsed: JSONValue
                do { parsed = try JSONParser.parse(line) } catch { continue }
                var slowRepairs = 0
                line.withUnsafeBufferPointer { b in
                    var p = JSONParser(b)
                    _ = try? p.parseRow(keeping: mapping.topLevelKeys)
                    slowRepairs = p.repairs
                }
                let slow = try? mapping.record(from: parsed, source: 0, file: 0, line: 1)
                let fast: Record? = line.withUnsafeBufferPointer { b in
                    var scanner = RowScanner(mapping)
                    defer { scanner.deallocate() }
                    return scanner.map({ row, line in try mapping.plainRecord(from: row, source: 0, file: 0, line: line) }, b, 0, b.count, line: 1)
                }
                if let fast {
                    fastRows += 1
                    XCTAssertEqual(fast, slow, String(decoding: line, as: UTF8.self))
                    XCTAssertEqual(slowRepairs, 0, "the hot path took a row that needed repair: \(String(decoding: line, as: UTF8.self))")
                }
            }
        }
        XCTAssertGreaterThan(fastRows, 400, "the hot path was hardly exercised")
    }
}
