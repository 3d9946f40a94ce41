import ShardFormat
import TestSupport
import TokenmillCore
import XCTest

/// index.json as written (`render`) and as `tokenmill verify` checks it against the shards
/// (FORMAT.md 2, 2.5). Expectations are written out by hand from the format document.
final class DatasetIndexTests: XCTestCase {
    func testRenderWritesTheKeysOfFormatSection2InOrder() {
        let index = DatasetIndex(
            toolVersion: "9.9.9", specHash: "00000000000000ab", name: "t",
            tokenizer: .init(name: "tok", vocabHash: "0123456789abcdef", vocabSize: 70000, eosID: 5, padID: 5,
                             specialTokens: [("<|a|>", 5), ("<|b|>", 6)]),
            template: "plain", seqLen: 8, strategy: "pad", overflow: "drop",
            splits: [.init(name: "train", shards: [.init(file: "train-00000.tkm", records: 2, tokens: 16, bytes: 100, checksum: "00000000000000ff"),
                                                   .init(file: "train-00001.tkm", records: 1, tokens: 8, bytes: 90, checksum: "0000000000000001")],
                           documents: 3, paddingTokens: 7)],
            sources: [("s", .object([("read", .int(3))]))])
        let want = """
        {
          "format": "tokenmill-shards",
          "format_version": "1.1",
          "tool_version": "9.9.9",
          "spec_hash": "00000000000000ab",
          "name": "t",
          "tokenizer": {
            "name": "tok",
            "vocab_hash": "0123456789abcdef",
            "vocab_size": 70000,
            "eos_id": 5,
            "pad_id": 5,
            "special_tokens": {
              "<|a|>": 5,
              "<|b|>": 6
            }
          },
          "template": "plain",
          "seq_len": 8,
          "pack": {
            "strategy": "pad",
            "overflow": "drop"
          },
          "dtype": "uint32",
          "splits": {
            "train": {
              "records": 3,
              "tokens": 24,
              "documents": 3,
              "padding_tokens": 7,
              "bytes": 190,
              "shards": [
                {
                  "file": "train-00000.tkm",
                  "records": 2,
                  "tokens": 16,
                  "bytes": 100,
                  "checksum": "00000000000000ff"
                },
                {
                  "file": "train-00001.tkm",
                  "records": 1,
                  "tokens": 8,
                  "bytes": 90,
                  "checksum": "0000000000000001"
                }
              ]
            }
          },
          "sources": {
            "s": {
              "read": 3
            }
          }
        }

        """
        XCTAssertEqual(String(decoding: index.render(), as: UTF8.self), want)
    }

    // MARK: verify against the shards

    /// Three sequences of seq_len 4 under `pad` (pad id 9): one full, two padded (2 and 3
    /// padding tokens). 5 document starts, 3 real documents, 5 padding tokens.
    let padded = [
        SequenceRecord(tokens: [1, 2, 3, 4], lossMask: [1, 1, 1, 1], docStarts: [0]),
        SequenceRecord(tokens: [5, 6, 9, 9], lossMask: [0, 1, 0, 0], docStarts: [0, 2]),
        SequenceRecord(tokens: [7, 9, 9, 9], lossMask: [1, 0, 0, 0], docStarts: [0, 1]),
    ]

    struct Fields {
        var version = "1.1"
        var vocab = 300
        var dtype = "uint16"
        var strategy = "pad"
        var documents = "3"
        var padding: String? = "5"
        var splitBytes: Int? = nil
    }

