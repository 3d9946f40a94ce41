/// The schema as a tree, with each node's maximum definition and repetition levels and
/// how it turns into a JSON-like value: primitives become strings, numbers and booleans;
/// LIST groups arrays (the three-level form and the older two-level forms, by the
/// parquet-format backward-compatibility rules); MAP groups objects; other groups objects.
struct ParquetSchema {
    enum Kind {
        case primitive(leaf: Int)
        /// `repeated`: the list's repeated node; `element`: the node holding one element,
        /// or nil when the repeated node itself is the element (two-level lists).
        case list(repeated: Int, element: Int?)
        case map(repeated: Int)
        case group
    }

    struct Node {
        var name: String
        var repetition: Repetition
        var kind: Kind = .group
        var children: [Int] = []
        var maxDef = 0
        var maxRep = 0
        /// Leaf columns under this node, in file order.
        var leaves: [Int] = []
    }

    var nodes: [Node] = []
    var leaves: [LeafColumn] = []
    /// The root's children: the top-level fields of a row.
    var top: [Int] { nodes.isEmpty ? [] : nodes[0].children }

    init(_ elements: [SchemaElement]) throws(ParquetError) {
        guard let root = elements.first, root.numChildren > 0 else { throw ParquetError("the schema has no columns") }
        var next = 0
        _ = try add(elements, &next, parent: nil, depth: 0)
        guard next == elements.count else { throw ParquetError("schema has \(elements.count - next) elements outside the tree") }
    }

    private mutating func add(_ e: [SchemaElement], _ next: inout Int, parent: Int?, depth: Int) throws(ParquetError) -> Int {
        guard depth <= 32 else { throw ParquetError("schema nested deeper than 32") }
        guard next < e.count else { throw ParquetError("schema lists fewer elements than its groups claim") }
        let el = e[next]; next += 1
        var node = Node(name: el.name, repetition: parent == nil ? .required : el.repetition)
        if let parent {
            let p = nodes[parent]
            node.maxDef = p.maxDef + (node.repetition == .required ? 0 : 1)
            node.maxRep = p.maxRep + (node.repetition == .repeated ? 1 : 0)
        }
        guard node.maxDef <= 255 else { throw ParquetError("schema too deep") }
        let id = nodes.count
        nodes.append(node)
        if el.numChildren == 0 {
            guard let type = el.type, parent != nil else { throw ParquetError("schema element '\(el.name)' has neither a type nor children") }
            let leaf = leaves.count
            leaves.append(LeafColumn(index: leaf, path: [], type: type, maxDef: node.maxDef, maxRep: node.maxRep))
            leaves[leaf].typeLength = Int(el.typeLength ?? 0)
            // DECIMAL, dates, times and timestamps: the stored integer is not the text
            // (a scaled number, days or ticks since 1970); it is rendered as what it means.
            let (rendering, refusal) = LeafRendering.of(el, type: type)
            leaves[leaf].rendering = rendering
            if let refusal { unreadableLeaves[leaf] = refusal }
            if type == .fixedLenByteArray && (el.typeLength ?? 0) <= 0 { unreadableLeaves[leaf] = "FIXED_LEN_BYTE_ARRAY without a length" }
            // UINT_32 / UINT_64, or INTEGER(signed: false).
            leaves[leaf].unsigned = el.logicalUnsigned || el.convertedType == 13 || el.convertedType == 14
            nodes[id].kind = .primitive(leaf: leaf)
            nodes[id].leaves = [leaf]
            return id
        }
        var children: [Int] = []
        for _ in 0..<el.numChildren { children.append(try add(e, &next, parent: id, depth: depth + 1)) }
        nodes[id].children = children
        nodes[id].leaves = children.flatMap { nodes[$0].leaves }
        let isList = el.convertedType == 3 || el.logicalType == 3
        // MAP_KEY_VALUE (converted type 2) marks the repeated key/value group inside a MAP
        // (Impala and Hive write it there); on its own it is not a map.
        let isMap = el.convertedType == 1 || el.logicalType == 2 || (el.convertedType == 2 && node.repetition != .repeated)
        if (isList || isMap) && parent != nil {
            // A layout the rules do not cover is refused only if the mapping reads it: the
            // file's other columns stay readable.
            guard children.count == 1, nodes[children[0]].repetition == .repeated else {
                for l in nodes[id].leaves { unreadableLeaves[l] = "a \(isList ? "LIST" : "MAP") that does not hold exactly one repeated field" }
                return id
            }
            let r = children[0]
            if isMap {
                guard nodes[r].children.count == 2 else {
                    for l in nodes[id].leaves { unreadableLeaves[l] = "a MAP whose entries lack a key or a value" }
                    return id
                }
                nodes[id].kind = .map(repeated: r)
            } else {
                let rn = nodes[r]
                // Backward-compatibility rules: the repeated node is the element when it is
                // a primitive, has several fields, or is named `array` / `<list>_tuple`.
                let repeatedIsElement = rn.children.isEmpty || rn.children.count > 1 || rn.name == "array" || rn.name == el.name + "_tuple"
                nodes[id].kind = .list(repeated: r, element: repeatedIsElement ? nil : rn.children[0])
            }
        }
        return id
    }

    /// Leaves whose stored values are not their text (DECIMAL, dates, timestamps), with
    /// what they are, for the refusal.
    var unreadableLeaves: [Int: String] = [:]

    /// The leaves under the node a field path reaches from the top level, through struct
    /// fields; all leaves of the top-level field when the path goes through a list or
    /// map (or names nothing deeper).
    func leaves(under path: [String]) -> [Int] {
        guard let first = path.first, let top = top.first(where: { nodes[$0].name == first }) else { return [] }
        var n = top
        for name in path.dropFirst() {
            guard case .group = nodes[n].kind, let c = nodes[n].children.first(where: { nodes[$0].name == name }) else { return nodes[top].leaves }
            n = c
        }
        return nodes[n].leaves
    }

    /// Fills in each leaf's dotted path (for messages and for matching the chunk's
    /// `path_in_schema`).
    mutating func assignPaths() {
        func walk(_ n: Int, _ prefix: [String]) {
            let path = n == 0 ? [] : prefix + [nodes[n].name]
            if case .primitive(let leaf) = nodes[n].kind { leaves[leaf].path = path; return }
            for c in nodes[n].children { walk(c, path) }
        }
        walk(0, [])
    }
}
