import TokenmillCore

/// Rebuilds rows from decoded leaf columns (Dremel record assembly, recursively): each
/// leaf has a cursor; a node's value is read from the cursors of the leaves under it,
/// and the first leaf's levels say whether the node is null, an empty list, or where a
/// list's next element starts. Levels that do not fit the schema are a `ParquetError`.
struct RowAssembler {
    let schema: ParquetSchema
    var columns: [ColumnData]
    var pos: [Int]
    var vpos: [Int]
    var repairCursor: [Int]
    /// Set when a value read for the current row had its UTF-8 repaired.
    var rowRepaired = false

    init(schema: ParquetSchema, columns: [ColumnData]) {
        self.schema = schema; self.columns = columns
        pos = Array(repeating: 0, count: columns.count)
        vpos = pos; repairCursor = pos
    }

    /// One row: an object of the given top-level fields.
    mutating func row(_ fields: [Int]) throws(ParquetError) -> JSONValue {
        rowRepaired = false
        var members: [JSONMember] = []
        members.reserveCapacity(fields.count)
        for f in fields {
            let l = schema.nodes[f].leaves[0]
            if schema.leaves[l].maxRep > 0 {
                guard pos[l] < columns[l].count else { throw ParquetError("column \(schema.leaves[l].name) has fewer rows than the row group") }
                guard columns[l].rep[pos[l]] == 0 else { throw ParquetError("column \(schema.leaves[l].name): a row starts with repetition level \(columns[l].rep[pos[l]])") }
            }
            members.append(JSONMember(key: Array(schema.nodes[f].name.utf8), value: try field(f)))
        }
        return .object(members)
    }

    /// Every cursor must be at its column's end once all rows are read.
    func checkConsumed(_ fields: [Int]) throws(ParquetError) {
        for f in fields {
            for l in schema.nodes[f].leaves where pos[l] != columns[l].count || vpos[l] != columns[l].values.count {
                throw ParquetError("column \(schema.leaves[l].name) holds more values than the row group's rows")
            }
        }
    }

    func defAt(_ l: Int) throws(ParquetError) -> Int {
        guard pos[l] < columns[l].count else { throw ParquetError("column \(schema.leaves[l].name) ends early") }
        return schema.leaves[l].maxDef == 0 ? 0 : Int(columns[l].def[pos[l]])
    }

    /// A null (or empty) node: one entry in every leaf under it, none of them a value.
    mutating func skipAbsent(_ n: Int) throws(ParquetError) {
        let limit = schema.nodes[n].maxDef
        for l in schema.nodes[n].leaves {
            guard try defAt(l) < limit else { throw ParquetError("column \(schema.leaves[l].name): levels disagree with the other columns of its group") }
            pos[l] += 1
        }
    }

    mutating func field(_ n: Int) throws(ParquetError) -> JSONValue {
        let node = schema.nodes[n]
        switch node.repetition {
        case .repeated:
            return .array(try repeated(n, element: nil))
        case .optional:
            if try defAt(node.leaves[0]) < node.maxDef { try skipAbsent(n); return .null }
            return try instance(n)
        case .required:
            return try instance(n)
        }
    }

    /// One occurrence of a node that is known to be present.
    mutating func instance(_ n: Int) throws(ParquetError) -> JSONValue {
        let node = schema.nodes[n]
        switch node.kind {
        case .primitive(let l):
            let d = try defAt(l)
            guard d == schema.leaves[l].maxDef else { throw ParquetError("column \(schema.leaves[l].name): definition level \(d) where a value was expected") }
            let v = vpos[l]
            guard v < columns[l].values.count else { throw ParquetError("column \(schema.leaves[l].name) has fewer values than its levels say") }
            let rc = repairCursor[l], repaired = columns[l].repaired
            if rc < repaired.count && repaired[rc] == v { rowRepaired = true; repairCursor[l] += 1 }
            pos[l] += 1; vpos[l] += 1
            return columns[l].values[v]
        case .list(let r, let element):
            return .array(try repeated(r, element: element))
        case .map(let r):
            var members: [JSONMember] = []
            for entry in try repeated(r, element: nil) {
                guard case .object(let kv) = entry, kv.count == 2 else { throw ParquetError("map entry without key and value") }
                let key: [UInt8]
                switch kv[0].value {
                case .string(let s), .number(let s): key = s
                default: throw ParquetError("map '\(node.name)' has a key that is not a string or number")
                }
                members.append(JSONMember(key: key, value: kv[1].value))
            }
            return .object(members)
        case .group:
            var members: [JSONMember] = []
            members.reserveCapacity(node.children.count)
            for c in node.children { members.append(JSONMember(key: Array(schema.nodes[c].name.utf8), value: try field(c))) }
            return .object(members)
        }
    }

    /// The elements of repeated node `r` at the cursors (empty when its first leaf's
    /// definition level stops short of it).
    mutating func repeated(_ r: Int, element: Int?) throws(ParquetError) -> [JSONValue] {
        let node = schema.nodes[r]
        let l = node.leaves[0]
        if try defAt(l) < node.maxDef { try skipAbsent(r); return [] }
        var items: [JSONValue] = []
        while true {
            if let element { items.append(try field(element)) } else { items.append(try instance(r)) }
            guard pos[l] < columns[l].count else { break }
            let rep = Int(columns[l].rep[pos[l]])
            if rep < node.maxRep { break }
            guard rep == node.maxRep else { throw ParquetError("column \(schema.leaves[l].name): repetition level \(rep) out of place") }
        }
        return items
    }
}