    /// A dataset directory: one train shard of `records`, and an index.json typed out.
    func dataset(_ records: [SequenceRecord], _ f: Fields, width: Int = 2) throws -> String {
        let dir = makeTemporaryDirectory("index")
        let s = try ShardWriter.write(path: "\(dir)/train-00000.tkm", records: records[...], tokenWidth: width, zstdLevel: 3, threads: 1)
        let padding = f.padding.map { #""padding_tokens": \#($0), "# } ?? ""
        let text = """
        {"format": "tokenmill-shards", "format_version": "\(f.version)", "tool_version": "x", "spec_hash": "0000000000000000",
         "name": "t", "tokenizer": {"name": "tok", "vocab_hash": "0000000000000000", "vocab_size": \(f.vocab), "eos_id": 9,
         "pad_id": 9, "special_tokens": {}}, "template": "plain", "seq_len": 4,
         "pack": {"strategy": "\(f.strategy)", "overflow": "split"}, "dtype": "\(f.dtype)",
         "splits": {"train": {"records": \(s.records), "tokens": \(s.tokens), "documents": \(f.documents), \(padding)"bytes": \(f.splitBytes ?? s.bytes),
           "shards": [{"file": "train-00000.tkm", "records": \(s.records), "tokens": \(s.tokens), "bytes": \(s.bytes), "checksum": "\(XXH3.hex(s.checksum))"}]}},
         "sources": {}}
        """
        try FileSystem.writeAtomically("\(dir)/index.json", Array(text.utf8))
        return dir
    }

    func assertDamaged(_ dir: String, _ mentions: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try DatasetVerifier.verify(dir: dir), file: file, line: line) { e in
            guard let te = e as? TokenmillError, case .corrupt(let path, let message) = te else { return XCTFail("\(e)", file: file, line: line) }
            XCTAssertEqual(te.exitCode, 65, file: file, line: line)
            for m in mentions { XCTAssertTrue((path + ": " + message).contains(m), "\(m) not in: \(path): \(message)", file: file, line: line) }
        }
    }

    func testPaddingIsCountedApartFromDocuments() throws {
        let r = try DatasetVerifier.verify(dir: try dataset(padded, Fields()))
        XCTAssertEqual(r.records, 3)
        XCTAssertEqual(r.tokens, 12)
        XCTAssertEqual(r.documents, 3)
        XCTAssertEqual(r.paddingTokens, 5)
    }

    func testATamperedDocumentsTotalFails() throws {
        // 5 is the old reading (padding documents counted); 4 and 2 are plainly wrong.
        for d in ["5", "4", "2"] {
            assertDamaged(try dataset(padded, Fields(documents: d)), ["index.json", "splits.train.documents"])
        }
    }

    func testATamperedPaddingTotalFailsAndIsRequiredFrom1_1() throws {
        assertDamaged(try dataset(padded, Fields(padding: "4")), ["index.json", "splits.train.padding_tokens"])
        assertDamaged(try dataset(padded, Fields(padding: nil)), ["index.json", "splits.train.padding_tokens", "missing"])
    }

    func testA1_0IndexCountsPaddingDocumentsAndHasNoPaddingKey() throws {
        XCTAssertEqual(try DatasetVerifier.verify(dir: try dataset(padded, Fields(version: "1.0", documents: "5", padding: nil))).documents, 3)
        assertDamaged(try dataset(padded, Fields(version: "1.0", documents: "3", padding: nil)), ["splits.train.documents"])
    }

    func testALaterMinorIsReadWithTheRulesOf1_1() throws {
        XCTAssertNoThrow(try DatasetVerifier.verify(dir: try dataset(padded, Fields(version: "1.7"))))
        assertDamaged(try dataset(padded, Fields(version: "2.0")), ["format_version", "unsupported"])
        assertDamaged(try dataset(padded, Fields(version: "1.x")), ["format_version"])
    }

    func testOtherStrategiesCountEveryDocumentStart() throws {
        XCTAssertEqual(try DatasetVerifier.verify(dir: try dataset(padded, Fields(strategy: "best-fit", documents: "5", padding: "0"))).documents, 5)
        assertDamaged(try dataset(padded, Fields(strategy: "best-fit", documents: "3", padding: "0")), ["splits.train.documents"])
        assertDamaged(try dataset(padded, Fields(strategy: "best-fit", documents: "5", padding: "5")), ["splits.train.padding_tokens"])
    }

