import TokenmillCore

/// A Parquet row whose mapped fields are all top-level primitive columns (the common
/// shape: `instruction`, `input`, `output` strings), mapped without building a value
/// tree: the assembler points each text field at its bytes in the column's buffer (other
/// values go into a buffer of values reused from row to row), and the mapping reads them
/// by the field's position. Same answers as the row as an object would give (a missing
/// or nested path is "missing", null renders as nothing).
struct ParquetFlatRow: RowFields {
    let names: [String]
    /// The current row's fields, one per name (valid while the row is being mapped): the
    /// text of a text column, or else the value.
    let texts: UnsafePointer<UnsafeBufferPointer<UInt8>?>
    let values: UnsafePointer<JSONValue>

    @inline(__always)
    func index(_ path: [String]) -> Int? {
        guard path.count == 1 else { return nil }
        for k in names.indices where names[k] == path[0] { return k }
        return nil
    }

    func rawLength(_ path: [String]) -> Int {
        guard let k = index(path) else { return 0 }
        if let t = texts[k] { return t.count }
        switch values[k] {
        case .string(let s), .number(let s): return s.count
        case .bool: return 5
        default: return 0
        }
    }

    /// The field's text, copied once from the column into the record's array.
    func bareString(_ path: [String]) -> [UInt8]? {
        guard let k = index(path) else { return nil }
        if let t = texts[k] { return Array(t) }
        if case .string(let s) = values[k] { return s }
        return nil
    }

    func appendField(_ path: [String], into out: inout [UInt8]) throws {
        guard let k = index(path) else { throw MappingError("missing field '\(path.joined(separator: "."))'") }
        if let t = texts[k] { out.append(contentsOf: t); return }
        try values[k].appendField([], into: &out)
    }
}

/// Where a flat row's fields come from, for the row assembler: per leaf, its text
/// column's buffer and value ends (nil for other columns). Pointers into `ByteColumn`s
/// that the assembler's columns keep alive and nothing grows any more.
struct FlatTexts {
    var spans: [UnsafePointer<UnsafeBufferPointer<UInt8>>?]

    init(_ columns: [ColumnData]) {
        spans = columns.map { $0.strings.map { UnsafePointer($0.spans) } }
    }
}

extension RowAssembler {
    /// Whether every field in `fields` is one top-level primitive column (no lists, maps
    /// or groups), so rows can be mapped as `ParquetFlatRow`s.
    func isFlat(_ fields: [Int]) -> Bool {
        fields.allSatisfy { f in
            if case .primitive = schema.nodes[f].kind { return nodeRepetition[f] != .repeated && nodeMaxRep[f] == 0 }
            return false
        }
    }

    /// The next row's fields of flat `fields` (checked as `field` checks them): a null is
    /// a nil text and a `.null` value.
    mutating func flatRow(_ fields: [Int], texts sources: FlatTexts, into texts: UnsafeMutablePointer<UnsafeBufferPointer<UInt8>?>,
                          values: UnsafeMutablePointer<JSONValue>) throws(ParquetError) {
        rowRepaired = false
        for (j, f) in fields.enumerated() {
            let l = nodeFirstLeaf[f]
            texts[j] = nil
            if nodeRepetition[f] == .optional, try defAt(l) < nodeMaxDef[f] {
                try skipAbsent(f)
                values[j] = .null
                continue
            }
            guard let spans = sources.spans[l] else {
                values[j] = try instance(f)
                continue
            }
            texts[j] = spans[try takeValue(l)]
        }
    }
}
