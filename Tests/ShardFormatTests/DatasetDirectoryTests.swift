import ShardFormat
import TestSupport
import TokenmillCore
import XCTest

/// The dataset directory's rules (FORMAT.md 2): shard names, the shard-cutting rule,
/// padding under `pad`, and index.json as written and read.
final class DatasetDirectoryTests: XCTestCase {
    func testShardNamesAreZeroPaddedToFiveDigits() {
        XCTAssertEqual(DatasetDirectory.shardName(split: "train", index: 0), "train-00000.tkm")
        XCTAssertEqual(DatasetDirectory.shardName(split: "validation", index: 42), "validation-00042.tkm")
        XCTAssertEqual(DatasetDirectory.shardName(split: "train", index: 99999), "train-99999.tkm")
        XCTAssertEqual(DatasetDirectory.shardName(split: "train", index: 123456), "train-123456.tkm")
    }

    func testShardFileNamesArePlainNamesEndingTkm() {
        for good in ["train-00000.tkm", "a.tkm", "x_y-1.2.tkm"] { XCTAssertTrue(DatasetDirectory.isShardFileName(good), good) }
        for bad in [".tkm", ".train-00000.tkm", "../train-00000.tkm", "a/b.tkm", "train-00000.tkm.tmp", "train 1.tkm", "trän.tkm", "train.TKM", ""] {
            XCTAssertFalse(DatasetDirectory.isShardFileName(bad), bad)
        }
    }

    func testAShardClosesOnceItHoldsShardTokens() {
        // 10 tokens a shard: 4+4 = 8 stays open, +4 = 12 closes; 10 closes at once; the rest.
        XCTAssertEqual(DatasetDirectory.shardRanges(recordTokens: [4, 4, 4, 10, 3, 3], shardTokens: 10), [0..<3, 3..<4, 4..<6])
        XCTAssertEqual(DatasetDirectory.shardRanges(recordTokens: [5, 5], shardTokens: 10), [0..<2])
        XCTAssertEqual(DatasetDirectory.shardRanges(recordTokens: [5, 5, 1], shardTokens: 10), [0..<2, 2..<3])
        XCTAssertEqual(DatasetDirectory.shardRanges(recordTokens: [7, 7, 7], shardTokens: 1), [0..<1, 1..<2, 2..<3])
        XCTAssertEqual(DatasetDirectory.shardRanges(recordTokens: [], shardTokens: 10), [])
    }

    func testTokenWidthFollowsTheVocabularySize() {
        XCTAssertEqual(DatasetDirectory.tokenWidth(vocabSize: 65536), 2)
        XCTAssertEqual(DatasetDirectory.tokenWidth(vocabSize: 65537), 4)
        XCTAssertEqual(DatasetDirectory.dtype(tokenWidth: 2), "uint16")
        XCTAssertEqual(DatasetDirectory.dtype(tokenWidth: 4), "uint32")
    }

    func testPaddingIsOneUntrainedDocumentOfPadIDs() {
        var r = SequenceRecord(tokens: [5, 6, 7], lossMask: [0, 1, 1], docStarts: [0])
        XCTAssertEqual(SequencePadding.pad(&r, seqLen: 6, padID: 9), 3)
        XCTAssertEqual(r, SequenceRecord(tokens: [5, 6, 7, 9, 9, 9], lossMask: [0, 1, 1, 0, 0, 0], docStarts: [0, 3]))
        var full = SequenceRecord(tokens: [1, 2], lossMask: [1, 1], docStarts: [0])
        XCTAssertEqual(SequencePadding.pad(&full, seqLen: 2, padID: 9), 0)
        XCTAssertEqual(full, SequenceRecord(tokens: [1, 2], lossMask: [1, 1], docStarts: [0]))
        XCTAssertEqual(SequencePadding.paddedLength(3, seqLen: 6), 6)
        XCTAssertEqual(SequencePadding.paddedLength(6, seqLen: 6), 6)
    }
}
