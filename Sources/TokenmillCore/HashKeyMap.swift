/// A map from 128-bit hashes (xxh3-128 keys) to values: open addressing with linear
/// probing over a power-of-two table, at most 3/4 full. The slot is the key's low 64
/// bits — already uniform, so no hasher runs (`Dictionary` and `Set` ran SipHash on every
/// lookup: ~7% of a build's scan on a corpus of many repeats, in three tables).
public struct HashKeyMap<Value> {
    private var lows: [UInt64]
    private var highs: [UInt64]
    private var used: [Bool]
    private var values: [Value?]
    public private(set) var count = 0
    private var mask: Int

    public init(capacity: Int = 16) {
        var n = 16
        while n * 3 < capacity * 4 { n <<= 1 }
        lows = [UInt64](repeating: 0, count: n)
        highs = [UInt64](repeating: 0, count: n)
        used = [Bool](repeating: false, count: n)
        values = [Value?](repeating: nil, count: n)
        mask = n - 1
    }

    public var isEmpty: Bool { count == 0 }

    /// The slot holding `key`, or the empty slot where it would go.
    @inline(__always)
    private func slot(_ key: UInt128Hash) -> (Int, Bool) {
        var i = Int(truncatingIfNeeded: key.low) & mask
        while used[i] {
            if lows[i] == key.low && highs[i] == key.high { return (i, true) }
            i = (i + 1) & mask
        }
        return (i, false)
    }

    public subscript(key: UInt128Hash) -> Value? {
        get {
            let (i, found) = slot(key)
            return found ? values[i] : nil
        }
        set {
            guard let v = newValue else { preconditionFailure("HashKeyMap does not remove keys") }
            let (i, found) = slot(key)
            if found { values[i] = v } else { add(key, v, at: i) }
        }
    }

    /// Inserts `key` with `value` if absent (one probe); true when it was inserted.
    @discardableResult
    public mutating func insert(_ key: UInt128Hash, _ value: Value) -> Bool {
        let (i, found) = slot(key)
        if found { return false }
        add(key, value, at: i)
        return true
    }

    /// Puts an absent key at its empty slot `i`, growing first (and probing again) when
    /// the table would pass 3/4 full.
    private mutating func add(_ key: UInt128Hash, _ value: Value, at i: Int) {
        var i = i
        if (count + 1) * 4 > (mask + 1) * 3 {
            grow()
            i = slot(key).0
        }
        used[i] = true; lows[i] = key.low; highs[i] = key.high; values[i] = value
        count += 1
    }

    private mutating func grow() {
        let old = (lows, highs, used, values)
        let n = (mask + 1) * 2
        lows = [UInt64](repeating: 0, count: n)
        highs = [UInt64](repeating: 0, count: n)
        used = [Bool](repeating: false, count: n)
        values = [Value?](repeating: nil, count: n)
        mask = n - 1
        for i in old.2.indices where old.2[i] {
            let key = UInt128Hash(low: old.0[i], high: old.1[i])
            let j = slot(key).0
            used[j] = true; lows[j] = key.low; highs[j] = key.high; values[j] = old.3[i]
        }
    }
}

/// A set of 128-bit hashes (`HashKeyMap` without values).
public struct HashKeySet {
    private var map = HashKeyMap<Bool>()
    public init() {}
    public var count: Int { map.count }
    /// True when `key` was not in the set (and now is).
    @discardableResult
    public mutating func insert(_ key: UInt128Hash) -> Bool { map.insert(key, true) }
    public func contains(_ key: UInt128Hash) -> Bool { map[key] != nil }
}
