@testable import BPE
import TokenmillCore
import XCTest

/// Merging cut parts from their characters' tokens (`CharStarts`) must give exactly the
/// byte-level merge's ids: the same texts through the same vocabulary with the character
/// starts turned off are the oracle (and tiktoken's ids, in TiktokenFixtureTests and the
/// Python tests over ../shared, check both against the reference).
final class CharStartsTests: XCTestCase {
    func testTokenShapes() {
        func shape(_ b: [UInt8]) -> CharStarts.Shape { b.withUnsafeBufferPointer { CharStarts.shape($0.baseAddress!, b.count) } }
        XCTAssertEqual(shape(Array("京".utf8)), .oneCharacter(0x4EAC))
        XCTAssertEqual(shape(Array("é".utf8)), .oneCharacter(0xE9))
        XCTAssertEqual(shape(Array("北京".utf8)), .characters)
        XCTAssertEqual(shape(Array(" 北".utf8)), .characters)
        XCTAssertEqual(shape([0xE5, 0x8C]), .fragment)             // 北 without its last byte
        XCTAssertEqual(shape([0x8C, 0x97]), .fragment)             // 北 without its lead byte
        XCTAssertEqual(shape([0x97, 0xE4, 0xBA, 0xAC]), .straddling) // the end of 北, then 京 (an o200k_base token)
        XCTAssertEqual(shape([0x20, 0xE5]), .straddling)           // a space and a lead byte
        XCTAssertEqual(shape(Array("彩".utf8) + [0xE7, 0xA5]), .straddling)
        XCTAssertEqual(shape([0xED, 0xA0, 0x80]), .straddling)      // a surrogate is no character
        XCTAssertEqual(shape([0xC0, 0x80]), .straddling)            // nor an overlong NUL
        XCTAssertEqual(shape([0xF0, 0x9F, 0x98]), .fragment)        // 😀 without its last byte
    }

    func testCharacterStartsAreOnForTiktokenVocabularies() throws {
        for name in ["cl100k_base", "o200k_base"] {
            let t = try TokenizerLoader.load(name)
            let starts = try XCTUnwrap(t.ranks.charStarts, "\(name): character starts off")
            // 京 is one token of both vocabularies, and reachable from its bytes.
            XCTAssertNotEqual(starts.tokens[0x4EAC], RankTable.none, name)
        }
    }

    /// Hugging Face merges lists: on where each token is made by one merge and merges go
    /// up in priority. Every tokenizer.json of ../shared/outside/tokenizers that loads and
    /// has the starts on must give the byte-level merge's ids.
    func testMergesListVocabulariesGiveTheByteLevelMergesIds() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../shared/outside/tokenizers").standardized.path
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else {
            throw XCTSkip("../shared/outside/tokenizers is absent (the repository's parent has no shared folder)")
        }
        let texts = Self.texts(count: 600)
        var on: [String] = []
        for name in names.sorted() where name.hasSuffix(".json") {
            guard let t = try? TokenizerLoader.load(dir + "/" + name), let starts = t.ranks.charStarts else { continue }
            on.append(name)
            let with = texts.map { t.encodeOrdinary(Array($0.utf8)) }
            t.ranks.charStarts = nil
            defer { t.ranks.charStarts = starts }
            for (k, text) in texts.enumerated() where with[k] != t.encodeOrdinary(Array(text.utf8)) {
                XCTFail("\(name): \(text)")
                break
            }
        }
        print("character starts on for: \(on.joined(separator: ", "))")
    }

    func testCharacterStartsGiveTheByteLevelMergesIds() throws {
        let texts = Self.texts(count: 3_000)
        for name in ["cl100k_base", "o200k_base"] {
            let t = try TokenizerLoader.load(name)
            let starts = try XCTUnwrap(t.ranks.charStarts)
            let on = texts.map { t.encodeOrdinary(Array($0.utf8)) }
            t.ranks.charStarts = nil
            defer { t.ranks.charStarts = starts }
            for (k, text) in texts.enumerated() {
                let off = t.encodeOrdinary(Array(text.utf8))
                XCTAssertEqual(on[k], off, "\(name): \(text)")
                if on[k] != off { break }
            }
        }
    }

    /// Random texts: characters from the scripts the cut test leaves long parts of (CJK
    /// ideographs, kana, Hangul, full-width punctuation), 2-byte scripts, 4-byte emoji,
    /// and the runs around o200k_base's straddling tokens (北京, 彩票, 微信, 北京赛车).
    static func texts(count: Int) -> [String] {
        let pools: [[String]] = [
            Array("的一是不了人我在有他这中大来上个国到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与二",
                  ).map(String.init),
            ["北京", "彩票", "微信", "北京赛车", "北京时间", "彩票网", "微信号", "龘", "齉", "靐", "鱻", "爨"],
            Array("，。！？、：；（）《》「」『』【】～").map(String.init),
            Array("あいうえおかきくけこがぎぐげごアイウエオカキクケコーッャ").map(String.init),
            Array("한국어가나다라마바사아자차카타파하").map(String.init),
            Array("абвгдеёжзийклмнопрстуфхцчшщъыьэюяαβγδεζηθλμπσωéèêëçàâñüößøå").map(String.init),
            ["😀", "👍", "🇨🇳", "𠀀", "𪚥", "🤖"],
            [" ", "1", "23", "a", "AI", "x"],
        ]
        var rng = SystemRandomNumberGenerator()
        var texts: [String] = []
        for _ in 0..<count {
            var s = ""
            let len = Int.random(in: 1...40, using: &rng)
            let main = Int.random(in: 0..<pools.count, using: &rng)
            for _ in 0..<len {
                let pool = Int.random(in: 0..<10, using: &rng) < 8 ? pools[main] : pools.randomElement(using: &rng)!
                s += pool.randomElement(using: &rng)!
            }
            texts.append(s)
        }
        return texts
    }
}
