import XCTest
@testable import Ingest
import TokenmillCore
import TestSupport

final class CSVAndCompressionTests: XCTestCase {
    func rows(_ s: String) throws -> [[String]] {
        let bytes = Array(s.utf8)
        return try bytes.withUnsafeBufferPointer { b throws(CSVReader.Failure) in try CSVReader.rows(b) }
            .map { $0.fields.map { String(decoding: $0, as: UTF8.self) } }
    }

    func testRFC4180Fields() throws {
        XCTAssertEqual(try rows("a,b,c\r\n1,\"x, y\",\"say \"\"hi\"\"\"\r\n\"multi\nline\",,end\n"),
                       [["a", "b", "c"], ["1", "x, y", "say \"hi\""], ["multi\nline", "", "end"]])
        XCTAssertEqual(try rows("\u{FEFF}h\n\nv\n\n"), [["h"], ["v"]])      // BOM dropped, blank lines are not rows
        XCTAssertEqual(try rows("a,b\n1,"), [["a", "b"], ["1", ""]])          // trailing empty field at EOF
        XCTAssertEqual(try rows("a\r\nx\ry\r\n"), [["a"], ["x\ry"]])          // a lone CR is data
    }

    func testMalformedRowsNameTheirRow() {
        XCTAssertThrowsError(try rows("a,b\n1,\"open\n")) { e in
            let f = e as! CSVReader.Failure
            XCTAssertEqual(f.row, 1); XCTAssertTrue(f.fatal)
        }
        // Malformed but bounded by its line: a row that carries its error, and reading goes
        // on at the next line (text after a closing quote; a quote in an unquoted field).
        let table = try! Array("a,b\n1,2\n\"x\"y,2\nq\"uote,3\n4,5\n".utf8).withUnsafeBufferPointer { b in try CSVReader.rows(b) }
        XCTAssertEqual(table.map(\.number), [0, 1, 2, 3, 4])
        XCTAssertEqual(table.map { $0.error != nil }, [false, false, true, true, false])
        XCTAssertEqual(table[4].fields.map { String(decoding: $0, as: UTF8.self) }, ["4", "5"])
        XCTAssertEqual(try! Array("q\"uote,3\n".utf8).withUnsafeBufferPointer { b in try CSVReader.rows(b, firstNumber: 1, lenientQuotes: true) }
                        .map { $0.fields.map { String(decoding: $0, as: UTF8.self) } }, [["q\"uote", "3"]])
        // In the header, the same is fatal (no column names to go on with).
        XCTAssertThrowsError(try rows("a\"b,c\n1,2\n")) { e in XCTAssertTrue((e as! CSVReader.Failure).fatal) }
    }

    /// Seeded random mutations of a valid file: the scanner never crashes or hangs; it
    /// returns rows or a typed failure.
    func testRandomMutationsNeverCrash() {
        let base = Array("instruction,input,output\r\n\"a, \"\"q\"\"\",\"multi\nline\",x\r\nb,,\"c\"\r\n你好,😀,\"\"\r\n".utf8)
        var rng = SplitMix64(seed: 42)
        let alphabet: [UInt8] = [0x22, 0x2C, 0x0A, 0x0D, 0x61, 0xE4, 0xFF, 0x00]
        for _ in 0..<20_000 {
            var b = base
            mutate(&b, edits: 1 + Int(rng.below(4)), &rng) { alphabet[Int($0.below(UInt64(alphabet.count)))] }
            _ = try? b.withUnsafeBufferPointer { p throws(CSVReader.Failure) in try CSVReader.rows(p) }
        }
    }

    func testGzipAndZstdRoundTripsAndTruncation() throws {
        // Fixed streams made with Python's gzip (two members) and zstandard.
        let gz: [UInt8] = Base64.decode(ArraySlice("H4sIAAAAAAACA8tIzcnJBwCGphA2BQAAAB+LCAAAAAAAAgMrzy/KSQEAQxF3OgUAAAA=".utf8))!
        XCTAssertEqual(String(decoding: try Compression.gunzip(gz, path: "t.gz"), as: UTF8.self), "helloworld")
        XCTAssertThrowsError(try Compression.gunzip(Array(gz[0..<12]), path: "t.gz"))
        let zst: [UInt8] = Base64.decode(ArraySlice("KLUv/SQLWQAAaGVsbG8gd29ybGRoaR6y".utf8))!
        XCTAssertEqual(String(decoding: try Compression.unzstd(zst, path: "t.zst"), as: UTF8.self), "hello world")
        XCTAssertThrowsError(try Compression.unzstd(Array(zst.dropLast(5)), path: "t.zst"))
        XCTAssertThrowsError(try Compression.unzstd([], path: "t.zst"))
    }
}
