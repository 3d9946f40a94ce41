import XCTest
import FuzzTargets

/// Every input kept in Fuzz/corpus/<target>/ (what the fuzzing campaigns found to add
/// coverage, plus the seeds) goes through its target again: none may crash or hang.
/// Without sanitizers this checks crashes and traps (bounds, overflow, exclusivity);
/// `make fuzz` runs them under AddressSanitizer.
final class FuzzReplayTests: XCTestCase {
    func testCorpusReplays() throws {
        let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/corpus")
        var total = 0
        for target in FuzzTargets.names {
            let dir = corpus.appendingPathComponent(target)
            let files = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
            XCTAssertFalse(files.isEmpty, "Fuzz/corpus/\(target) holds no inputs")
            for f in files.sorted() {
                let bytes = try [UInt8](Data(contentsOf: dir.appendingPathComponent(f)))
                FuzzTargets.run(target, bytes)
                total += 1
            }
        }
        XCTAssertGreaterThan(total, FuzzTargets.names.count)
    }
}
