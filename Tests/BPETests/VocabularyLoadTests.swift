import BPE
import TestSupport
import TokenmillCore
import XCTest

/// The vocabulary load runs on several workers (the ranks file is decoded in line-aligned
/// pieces, the pair tables in batches of tokens); it must give the table and the errors a
/// one-worker load gives.
final class VocabularyLoadTests: XCTestCase {
    /// These tests build tables: the compiled-vocabulary cache is off unless a test
    /// points it somewhere itself.
    var savedCacheDir: String?

    override func setUp() {
        savedCacheDir = getenv("TOKENMILL_CACHE_DIR").map { String(cString: $0) }
        setenv("TOKENMILL_CACHE_DIR", "off", 1)
    }

    override func tearDown() {
        if let savedCacheDir { setenv("TOKENMILL_CACHE_DIR", savedCacheDir, 1) } else { unsetenv("TOKENMILL_CACHE_DIR") }
    }
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

    /// The table a process reads from the cache (`VocabularyCache`) is the one it would
    /// build: every token's bytes and rank, every canonical pair's priority and the ids of
    /// real texts. A damaged image (one flipped byte, or cut short) is never used: the
    /// load builds the table again and rewrites the file, byte for byte the first one.
    func testACachedTableIsTheBuiltOneAndADamagedImageIsRebuilt() throws {
        let dir = makeTemporaryDirectory("vocab-cache")
        func images() throws -> [String] { try FileSystem.listDirectory(dir).filter { $0.hasSuffix(".tmrt") } }
        setenv("TOKENMILL_CACHE_DIR", "off", 1)
        let built = try TokenizerLoader.load("cl100k_base", threads: 2)
        XCTAssertEqual(try images(), [])
        setenv("TOKENMILL_CACHE_DIR", dir, 1)
        let first = try TokenizerLoader.load("cl100k_base", threads: 2)   // builds and writes
        let names = try images()
        XCTAssertEqual(names.count, 1)
        let image = dir + "/" + names[0]
        let original = try FileSystem.readFile(image)
        let texts = ["Hello, world! 12345 ünïcödé", String(repeating: "tokenization ", count: 50), "中文文本和 code: let x = y.map { $0 + 1 }",
                     "    indented\n\n\ttabs and   spaces", "😀👍🏽 emoji mixed with words"]
        func assertSame(_ t: Tokenizer, _ what: String) {
            XCTAssertEqual(t.ranks.count, built.ranks.count, what)
            for r in 0..<built.ranks.count {
                let b = built.ranks.tokenBytes(r)
                guard Array(t.ranks.tokenBytes(r)) == Array(b) else { return XCTFail("\(what): token \(r)") }
                guard t.ranks.rank(b.baseAddress!, b.count) == UInt32(r) else { return XCTFail("\(what): rank of \(r)") }
                if r > 0 && t.ranks.pairRank(UInt32(r - 1), UInt32(r)) != built.ranks.pairRank(UInt32(r - 1), UInt32(r)) {
                    return XCTFail("\(what): pair \(r - 1) \(r)")
                }
            }
            var a = t.makeEncoder(), e = built.makeEncoder()
            for text in texts {
                var x: [UInt32] = [], y: [UInt32] = []
                a.encode(Array(text.utf8), into: &x)
                e.encode(Array(text.utf8), into: &y)
                XCTAssertEqual(x, y, "\(what): \(text)")
            }
        }
        assertSame(first, "the load that wrote the image")
        let reads = VocabularyCache.imageReads
        assertSame(try TokenizerLoader.load("cl100k_base", threads: 1), "read from the image")
        XCTAssertEqual(VocabularyCache.imageReads, reads + 1, "the second load reads the image")
        // One flipped byte deep inside a table: the checksum refuses the image.
        var damaged = original
        damaged[damaged.count / 2] ^= 0x10
        try FileSystem.writeAtomically(image, damaged)
        assertSame(try TokenizerLoader.load("cl100k_base", threads: 1), "after a flipped byte")
        XCTAssertEqual(VocabularyCache.imageReads, reads + 1, "a damaged image is not read")
        XCTAssertEqual(try FileSystem.readFile(image), original, "the damaged image is rewritten as built")
        try FileSystem.writeAtomically(image, Array(original[0..<(original.count - 100)]))
        assertSame(try TokenizerLoader.load("cl100k_base", threads: 1), "after a cut")
        XCTAssertEqual(try FileSystem.readFile(image), original)
    }
}

