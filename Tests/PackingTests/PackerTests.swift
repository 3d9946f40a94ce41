import Packing
import TokenmillCore
import XCTest

final class PackerTests: XCTestCase {
    /// Slow twin of best-fit decreasing: scan every bin for the tightest fit.
    func slowBestFit(_ lengths: [Int], _ seqLen: Int) -> [[Int]] {
        let order = lengths.indices.sorted { lengths[$0] != lengths[$1] ? lengths[$0] > lengths[$1] : $0 < $1 }
        var bins: [[Int]] = [], room: [Int] = []
        for i in order {
            var best = -1
            for b in bins.indices where room[b] >= lengths[i] && (best < 0 || room[b] < room[best]) { best = b }
            if best < 0 { bins.append([i]); room.append(seqLen - lengths[i]) } else { bins[best].append(i); room[best] -= lengths[i] }
        }
        return bins
    }

    func testBestFitEqualsSlowTwinAcrossSizes() {
        var rng = SplitMix64(seed: 21)
        for n in 0..<60 {
            for seqLen in [1, 7, 64, 100] {
                let lengths = (0..<n).map { _ in 1 + Int(rng.below(UInt64(seqLen))) }
                let r = Packer.pack(lengths: lengths, seqLen: seqLen, strategy: .bestFit, overflow: .split)
                XCTAssertEqual(r.sequences.map { $0.map(\.doc) }, slowBestFit(lengths, seqLen))
                for s in r.sequences { XCTAssertLessThanOrEqual(s.reduce(0) { $0 + $1.count }, seqLen) }
            }
        }
    }

    func testOverflowRules() {
        let split = Packer.pack(lengths: [10, 3], seqLen: 4, strategy: .none, overflow: .split)
        XCTAssertEqual(split.sequences.flatMap { $0 }, [Piece(doc: 0, start: 0, end: 4), Piece(doc: 0, start: 4, end: 8), Piece(doc: 0, start: 8, end: 10), Piece(doc: 1, start: 0, end: 3)])
        let trunc = Packer.pack(lengths: [10, 3], seqLen: 4, strategy: .none, overflow: .truncate)
        XCTAssertEqual(trunc.sequences.flatMap { $0 }, [Piece(doc: 0, start: 0, end: 4), Piece(doc: 1, start: 0, end: 3)])
        XCTAssertEqual(trunc.truncated, 1)
        let drop = Packer.pack(lengths: [10, 3], seqLen: 4, strategy: .bestFit, overflow: .drop)
        XCTAssertEqual(drop.sequences, [[Piece(doc: 1, start: 0, end: 3)]])
        XCTAssertEqual(drop.dropped, 1)
        // Truncation that would keep no trained token drops the document instead.
        let lossless = Packer.pack(lengths: [10, 10, 3], seqLen: 4, strategy: .none, overflow: .truncate, lossStarts: [4, 3, 0])
        XCTAssertEqual(lossless.sequences.flatMap { $0 }, [Piece(doc: 1, start: 0, end: 4), Piece(doc: 2, start: 0, end: 3)])
        XCTAssertEqual(lossless.droppedDocs, [0]); XCTAssertEqual(lossless.truncatedDocs, [1])
    }

    func testConcatCutsTheStreamEverySeqLen() {
        var rng = SplitMix64(seed: 4)
        for n in 0..<40 {
            let lengths = (0..<n).map { _ in Int(rng.below(20)) }
            let r = Packer.pack(lengths: lengths, seqLen: 8, strategy: .concat, overflow: .split)
            let total = lengths.reduce(0, +)
            XCTAssertEqual(r.sequences.count, (total + 7) / 8)
            for (i, s) in r.sequences.enumerated() {
                let len = s.reduce(0) { $0 + $1.count }
                XCTAssertEqual(len, i == r.sequences.count - 1 ? total - 8 * i : 8)
            }
            // The pieces, in order, are exactly the documents in order.
            var expect: [(Int, Int)] = []
            for (d, l) in lengths.enumerated() { for t in 0..<l { expect.append((d, t)) } }
            var got: [(Int, Int)] = []
            for s in r.sequences { for p in s { for t in p.start..<p.end { got.append((p.doc, t)) } } }
            XCTAssertEqual(got.map(\.0), expect.map(\.0)); XCTAssertEqual(got.map(\.1), expect.map(\.1))
        }
    }

    func testShuffleIsASeededPermutation() {
        var a = Array(0..<100), b = Array(0..<100)
        shuffleDeterministically(&a, seed: 42); shuffleDeterministically(&b, seed: 42)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, Array(0..<100))
        XCTAssertEqual(a.sorted(), Array(0..<100))
    }
}
