import Pipeline
import ShardFormat
import TestSupport
import TokenmillCore
import XCTest

func write(_ path: String, _ text: String) throws { try FileSystem.writeAtomically(path, Array(text.utf8)) }

final class BuildTests: XCTestCase {
    var dir = ""

    override func setUp() {
        dir = makeTemporaryDirectory("build")
    }

    func spec(_ body: String) throws -> String {
        let path = "\(dir)/spec.json"
        try write(path, body)
        return path
    }

    func jsonl(_ rows: Int) -> String {
        (0..<rows).map { i in #"{"q": "Question \#(i % 37): what is \#(i) + \#(i)?", "a": "It is \#(2 * i).\r\n"}"# }.joined(separator: "\n") + "\n"
    }

    func testThreadCountDoesNotChangeAnyOutputByte() throws {
        try write("\(dir)/rows.jsonl", jsonl(3000))
        let s = try spec(#"{"sources": [{"name": "qa", "path": "rows.jsonl", "map": {"prompt": "q", "response": "a"}}], "split": {"validation": 0.05, "seed": 3}, "tokenizer": "gpt2", "template": "alpaca", "pack": {"seq_len": 256, "strategy": "best-fit"}, "output": {"dir": "out", "shard_tokens": 20000, "shuffle_seed": 1}}"#)
        var outputs: [[String: [UInt8]]] = []
        for threads in [1, 2] {
            let out = "\(dir)/out-\(threads)"
            _ = try Build(spec: try BuildSpec.load(s), options: BuildOptions(threads: threads, outDir: out, quiet: true)).run()
            var files: [String: [UInt8]] = [:]
            for name in try FileSystem.listDirectory(out) where name != "report.json" && name != "report.html" { files[name] = try FileSystem.readFile("\(out)/\(name)") }
            outputs.append(files)
            XCTAssertNoThrow(try DatasetVerifier.verify(dir: out))
        }
        XCTAssertEqual(outputs[0], outputs[1])
        XCTAssertTrue(outputs[0].keys.contains("train-00001.tkm"), "several shards expected: \(outputs[0].keys.sorted())")
        XCTAssertTrue(outputs[0].keys.contains("validation-00000.tkm"))
        let index = String(decoding: outputs[0]["index.json"]!, as: UTF8.self)
        XCTAssertTrue(index.contains(#""dtype": "uint16""#))
        XCTAssertTrue(index.contains(#""read": 3000"#))
    }

    func testMalformedLineFailsWithFileAndLine() throws {
        try write("\(dir)/rows.jsonl", #"{"q": "a", "a": "b"}"# + "\n\n" + #"{"q": "a", "a": }"# + "\n")
        let s = try spec(#"{"sources": [{"name": "qa", "path": "rows.jsonl", "map": {"prompt": "q", "response": "a"}}], "output": {"dir": "out"}}"#)
        XCTAssertThrowsError(try Build(spec: try BuildSpec.load(s), options: BuildOptions(threads: 2, quiet: true)).run()) { e in
            guard let te = e as? TokenmillError, case .badInput(let path, let line, _) = te else { return XCTFail("\(e)") }
            XCTAssertEqual(te.exitCode, 65)
            XCTAssertEqual(path, "\(dir)/rows.jsonl")
            XCTAssertEqual(line, 3)
        }
        XCTAssertFalse(FileSystem.fileExists("\(dir)/out/index.json"))
    }

    func testSkipRecordsRejectsAndGoesOn() throws {
        try write("\(dir)/rows.jsonl", #"{"q": "a", "a": "b"}"# + "\n" + "not json\n" + #"{"q": "c"}"# + "\n" + #"{"q": "d", "a": "e"}"# + "\n")
        let s = try spec(#"{"on_error": "skip", "sources": [{"name": "qa", "path": "rows.jsonl", "map": {"prompt": "q", "response": "a"}}], "tokenizer": "cl100k_base", "template": "chatml", "output": {"dir": "out"}}"#)
        _ = try Build(spec: try BuildSpec.load(s), options: BuildOptions(threads: 1, quiet: true)).run()
        let rejects = String(decoding: try FileSystem.readFile("\(dir)/out/rejects.jsonl"), as: UTF8.self).split(separator: "\n")
        XCTAssertEqual(rejects.count, 2)
        XCTAssertTrue(rejects[0].contains(#""line":2"#) && rejects[0].contains("invalid JSON"))
        XCTAssertTrue(rejects[1].contains(#""line":3"#) && rejects[1].contains("missing field 'a'"))
        let index = String(decoding: try FileSystem.readFile("\(dir)/out/index.json"), as: UTF8.self)
        XCTAssertTrue(index.contains(#""read": 2"#) && index.contains(#""rejected": 2"#))
    }

    func testSpecErrorsNameTheKey() throws {
        try write("\(dir)/rows.jsonl", jsonl(2))
        let cases: [(String, String)] = [
            (#"{"sources": [{"path": "rows.jsonl", "map": {"prompt": "q", "response": "a"}}], "bogus": 1}"#, "bogus"),
            (#"{"sources": [{"path": "missing.jsonl", "map": {"prompt": "q", "response": "a"}}]}"#, "sources[0].path"),
            (#"{"sources": [{"path": "rows.jsonl", "map": {"prompt": "q"}}]}"#, "sources[0].map"),
            (#"{"sources": [{"path": "rows.jsonl", "map": {"prompt": "q", "response": "a"}}], "pack": {"strategy": "zigzag"}}"#, "pack.strategy"),
            (#"{"sources": [{"path": "rows.jsonl", "map": {"prompt": "q", "response": "a"}}], "pack": {"seq_len": "long"}}"#, "pack.seq_len"),
            (#"{"sources": []}"#, "sources"),
        ]
        for (body, key) in cases {
            let s = try spec(body)
            XCTAssertThrowsError(try BuildSpec.load(s), body) { e in
                guard let te = e as? TokenmillError, case .spec(_, let k, _) = te else { return XCTFail("\(e)") }
                XCTAssertEqual(k, key, body)
                XCTAssertEqual(te.exitCode, 2)
            }
        }
    }

    func testExactDuplicatesAfterNormalizationAreRemovedFirstKept() throws {
        // The key folds case, punctuation, diacritics and whitespace (docs/DEDUP.md): rows
        // 2, 3, 5 and 6 repeat rows 1 and 4; row 7 differs by a word.
        try write("\(dir)/rows.jsonl", [#"{"q": "Hi", "a": "Yo"}"#, #"{"q": " Hi\r\n", "a": "Yo "}"#, #"{"q": "HI", "a": "Yo!"}"#,
                                        #"{"q": "e\u0301", "a": "x"}"#, #"{"q": "\u00e9", "a": "x"}"#, #"{"q": "E", "a": "X."}"#,
                                        #"{"q": "Hi", "a": "Yo there"}"#].joined(separator: "\n"))
        let s = try spec(#"{"sources": [{"name": "qa", "path": "rows.jsonl", "map": {"prompt": "q", "response": "a"}}], "tokenizer": "o200k_base", "template": "plain", "pack": {"strategy": "none"}, "output": {"dir": "out"}}"#)
        _ = try Build(spec: try BuildSpec.load(s), options: BuildOptions(threads: 1, quiet: true)).run()
        let index = String(decoding: try FileSystem.readFile("\(dir)/out/index.json"), as: UTF8.self)
        XCTAssertTrue(index.contains(#""exact_dup": 4"#), index)
        XCTAssertTrue(index.contains(#""kept": 3"#))
        let r = try ShardReader(path: "\(dir)/out/train-00000.tkm")
        XCTAssertEqual(r.recordCount, 3)
    }
}
