import TestSupport
import TokenmillCore
import XCTest

final class AtomicFileWriterTests: XCTestCase {
    /// Tasks of one stage may write the same file at once (every scan task writes the work
    /// folder's manifest). Interleaved writers of one path must each commit: with a shared
    /// temporary name the second rename found no file (the flaky 3-task test of 2026-12-02).
    func testInterleavedWritersOfOnePathBothCommit() throws {
        let dir = makeTemporaryDirectory("atomic")
        defer { FileSystem.removeTree(dir) }
        let path = FileSystem.join(dir, "manifest.json")
        var a = try AtomicFileWriter(path: path)
        var b = try AtomicFileWriter(path: path)
        try Array("same bytes\n".utf8).withUnsafeBytes { try a.write($0) }
        try Array("same bytes\n".utf8).withUnsafeBytes { try b.write($0) }
        try a.commit()
        try b.commit()
        XCTAssertEqual(try FileSystem.readFile(path), Array("same bytes\n".utf8))
        XCTAssertEqual(try FileSystem.listDirectory(dir), ["manifest.json"], "no temporary file is left behind")
    }

    func testAnUncommittedWriterLeavesNothingAndStaleTemporariesAreRemoved() throws {
        let dir = makeTemporaryDirectory("atomic")
        defer { FileSystem.removeTree(dir) }
        do {
            var w = try AtomicFileWriter(path: FileSystem.join(dir, "x.tkm"))
            try Array("partial".utf8).withUnsafeBytes { try w.write($0) }
        }
        XCTAssertEqual(try FileSystem.listDirectory(dir), [])
        // What a SIGKILLed writer leaves: a hidden .tmp file. Only those go.
        try FileSystem.writeAtomically(FileSystem.join(dir, "keep.tmp"), [1])
        try FileSystem.writeAtomically(FileSystem.join(dir, "index.json"), [2])
        let stale = FileSystem.join(dir, ".train-00000.tkm.999-1.tmp")
        try FileSystem.writeAtomically(stale, [3])
        FileSystem.removeStaleTemporaries(dir)
        XCTAssertEqual(try FileSystem.listDirectory(dir).sorted(), ["index.json", "keep.tmp"])
    }
}
