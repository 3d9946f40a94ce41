/// Disjoint sets over record indexes; the root of a set is always its smallest index,
/// so the kept record of a cluster (the earliest in spec order) is its root.
public struct UnionFind {
    var parent: [Int32]

    public init(count: Int) { parent = (0..<count).map { Int32($0) } }

    public mutating func find(_ x: Int) -> Int {
        var r = x
        while Int(parent[r]) != r { r = Int(parent[r]) }
        var y = x
        while Int(parent[y]) != r { let next = Int(parent[y]); parent[y] = Int32(r); y = next }
        return r
    }

    /// Joins the sets of x and y; false when they were already one set.
    @discardableResult
    public mutating func union(_ x: Int, _ y: Int) -> Bool {
        let rx = find(x), ry = find(y)
        if rx == ry { return false }
        if rx < ry { parent[ry] = Int32(rx) } else { parent[rx] = Int32(ry) }
        return true
    }
}
