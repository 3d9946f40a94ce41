@testable import Normalize
import TokenmillCore
import XCTest

final class NormalizerTests: XCTestCase {
    func norm(_ s: String, _ n: Normalizer = Normalizer()) -> String { String(decoding: n.apply(Array(s.utf8)), as: UTF8.self) }

    func testNFCComposes() {
        XCTAssertEqual(Array(norm("e\u{301}").unicodeScalars), ["\u{E9}"])
        XCTAssertEqual(Array(norm("\u{212B}").unicodeScalars), ["\u{C5}"])        // Angstrom sign -> Å
        XCTAssertEqual(Array(norm("\u{1100}\u{1161}").unicodeScalars), ["\u{AC00}"]) // Hangul jamo
        XCTAssertEqual(Array(norm("ﬁ").unicodeScalars), ["\u{FB01}"])             // NFC keeps compatibility chars
    }

    func testNewlinesControlsAndTrim() {
        XCTAssertEqual(norm("a\r\nb\rc\n"), "a\nb\nc")
        XCTAssertEqual(norm("\u{0}a\u{7}b\u{7F}c\u{85}d\u{9F}\te"), "abcd\te")
        XCTAssertEqual(norm(" \u{3000}\u{A0}\n x y \u{2028}\t"), "x y")
        XCTAssertEqual(norm("   "), "")
        XCTAssertEqual(norm("a\r\nb", Normalizer(nfc: true, newlines: false, stripControl: false, trim: false)), "a\r\nb")
        XCTAssertEqual(norm("a\rb", Normalizer(nfc: true, newlines: false, stripControl: true, trim: false)), "ab")
    }

    func testFilterDropsEmptyResponsesAndShortRecords() {
        let f = RecordFilter(minChars: 5, maxChars: 20)
        let ok = Record.instruction(source: 0, file: 0, line: 1, system: [], prompt: Array("Hello".utf8), response: Array("World".utf8))
        XCTAssertNil(f.reject(ok))
        var empty = ok; empty.turns[1].content = []
        XCTAssertEqual(f.reject(empty), "empty_response")
        let short = Record(source: 0, file: 0, line: 1, kind: .text, text: Array("abc".utf8))
        XCTAssertEqual(f.reject(short), "min_chars")
        let long = Record(source: 0, file: 0, line: 1, kind: .text, text: Array(String(repeating: "中", count: 21).utf8))
        XCTAssertEqual(f.reject(long), "max_chars")
    }

    /// The quick check may skip the standard library's NFC only where that NFC changes
    /// nothing: every BMP scalar in contexts where it could compose, reorder or be
    /// composed with, against the standard library's NFC of the whole text.
    func testNFCQuickCheckNeverSkipsAChange() {
        let nfcOnly = Normalizer(nfc: true, newlines: false, stripControl: false, trim: false)
        var skipped = 0
        for c in UInt32(0x80)..<0x10000 {
            guard let s = Unicode.Scalar(c) else { continue }
            for t in ["a\(s)", "\(s)\u{301}", "\u{1100}\(s)", "e\(s)\(s)", "\(s)\u{1161}\u{11A8}", "\u{AC00}\(s)", "\u{3099}\(s)\u{316}\u{301}"] {
                let bytes = Array(t.utf8)
                let expected = String(decoding: bytes, as: UTF8.self)._nfcCodeUnits
                if nfcOnly.apply(bytes) != expected { XCTFail("U+\(String(c, radix: 16)) in \(t.unicodeScalars.map { String($0.value, radix: 16) })"); return }
            }
            if Array("a\(s)".utf8).withUnsafeBufferPointer(NFCQuickCheck.isStable) { skipped += 1 }
        }
        XCTAssertGreaterThan(skipped, 40_000, "most BMP scalars are NFC-stable and skip the normalizer")
    }

