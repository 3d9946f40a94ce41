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

    // Flat copies of what the hot path reads per value: reading `schema.nodes[n]` whole
    // would retain and release the node's name and child arrays each time.
    let nodeRepetition: [Repetition]
    let nodeMaxDef: [Int]
    let nodeMaxRep: [Int]
    let nodeFirstLeaf: [Int]
    let nodeKey: [[UInt8]]
    let leafMaxDef: [Int]

    init(schema: ParquetSchema, columns: [ColumnData]) {
        self.schema = schema; self.columns = columns
        pos = Array(repeating: 0, count: columns.count)
        vpos = pos; repairCursor = pos
        nodeRepetition = schema.nodes.map(\.repetition)
        nodeMaxDef = schema.nodes.map(\.maxDef)
        nodeMaxRep = schema.nodes.map(\.maxRep)
        nodeFirstLeaf = schema.nodes.map { $0.leaves.first ?? -1 }
        nodeKey = schema.nodes.map { Array($0.name.utf8) }
        leafMaxDef = schema.leaves.map(\.maxDef)
    }

    /// Cursor positions at the start of every `every`-th row, for the given leaves: rows
    /// start where the repetition level is 0 (every entry, for unrepeated leaves).
    func rowStarts(leaves: [Int], rows: Int, every: Int) -> [[(pos: Int, vpos: Int)]] {
        var out = [[(pos: Int, vpos: Int)]](repeating: [], count: columns.count)
        for l in leaves {
            let c = columns[l]
            let maxDef = UInt8(leafMaxDef[l]), hasRep = schema.leaves[l].maxRep > 0, hasDef = maxDef > 0
            var starts: [(pos: Int, vpos: Int)] = []
            starts.reserveCapacity(rows / every + 1)
            var row = 0, values = 0
            for e in 0..<c.count {
                if !hasRep || c.rep[e] == 0 {
                    if row % every == 0 { starts.append((e, values)) }
                    row += 1
                }
                if !hasDef || c.def[e] == maxDef { values += 1 }
            }
            out[l] = starts
        }
        return out
    }

    /// Moves the cursors to where row `k * every` starts (from `rowStarts`).
    mutating func seek(_ starts: [[(pos: Int, vpos: Int)]], leaves: [Int], batch k: Int) {
        for l in leaves {
            let (p, v) = k < starts[l].count ? starts[l][k] : (columns[l].count, columns[l].valueCount)
            pos[l] = p; vpos[l] = v
            // First repaired value at or after v.
            let r = columns[l].repaired
            var lo = 0, hi = r.count
            while lo < hi { let mid = (lo + hi) / 2; if r[mid] < v { lo = mid + 1 } else { hi = mid } }
            repairCursor[l] = lo
        }
    }

    /// One row: an object of the given top-level fields.
    mutating func row(_ fields: [Int]) throws(ParquetError) -> JSONValue {
        rowRepaired = false
        var members: [JSONMember] = []
        members.reserveCapacity(fields.count)
        for f in fields {
            let l = nodeFirstLeaf[f]
            if schema.leaves[l].maxRep > 0 {
                guard pos[l] < columns[l].count else { throw ParquetError("column \(schema.leaves[l].name) has fewer rows than the row group") }
                guard columns[l].rep[pos[l]] == 0 else { throw ParquetError("column \(schema.leaves[l].name): a row starts with repetition level \(columns[l].rep[pos[l]])") }
            }
            members.append(JSONMember(key: nodeKey[f], value: try field(f)))
        }
        return .object(members)
    }

    /// After the last row every cursor must be at its column's end, and after any other
    /// batch exactly where the next batch starts (else the levels are inconsistent).
    func checkConsumed(_ leaves: [Int], upTo starts: [[(pos: Int, vpos: Int)]], batch k: Int) throws(ParquetError) {
        for l in leaves {
            let (p, v) = k < starts[l].count ? starts[l][k] : (columns[l].count, columns[l].valueCount)
            if pos[l] != p || vpos[l] != v {
                throw ParquetError("column \(schema.leaves[l].name): its levels and values disagree with the row group's rows")
            }
        }
    }

    func defAt(_ l: Int) throws(ParquetError) -> Int {
        guard pos[l] < columns[l].count else { throw ParquetError("column \(schema.leaves[l].name) ends early") }
        return leafMaxDef[l] == 0 ? 0 : Int(columns[l].def[pos[l]])
    }

    /// A null (or empty) node: one entry in every leaf under it, none of them a value.
    mutating func skipAbsent(_ n: Int) throws(ParquetError) {
        let limit = nodeMaxDef[n]
        for l in schema.nodes[n].leaves {
            guard try defAt(l) < limit else { throw ParquetError("column \(schema.leaves[l].name): levels disagree with the other columns of its group") }
            pos[l] += 1
        }
    }

    mutating func field(_ n: Int) throws(ParquetError) -> JSONValue {
        switch nodeRepetition[n] {
        case .repeated:
            return .array(try repeated(n, element: nil))
        case .optional:
            if try defAt(nodeFirstLeaf[n]) < nodeMaxDef[n] { try skipAbsent(n); return .null }
            return try instance(n)
        case .required:
            return try instance(n)
        }
    }

    /// The index of leaf `l`'s value at its cursor, which must be a value (not a null or
    /// an empty list); moves the cursor on and notes a repaired string.
    mutating func takeValue(_ l: Int) throws(ParquetError) -> Int {
        let d = try defAt(l)
        guard d == leafMaxDef[l] else { throw ParquetError("column \(schema.leaves[l].name): definition level \(d) where a value was expected") }
        let v = vpos[l]
        guard v < columns[l].valueCount else { throw ParquetError("column \(schema.leaves[l].name) has fewer values than its levels say") }
        let rc = repairCursor[l]
        if rc < columns[l].repaired.count && columns[l].repaired[rc] == v { rowRepaired = true; repairCursor[l] += 1 }
        pos[l] += 1; vpos[l] += 1
        return v
    }

    /// One occurrence of a node that is known to be present.
    mutating func instance(_ n: Int) throws(ParquetError) -> JSONValue {
        switch schema.nodes[n].kind {
        case .primitive(let l):
            let v = try takeValue(l)
            if let strings = columns[l].strings { return .string(Array(strings.value(v))) }
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
                default: throw ParquetError("map '\(schema.nodes[n].name)' has a key that is not a string or number")
                }
                members.append(JSONMember(key: key, value: kv[1].value))
            }
            return .object(members)
        case .group:
            let children = schema.nodes[n].children
            var members: [JSONMember] = []
            members.reserveCapacity(children.count)
            for c in children { members.append(JSONMember(key: nodeKey[c], value: try field(c))) }
            return .object(members)
        }
    }

    /// The elements of repeated node `r` at the cursors (empty when its first leaf's
    /// definition level stops short of it).
    mutating func repeated(_ r: Int, element: Int?) throws(ParquetError) -> [JSONValue] {
        let l = nodeFirstLeaf[r], maxRep = nodeMaxRep[r]
        if try defAt(l) < nodeMaxDef[r] { try skipAbsent(r); return [] }
        var items: [JSONValue] = []
        while true {
            if let element { items.append(try field(element)) } else { items.append(try instance(r)) }
            guard pos[l] < columns[l].count else { break }
            let rep = Int(columns[l].rep[pos[l]])
            if rep < maxRep { break }
            guard rep == maxRep else { throw ParquetError("column \(schema.leaves[l].name): repetition level \(rep) out of place") }
        }
        return items
    }
}
