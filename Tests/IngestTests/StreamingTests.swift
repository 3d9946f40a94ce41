import XCTest
@testable import Ingest
import TestSupport
import TokenmillCore
#if canImport(Glibc)
import Glibc
#endif

/// Streamed reading (block by block, as compressed JSONL and JSON arrays are read) gives
/// exactly what reading the whole file gives: records, rejects with their lines, errors,
/// whatever the block size, including blocks of one byte.
final class StreamingTests: XCTestCase {
    func outcome(_ src: SourceConfig, _ path: String, _ bytes: [UInt8], streamed: Bool) -> String {
        do {
            let rows: FileRows
            if streamed {
                rows = try SourceReader.read(src, fileIndex: 0, path: path,
                                             input: .stream(try ByteStream(contents: bytes, path: path, compression: .none)), threads: 2)
            } else {
                rows = try bytes.withUnsafeBufferPointer { try SourceReader.read(src, fileIndex: 0, path: path, data: $0, threads: 2) }
            }
            let records = rows.records.map { r in "\(r.line)|" + r.turns.map { String(decoding: $0.content, as: UTF8.self) }.joined(separator: "|") }
            let rejects = rows.rejects.map { "\($0.line): \($0.reason)" }
            return "read \(rows.rowsRead) repaired \(rows.repaired)\n" + (records + ["--"] + rejects).joined(separator: "\n")
        } catch {
            return "error: \(error)"
        }
    }

    func check(_ text: String, path: String, file: StaticString = #filePath, line: UInt = #line) {
        let bytes = Array(text.utf8)
        for skip in [false, true] {
            let src = SourceConfig(name: "s", index: 0, files: [path], format: nil,
                                   mapping: FieldMapping(prompt: try! .parse("{instruction}[[\n{input}]]"), response: try! .parse("output")),
                                   skipBadRows: skip)
            let whole = outcome(src, path, bytes, streamed: false)
            for block in [1, 2, 7, 64, 4096] {
                SourceReader.blockBytes = block
                let streamed = outcome(src, path, bytes, streamed: true)
                if !skip && whole.hasPrefix("error:") {
                    // Failing, the stream stops at the first bad element in file order; the
                    // whole-file reader checks the array's syntax before mapping any element,
                    // so it may name a later syntax error first. Both stop with an error.
                    XCTAssertTrue(streamed.hasPrefix("error: \(path):"), "block \(block): \(streamed)", file: file, line: line)
                } else {
                    XCTAssertEqual(streamed, whole, "block \(block), skip \(skip): \(text)", file: file, line: line)
                }
            }
            SourceReader.blockBytes = 32 << 20
        }
    }

    func testJSONLStreamsLikeTheWholeFile() {
        check("""
        {"instruction": "a \\"q\\"\\n", "input": "", "output": "x"}

        {"instruction": "中文 😀", "input": "in", "output": 12345}\r
        {"instruction": "bad", "output": [1]}
        not json
        {"instruction": "last", "output": true}
        """, path: "x.jsonl")
        check("{\"instruction\": \"no newline at the end\", \"output\": 1.5e3}", path: "x.jsonl")
        check("  \n\n ", path: "x.jsonl")
    }

    func testJSONArraysStreamLikeTheWholeFile() {
        check("""
        [
          {"instruction": "a", "input": "", "output": "x"},
          {"instruction": "b\\u00e9", "input": "i", "output": 1234567},
          {"instruction": "c", "output": null, "extra": {"deep": [1, 2, {"k": "v"}]}},
          {"instruction": "d", "output": false}
        ]
        """, path: "x.json")
        check("[{\"instruction\": \"a\", \"output\": 1}, {\"instruction\": \"b\", \"output\": 2} ,{\"instruction\": \"c\" \"output\": 3}]", path: "x.json")
        check("[{\"instruction\": \"a\", \"output\": 10}, 42, \"str\", {\"instruction\": \"z\", \"output\": 7}]", path: "x.json")
        check("[]", path: "x.json")
        check("  [ ]  \n", path: "x.json")
        check("[{\"instruction\": \"a\", \"output\": 1}] trailing", path: "x.json")
        check("[{\"instruction\": \"a\", \"output\": 1}", path: "x.json")
        check("{\"instruction\": \"not an array\"}", path: "x.json")
        check(" \n ", path: "x.json")
        check("[{\"instruction\": \"a\", \"output\": 123}, {\"instruction\": \"b\", \"output\": tru}]", path: "x.json")
    }