    /// The control scan (32 bytes a step) finds the first byte the rule names from every
    /// start, and the control pass built on it equals a byte-by-byte pass, for every
    /// combination of the newline and control options, on random texts with \r, \r\n,
    /// C0 and C1 controls, DEL and other 0xC2 sequences around its blocks.
    func testControlScanAgreesWithTheByteRule() {
        func reference(_ b: [UInt8], newlines: Bool, strip: Bool) -> [UInt8] {
            var out: [UInt8] = [], i = 0
            while i < b.count {
                let c = b[i]
                if c == 0x0D && newlines { out.append(0x0A); i += (i + 1 < b.count && b[i + 1] == 0x0A) ? 2 : 1; continue }
                if strip {
                    if (c < 0x20 && c != 0x0A && c != 0x09) || c == 0x7F { i += 1; continue }
                    if c == 0xC2 && i + 1 < b.count && b[i + 1] >= 0x80 && b[i + 1] <= 0x9F { i += 2; continue }
                }
                out.append(c); i += 1
            }
            return out
        }
        func isControl(_ c: UInt8) -> Bool { (c < 0x20 && c != 0x0A && c != 0x09) || c == 0x7F || c == 0xC2 }
        var rng = SplitMix64(seed: 5)
        for round in 0..<20_000 {
            let n = Int(rng.below(round < 10_000 ? 70 : 300))
            let b = (0..<n).map { _ -> UInt8 in
                let r = rng.below(100)
                if r < 85 { return UInt8(0x20 + rng.below(0x5F)) }
                if r < 92 { return UInt8(0x80 + rng.below(0x80)) }
                return [0x0A, 0x09, 0x00, 0x1F, 0x7F, 0xC2, 0x0D, 0xE4, 0x20, 0x1E][Int(rng.below(10))]
            }
            let from = n == 0 ? 0 : Int(rng.below(UInt64(n)))
            let expected = (from..<n).first { isControl(b[$0]) } ?? n
            XCTAssertEqual(b.withUnsafeBufferPointer { nextControlByte($0, from: from) }, expected)
            for (nl, strip) in [(true, true), (true, false), (false, true)] {
                let norm = Normalizer(nfc: false, newlines: nl, stripControl: strip, trim: false)
                if norm.cleanControls(b, ascii: false) != reference(b, newlines: nl, strip: strip) {
                    XCTFail("\(b) newlines \(nl) strip \(strip)"); return
                }
            }
        }
    }

    /// What the quick check's CJK skip assumes: no scalar of U+4000...U+9FFF may change
    /// under NFC, alone or after a letter.
    func testCJKIsNFCStable() {
        for c in UInt32(0x4000)..<0xA000 {
            XCTAssertEqual(NFCQuickCheck.unsafeBits[Int(c >> 6)] & (1 << UInt64(c & 63)), 0, String(c, radix: 16))
            let t = "a" + String(Character(Unicode.Scalar(c)!))
            XCTAssertEqual(t._nfcCodeUnits, Array(t.utf8))
        }
    }

    func testScalarCountCountsScalars() {
        for s in ["", "a", "héllo wörld, 中文字符 and 😀 emoji ☃", String(repeating: "ab中😀", count: 37)] {
            XCTAssertEqual(countScalars(Array(s.utf8)), s.unicodeScalars.count)
        }
    }

    /// A conversation whose earlier assistant turn is empty would train on that turn's end
    /// marker alone: dropped by reason, unless the spec allows empty turns.
    func testAnEmptyAssistantTurnIsAReasonUnlessAllowed() {
        func chat(_ replies: [String]) -> Record {
            var turns: [Record.Turn] = []
            for (k, r) in replies.enumerated() {
                turns.append(.init(role: .user, content: Array("question \(k)".utf8)))
                turns.append(.init(role: .assistant, content: Array(r.utf8)))
            }
            return Record(source: 0, file: 0, line: 1, kind: .conversation, turns: turns)
        }
        var f = RecordFilter()
        XCTAssertNil(f.reject(chat(["a", "b"])))
        XCTAssertEqual(f.reject(chat(["", "b"])), "empty_assistant_turn")
        XCTAssertEqual(f.reject(chat(["a", ""])), "empty_response")
        f.allowEmptyTurns = true
        XCTAssertNil(f.reject(chat(["", "b"])))
        XCTAssertEqual(f.reject(chat(["a", ""])), "empty_response")
    }
}

