@testable import BPE
import XCTest

/// o200k's pieces found 64 bytes at a time (`tm_o200k_starts64`, `O200kWindowPieces`, the
/// encoder's scanner) must be the byte scanner's (`Scan.o200k`, which the tiktoken tests
/// check against tiktoken's own regex): the same texts through both, piece end for piece
/// end.
final class O200kWindowTests: XCTestCase {
    func ends(_ t: [UInt8], windows: Bool) -> [Int] {
        t.withUnsafeBufferPointer { Pretokenizer.o200kPieceEnds($0, windows: windows) }
    }

    func assertSamePieces(_ t: [UInt8], file: StaticString = #filePath, line: UInt = #line) {
        let a = ends(t, windows: true), b = ends(t, windows: false)
        guard a != b else { return }
        let k = (0..<min(a.count, b.count)).first { a[$0] != b[$0] } ?? min(a.count, b.count)
        let from = k > 0 ? b[k - 1] : 0
        XCTFail("piece \(k) from byte \(from): windows end it at \(a.count > k ? a[k] : -1), the byte scanner at \(b.count > k ? b[k] : -1); text \(String(decoding: t, as: UTF8.self).debugDescription)", file: file, line: line)
    }

    /// Every case the pattern tells apart, where a window ends or a byte >= 0x80 stops it.
    func testShapesAgree() {
        let word = "Hello world, it's THE end.\n\nDon't we'll they're I'M x'S'S camelCaseWORDSand123456 7\t\t!\n"
        var texts: [String] = [
            word, String(repeating: word, count: 5),
            "x'sx's's's 'tis rock'n'roll", "a  b   c\t d \n e\n\n f \r\n g", "end   ", "end\n  ", "  \n",
            "?!/\n/\n/x .\r/\n !a  !a \t!a", "a/\nb a\n/\nb \"/\" x//!y", "1234567890 12 1 a1b2",
            String(repeating: "a", count: 70) + " " + String(repeating: "B", count: 70) + "x",
            String(repeating: " ", count: 70) + "x" + String(repeating: "\n", count: 70) + "y",
            String(repeating: "9", count: 100) + String(repeating: "!", count: 80) + "z",
            "café naïve “quoted” e\u{301}t\u{301} 12٣4 a\u{A0}b a\u{3000}b a\u{85}b a\u{2028}b 中文 ok",
        ]
        // The same shapes shifted across a window's end and into a text's last bytes.
        for shift in 0..<70 { texts.append(String(repeating: "x", count: shift) + " " + word) }
        for shift in 0..<70 { texts.append(String(repeating: "ab ", count: shift / 3) + "it's they're \n\n é") }
        for t in texts { assertSamePieces(Array(t.utf8)) }
    }

    /// Random texts over an alphabet of those cases, lengths across the 64-byte windows.
    func testRandomTextsAgree() {
        let ascii = Array("aAbZzsStTmMdDrReEvVlL09 5 \t\n\r\u{0B}\u{0C}'.,!?/-\"()@_\u{00}\u{1C}\u{1F}\u{7F}  \n\n".utf8).map { [$0] }
        let wide = ["é", "\u{301}", "٣", "\u{A0}", "\u{85}", "\u{2028}", "\u{3000}", "“", "中"].map { Array($0.utf8) }
        let alphabet = ascii + ascii + wide
        var rng: UInt64 = 0x2545_F491_4F6C_DD1D
        func next() -> UInt64 { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng }
        for _ in 0..<20_000 {
            let length = 1 + Int(next() % 300)
            var t: [UInt8] = []
            while t.count < length { t += alphabet[Int(next() % UInt64(alphabet.count))] }
            assertSamePieces(t)
        }
    }
}