    /// What `readStreaming` hands the scan stage, piece by piece (a file on disk, plain or
    /// compressed with the system's gzip/zstd), gathered into one outcome. Error messages
    /// name the temporary file; they are rewritten to `path`.
    func piecewise(_ src: SourceConfig, path: String, _ bytes: [UInt8], compressor: String?) -> String {
        let dir = makeTemporaryDirectory("stream")
        defer { FileSystem.removeTree(dir) }
        var file = FileSystem.join(dir, path)
        do {
            try FileSystem.writeAtomically(file, bytes)
            if let compressor {
                guard system("\(compressor) -q \(file)") == 0 else { return "error: \(compressor) failed" }
                file += compressor == "gzip" ? ".gz" : ".zst"
            }
            var all = FileRows(rowsRead: 0)
            var pieces = 0
            try SourceReader.readStreaming(src, fileIndex: 0, path: file, threads: 2) { p in
                pieces += 1
                all.records += p.records; all.rejects += p.rejects; all.rowsRead += p.rowsRead; all.repaired += p.repaired
            }
            let records = all.records.map { r in "\(r.line)|" + r.turns.map { String(decoding: $0.content, as: UTF8.self) }.joined(separator: "|") }
            let rejects = all.rejects.map { "\($0.line): \($0.reason)" }
            return "read \(all.rowsRead) repaired \(all.repaired)\n" + (records + ["--"] + rejects).joined(separator: "\n")
        } catch {
            return "error: \(error)".replacingOccurrences(of: file, with: path)
        }
    }

    /// Streamed CSV, JSON arrays and `lines` — plain, gzip and zstd — in blocks of any size
    /// give what the whole file gives (records, lines, rejects, the empty-file reject).
    func checkPieces(_ text: String, path: String, format: SourceConfig.Format? = nil, mapping: FieldMapping? = nil,
                     file: StaticString = #filePath, line: UInt = #line) {
        let bytes = Array(text.utf8)
        let haveZstd = system("command -v zstd >/dev/null 2>&1") == 0
        for skip in [false, true] {
            let src = SourceConfig(name: "s", index: 0, files: [path], format: format,
                                   mapping: mapping ?? FieldMapping(prompt: try! .parse("{instruction}[[\n{input}]]"), response: try! .parse("output")),
                                   skipBadRows: skip)
            SourceReader.blockBytes = 32 << 20
            let whole = piecewise(src, path: path, bytes, compressor: nil)
            for block in [1, 3, 17, 4096] {
                SourceReader.blockBytes = block
                for c in [nil, "gzip"] + (haveZstd ? ["zstd"] : []) {
                    let streamed = piecewise(src, path: path, bytes, compressor: c)
                    XCTAssertEqual(streamed, whole, "block \(block), \(c ?? "plain"), skip \(skip): \(text)", file: file, line: line)
                }
            }
            SourceReader.blockBytes = 32 << 20
        }
    }

    func testCSVJSONAndLinesStreamInPieces() {
        checkPieces("instruction,input,output\r\na,,x\n\"b, \"\"quoted\"\"\nline\",in,\"y\"\n\nc,i,z\nshort,row\nd,,\"multi\n\nline\"\n", path: "x.csv")
        checkPieces("\u{FEFF}instruction,input,output\na,b,c", path: "x.csv")
        checkPieces("instruction,input,output\n", path: "x.csv")
        checkPieces("instruction,input,output\na,b,\"never closed\n", path: "x.csv")
        checkPieces("instruction,input,output\na,b,\"c\"junk\nd,e,f\n", path: "x.csv")
        checkPieces("  \n", path: "x.csv")
        checkPieces("[{\"instruction\": \"a\", \"output\": 1}, {\"instruction\": \"b\", \"input\": \"é\", \"output\": 2},\n {\"output\": 3}]", path: "x.json")
        checkPieces("[{\"instruction\": \"a\", \"output\": 1}, {\"instruction\" \"b\"}]", path: "x.json")
        let text = FieldMapping(text: try! .parse("text"))
        checkPieces("first line\n\nsecond 中文\r\n  \nthird", path: "x.txt", format: .lines, mapping: text)
        checkPieces("\n\n", path: "x.txt", format: .lines, mapping: text)
    }
}
