@testable import Export
import XCTest

final class ExportFormatTests: XCTestCase {
    /// datatrove's `.ds.metadata` third line is `humanize.metric(count, unit="T")`; these
    /// are Python's own outputs (humanize 4.x), ties and carries included.
    func testHumanizedCountsArePythons() {
        let python: [(Int, String)] = [
            (0, "0.00 T"), (1, "1.00 T"), (9, "9.00 T"), (10, "10.0 T"), (99, "99.0 T"), (100, "100 T"), (999, "999 T"),
            (1000, "1.00 kT"), (1004, "1.00 kT"), (1005, "1.00 kT"), (1015, "1.01 kT"), (9994, "9.99 kT"), (9995, "9.99 kT"),
            (9999, "10.0 kT"), (10000, "10.0 kT"), (99949, "99.9 kT"), (99950, "100 kT"), (99999, "100 kT"), (123456, "123 kT"),
            (332094, "332 kT"), (999499, "999 kT"), (999500, "1.00 MT"), (1000000, "1.00 MT"), (1234567, "1.23 MT"),
            (12345678, "12.3 MT"), (987654321, "988 MT"), (1999999999, "2.00 GT"), (123456789012, "123 GT"),
        ]
        for (n, text) in python { XCTAssertEqual(DatatroveWriter.humanized(n), text, "\(n)") }
    }

    /// Megatron's DType.optimal_dtype: uint16 (code 8) below 65,500 ids, else int32 (4).
    func testMegatronDtypeRule() {
        XCTAssertEqual(MegatronWriter.dtype(vocabSize: 50257).code, 8)
        XCTAssertEqual(MegatronWriter.dtype(vocabSize: 65499).code, 8)
        XCTAssertEqual(MegatronWriter.dtype(vocabSize: 65500).code, 4)
        XCTAssertEqual(MegatronWriter.dtype(vocabSize: 100277).width, 4)
    }
}
