import BPE
import TokenmillCore
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Ids must equal tiktoken's `encode_ordinary`. The oracle is a fixture of ids produced by
/// tiktoken itself (Fixtures/make_tiktoken_cases.py) over adversarial strings and real
/// snippets; the Python suite repeats the check over every text of ../shared/data.
final class TiktokenFixtureTests: XCTestCase {
    static let fixture: JSONValue? = {
        let dir = FileSystem.dirname(of: #filePath)
        guard let bytes = try? FileSystem.readFile(FileSystem.join(dir, "Fixtures/tiktoken_cases.json")) else { return nil }
        return try? JSONParser.parse(bytes)
    }()

    func check(_ name: String) throws {
        guard let fx = Self.fixture else { throw XCTSkip("Fixtures/tiktoken_cases.json missing") }
        let tokenizer = try TokenizerLoader.load(name)
        guard let texts = fx["texts"]?.arrayValue, let expected = fx[name]?.arrayValue else {
            return XCTFail("fixture lacks texts or \(name)")
        }
        XCTAssertEqual(texts.count, expected.count)
        XCTAssertGreaterThan(texts.count, 100)
        var failures = 0
        for (t, e) in zip(texts, expected) {
            guard case .string(let text) = t else { return XCTFail("fixture text is not a string") }
            let want = (e.arrayValue ?? []).map { UInt32($0.intValue!) }
            let got = tokenizer.encodeOrdinary(text)
            if got != want {
                failures += 1
                if failures <= 3 { XCTFail("\(name): \(String(decoding: text.prefix(80), as: UTF8.self).debugDescription): got \(got.prefix(16)) want \(want.prefix(16))") }
            }
            XCTAssertEqual(try tokenizer.decode(got), text, "decode(encode(x)) must be x")
        }
        XCTAssertEqual(failures, 0)
    }

    func testGPT2MatchesTiktoken() throws { try check("gpt2") }
    func testP50kMatchesTiktoken() throws { try check("p50k_base") }
    func testCl100kMatchesTiktoken() throws { try check("cl100k_base") }
    func testO200kMatchesTiktoken() throws { try check("o200k_base") }
}