    func testATamperedSplitBytesTotalFails() throws {
        assertDamaged(try dataset(padded, Fields(splitBytes: 1)), ["index.json", "splits.train.bytes"])
    }

    func testDtypeMustFollowTheVocabularySize() throws {
        // uint32 for a vocabulary of 300, and uint16 for 70000 (with u16 and u32 shards).
        assertDamaged(try dataset(padded, Fields(dtype: "uint32")), ["index.json", "dtype"])
        assertDamaged(try dataset(padded, Fields(vocab: 70000, dtype: "uint16")), ["index.json", "dtype"])
        assertDamaged(try dataset(padded, Fields(vocab: 70000, dtype: "uint16"), width: 4), ["index.json", "dtype"])
        XCTAssertNoThrow(try DatasetVerifier.verify(dir: try dataset(padded, Fields(vocab: 70000, dtype: "uint32"), width: 4)))
    }

    func testPaddingThatBreaksThePadRuleFails() throws {
        var trained = padded
        trained[1].lossMask[3] = 1                                   // padding trained on
        assertDamaged(try dataset(trained, Fields()), ["train-00000.tkm", "record 1", "padding"])
        var wrongID = padded
        wrongID[2].tokens[3] = 8                                     // not pad_id
        assertDamaged(try dataset(wrongID, Fields()), ["train-00000.tkm", "record 2", "padding"])
        var short = padded
        short[0] = SequenceRecord(tokens: [1, 2, 3], lossMask: [1, 1, 1], docStarts: [0])  // not seq_len
        assertDamaged(try dataset(short, Fields(documents: "3", padding: "5")), ["train-00000.tkm", "record 0", "seq_len"])
        var three = padded
        three[1].docStarts = [0, 1, 2]                               // 3 documents
        assertDamaged(try dataset(three, Fields()), ["train-00000.tkm", "record 1", "3 documents"])
    }

    func testIndexKeysAreCheckedForTypeAndPresence() throws {
        let dir = try dataset(padded, Fields())
        let good = String(decoding: try FileSystem.readFile("\(dir)/index.json"), as: UTF8.self)
        let cases: [(String, String, String)] = [
            (#""name": "t""#, #""name": 1"#, "name"),
            (#""seq_len": 4"#, #""seq_len": 4.0"#, "seq_len"),
            (#""seq_len": 4"#, #""seq_len": 0"#, "seq_len"),
            (#""eos_id": 9"#, #""eos_id": 300"#, "tokenizer.eos_id"),
            (#""spec_hash": "0000000000000000""#, #""spec_hash": "00000000000000AA""#, "spec_hash"),
            (#""file": "train-00000.tkm""#, #""file": "../train-00000.tkm""#, "file"),
            (#""special_tokens": {}"#, #""special_tokens": {"<|x|>": 300}"#, "special_tokens"),
            (#""sources": {}"#, #""sources": []"#, "sources"),
            (#""splits": {"train""#, #""splits": {"valid""#, "train"),
            (#""template": "plain", "#, "", "template"),
            (#""template": "plain""#, #""template": "plain", "template": "plain""#, "twice"),
            (#""name": "t""#, #""name": "\ud800""#, "surrogate"),
        ]
        for (from, to, mention) in cases {
            XCTAssertTrue(good.contains(from), from)
            try FileSystem.writeAtomically("\(dir)/index.json", Array(replacing(good, from, to).utf8))
            assertDamaged(dir, ["index.json", mention])
        }
    }
}

/// `text` with the first `from` replaced by `to` (no Foundation).
func replacing(_ text: String, _ from: String, _ to: String) -> String {
    let t = Array(text.utf8), f = Array(from.utf8)
    guard !f.isEmpty, t.count >= f.count else { return text }
    for i in 0...(t.count - f.count) where Array(t[i..<(i + f.count)]) == f {
        return String(decoding: t[..<i] + Array(to.utf8) + t[(i + f.count)...], as: UTF8.self)
    }
    return text
}
