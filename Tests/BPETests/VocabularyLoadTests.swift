import BPE
import TestSupport
import TokenmillCore
import XCTest

/// The vocabulary load runs on several workers (the ranks file is decoded in line-aligned
/// pieces, the pair tables in batches of tokens); it must give the table and the errors a
/// one-worker load gives.
final class VocabularyLoadTests: XCTestCase {
    static let ranksFile = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../Sources/BPE/Resources/cl100k_base.tiktoken").standardized.path

    /// A copy of cl100k_base's ranks file (named so the loader knows its pattern) with
    /// `edit` applied to its lines.
    func ranksCopy(_ edit: (inout [Substring]) -> Void) throws -> String {
        let text = try String(contentsOfFile: Self.ranksFile, encoding: .utf8)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        edit(&lines)
        let dir = makeTemporaryDirectory("vocab")
        let path = dir + "/cl100k_base.tiktoken"
        try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func message(_ body: () throws -> Tokenizer) -> String {
        do { _ = try body(); return "no error" } catch { return "\(error)" }
    }

    func testSeveralWorkersGiveTheOneWorkerTable() throws {
        let one = try TokenizerLoader.load("cl100k_base", threads: 1)
        let four = try TokenizerLoader.load("cl100k_base", threads: 4)
        XCTAssertEqual(one.vocabSize, four.vocabSize)
        XCTAssertEqual(one.vocabHash, four.vocabHash)
        var a = one.makeEncoder(), b = four.makeEncoder()
        let texts = ["Hello, world! 12345 ünïcödé", String(repeating: "tokenization ", count: 200), "中文文本和 code: let x = y.map { $0 + 1 }",
                     "    indented\n\n\ttabs and   spaces", "😀👍🏽 emoji mixed with words"]
        for t in texts {
            var x: [UInt32] = [], y: [UInt32] = []
            a.encode(Array(t.utf8), into: &x)
            b.encode(Array(t.utf8), into: &y)
            XCTAssertEqual(x, y, t)
            XCTAssertFalse(x.isEmpty)
        }
    }

    /// An error far into the file (past the first piece) names the file's line, whatever
    /// the number of workers.
    func testErrorsNameTheFilesLineWithAnyNumberOfWorkers() throws {
        let bad = try ranksCopy { $0[80_000] = "not-a-pair" }
        for threads in [1, 3] {
            XCTAssertEqual(message { try TokenizerLoader.load(bad, threads: threads) }, "\(bad):80001: expected 'BASE64 RANK'", "threads \(threads)")
        }
        // The second of two lines giving one rank is the one named, even when a later
        // piece also holds an error.
        let twice = try ranksCopy { lines in
            lines[90_000] = Substring(lines[90_000].split(separator: " ")[0] + " 1234")
            lines[99_000] = "@@@ 5"
        }
        for threads in [1, 2, 4] {
            XCTAssertEqual(message { try TokenizerLoader.load(twice, threads: threads) }, "\(twice):90001: rank 1234 given twice", "threads \(threads)")
        }
        let rank = try ranksCopy { $0[70_000] = "IQ== 12x" }
        for threads in [1, 4] {
            XCTAssertEqual(message { try TokenizerLoader.load(rank, threads: threads) }, "\(rank):70001: invalid rank", "threads \(threads)")
        }
    }
}
