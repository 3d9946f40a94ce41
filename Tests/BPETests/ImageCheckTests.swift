@testable import BPE
import TestSupport
import TokenmillCore
import XCTest

/// A vocabulary image whose checksum is right but whose tables are not ones a build could
/// make (a rank past the vocabulary in the slot table, a token past it in the pair table,
/// a Bool that is not 0 or 1) is refused by the checks and rebuilt: the hot loops index
/// with what the tables hold and check nothing, so the checksum alone must never let a
/// table in (anyone who can write the cache can write a matching checksum).
final class ImageCheckTests: XCTestCase {
    var savedCacheDir: String?

    override func setUp() { savedCacheDir = getenv("TOKENMILL_CACHE_DIR").map { String(cString: $0) } }

    override func tearDown() {
        if let savedCacheDir { setenv("TOKENMILL_CACHE_DIR", savedCacheDir, 1) } else { unsetenv("TOKENMILL_CACHE_DIR") }
    }

    /// The image's sections as (offset, byte count), from its header as `writeImage`
    /// lays it out: 64-byte aligned, in `Section` order, then the 8-byte checksum.
    func layout(_ image: [UInt8]) -> (header: [UInt64], sections: [(Int, Int)], checksumAt: Int) {
        let header = (0..<RankTable.headerWords).map { k in image.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 8 * k, as: UInt64.self) } }
        var at = RankTable.headerWords * 8
        var sections: [(Int, Int)] = []
        for s in RankTable.Section.allCases {
            at = (at + 63) & ~63
            let bytes = Int(header[9 + s.rawValue]) * RankTable.elementSize(s)
            sections.append((at, bytes))
            at += bytes
        }
        return (header, sections, (at + 63) & ~63)
    }

    /// Recomputes every section's xxh3 and the checksum over them, as a writer would.
    func reseal(_ image: inout [UInt8]) {
        let (header, sections, checksumAt) = layout(image)
        var summary = header
        for (off, n) in sections { summary.append(image.withUnsafeBytes { XXH3.hash64(UnsafeRawBufferPointer(rebasing: $0[off..<off + n])) }) }
        let sum = summary.withUnsafeBytes { XXH3.hash64($0) }
        withUnsafeBytes(of: sum.littleEndian) { for k in 0..<8 { image[checksumAt + k] = $0[k] } }
    }

    func testAnImageWithARightChecksumAndAWrongTableIsRebuilt() throws {
        let dir = makeTemporaryDirectory("image-check")
        setenv("TOKENMILL_CACHE_DIR", "off", 1)
        let built = try TokenizerLoader.load("cl100k_base", threads: 1)
        setenv("TOKENMILL_CACHE_DIR", dir, 1)
        _ = try TokenizerLoader.load("cl100k_base", threads: 2)   // writes the image
        let name = try XCTUnwrap(try FileSystem.listDirectory(dir).first { $0.hasSuffix(".tmrt") })
        let path = dir + "/" + name
        let original = try FileSystem.readFile(path)
        let (header, sections, _) = layout(original)
        let count = Int(header[3])

        var resealed = original
        reseal(&resealed)
        XCTAssertEqual(resealed, original, "reseal recomputes the checksum the writer wrote")

        func store(_ value: UInt64, _ image: inout [UInt8], at offset: Int) {
            withUnsafeBytes(of: value.littleEndian) { for k in 0..<8 { image[offset + k] = $0[k] } }
        }
        func load(_ v: UInt64, _ image: [UInt8], at offset: Int) -> UInt64 {
            image.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self) }
        }
        let (slotsAt, slotsBytes) = sections[RankTable.Section.slots.rawValue]
        let (pairsAt, pairsBytes) = sections[RankTable.Section.pairSlots.rawValue]
        let (holesAt, _) = sections[RankTable.Section.byteHoles.rawValue]
        // A full slot's meta word (every third word) with its rank + 1 past the vocabulary.
        let fullSlot = try XCTUnwrap(stride(from: slotsAt, to: slotsAt + slotsBytes, by: 24).first { load(0, original, at: $0) != 0 })
        // A pair entry whose left token is past the vocabulary.
        let fullPair = try XCTUnwrap(stride(from: pairsAt, to: pairsAt + pairsBytes, by: 8).first { load(0, original, at: $0) != 0 })
        let damages: [(String, (inout [UInt8]) -> Void)] = [
            ("a slot's rank past the vocabulary", { store(load(0, $0, at: fullSlot) & ~0xFFFF_FFFF | UInt64(count + 7), &$0, at: fullSlot) }),
            ("a pair's token past the vocabulary", { store(load(0, $0, at: fullPair) & (1 << 41 - 1) | UInt64(count + 3) << 41, &$0, at: fullPair) }),
            ("a byte-hole flag of 2", { $0[holesAt + 65] = 2 }),
            // Header values that would trap as Ints or overflow a size if trusted.
            ("a vocabulary size near 2^64", { store(UInt64.max, &$0, at: 3 * 8) }),
            ("a slot mask near 2^64", { store(1 << 63 | 0xFFFF, &$0, at: 4 * 8) }),
            ("every slot full (no probe ends)", { img in
                for at in stride(from: slotsAt, to: slotsAt + slotsBytes, by: 24) where load(0, img, at: at) == 0 { store(1, &img, at: at) }
            }),
        ]
        for (what, damage) in damages {
            var image = original
            damage(&image)
            reseal(&image)
            XCTAssertNotEqual(image, original, what)
            try FileSystem.writeAtomically(path, image)
            let reads = VocabularyCache.imageReads
            let t = try TokenizerLoader.load("cl100k_base", threads: 1)
            XCTAssertEqual(VocabularyCache.imageReads, reads, "\(what): the image is not used")
            XCTAssertEqual(try FileSystem.readFile(path), original, "\(what): the image is rebuilt")
            var a = t.makeEncoder(), b = built.makeEncoder()
            var x: [UInt32] = [], y: [UInt32] = []
            let text = Array("Hello, world! 中文 and ünïcödé \u{1F600}".utf8)
            a.encode(text, into: &x)
            b.encode(text, into: &y)
            XCTAssertEqual(x, y, what)
        }
    }
}
