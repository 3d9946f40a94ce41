import Normalize
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
}
