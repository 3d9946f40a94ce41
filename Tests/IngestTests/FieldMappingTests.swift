import Ingest
import TokenmillCore
import XCTest

final class FieldMappingTests: XCTestCase {
    func row(_ s: String) throws -> JSONValue { try JSONParser.parse(Array(s.utf8)) }

    func testTemplatesFieldsAndNestedPaths() throws {
        let m = FieldMapping(prompt: try .parse("{instruction}\n\n{input}"), response: try .parse("out.text"), system: try .parse("Count: {n} {{x}}"))
        let r = try m.record(from: try row(#"{"instruction": "Add", "input": "2+2", "out": {"text": "4"}, "n": 3}"#), source: 0, file: 0, line: 5)
        XCTAssertEqual(r.turns.map { String(decoding: $0.content, as: UTF8.self) }, ["Add\n\n2+2", "4"])
        XCTAssertEqual(String(decoding: r.system, as: UTF8.self), "Count: 3 {x}")
        XCTAssertEqual(r.line, 5)
    }

    func testMissingAndWrongTypedFieldsAreNamed() throws {
        let m = FieldMapping(prompt: try .parse("q"), response: try .parse("a"))
        XCTAssertThrowsError(try m.record(from: try row(#"{"q": "x"}"#), source: 0, file: 0, line: 1)) { e in
            XCTAssertEqual((e as? MappingError)?.message, "missing field 'a'")
        }
        XCTAssertThrowsError(try m.record(from: try row(#"{"q": "x", "a": [1]}"#), source: 0, file: 0, line: 1)) { e in
            XCTAssertEqual((e as? MappingError)?.message, "field 'a' is an array, expected a string")
        }
        XCTAssertThrowsError(try m.record(from: try row("[1]"), source: 0, file: 0, line: 1))
    }

    func testOptionalSectionsDropWithAnEmptyField() throws {
        let m = FieldMapping(prompt: try .parse("{instruction}[[\n\nInput: {input}]][[ ({lang})]]!"), response: try .parse("output"))
        func prompt(_ json: String) throws -> String {
            String(decoding: try m.record(from: try row(json), source: 0, file: 0, line: 1).turns[0].content, as: UTF8.self)
        }
        XCTAssertEqual(try prompt(#"{"instruction": "Sum", "input": "2+2", "lang": "en", "output": "4"}"#), "Sum\n\nInput: 2+2 (en)!")
        XCTAssertEqual(try prompt(#"{"instruction": "Sum", "input": "", "lang": null, "output": "4"}"#), "Sum!")
        XCTAssertThrowsError(try prompt(#"{"instruction": "Sum", "output": "4", "lang": "en"}"#))   // missing is still an error
    }

    func testBadTemplatesAreRefused() {
        XCTAssertThrowsError(try FieldMapping.Value.parse("a[[b]]"))           // a section without a field
        XCTAssertThrowsError(try FieldMapping.Value.parse("{a}[[{b}"))
        XCTAssertThrowsError(try FieldMapping.Value.parse("{a}]]"))
        XCTAssertThrowsError(try FieldMapping.Value.parse("{open"))
        XCTAssertThrowsError(try FieldMapping.Value.parse("close}"))
        XCTAssertThrowsError(try FieldMapping.Value.parse("{}"))
    }
}
