import Dedup
import TokenmillCore

/// A record's place in spec order: its scan unit (units are in spec order) and its row in
/// the unit. Comparing ids compares positions, so "the earliest record" needs no table.
typealias RecordID = UInt64
@inline(__always) func recordID(unit: Int, row: Int) -> RecordID { UInt64(unit) << 32 | UInt64(row) }
@inline(__always) func unitOf(_ id: RecordID) -> Int { Int(id >> 32) }
@inline(__always) func rowOf(_ id: RecordID) -> Int { Int(id & 0xFFFF_FFFF) }

/// Exact dedup (drop reason `exact_dup`): the scan stage computes each record's key (xxh3-128
/// of the normalized compared text); the exact stage decides, one range of key hashes a
/// unit, that of the records sharing a key the earliest in spec order stays.
enum ExactDedupStep {
    /// The key-hash range (unit of the exact stage) a key falls in: its top `bits` bits.
    static func partition(_ k: UInt128Hash, bits: Int) -> Int { Int(k.high >> UInt64(64 - bits)) }

    /// A scan unit's keys grouped by partition: partitions + 1 u64 entry offsets, then the
    /// xxh3-64 of each partition's entries (the exact stage reads one partition of each
    /// unit and checks it), then entries of (high u64, low u64, row u32).
    static let entrySize = 20
    static func encodeKeys(_ parts: [[(UInt128Hash, UInt32)]]) -> [UInt8] {
        var entries = ByteWriter(capacity: parts.reduce(0) { $0 + $1.count } * entrySize)
        var sums: [UInt64] = []
        for p in parts {
            let from = entries.bytes.count
            for (k, row) in p { entries.u64(k.high); entries.u64(k.low); entries.u32(row) }
            sums.append(entries.bytes.withUnsafeBytes { XXH3.hash64(UnsafeRawBufferPointer(rebasing: $0[from...])) })
        }
        var w = ByteWriter(capacity: (2 * parts.count + 1) * 8 + entries.bytes.count)
        var at: UInt64 = 0
        for p in parts { w.u64(at); at += UInt64(p.count) }
        w.u64(at)
        for s in sums { w.u64(s) }
        w.bytes.append(contentsOf: entries.bytes)
        return w.bytes
    }

    static func dupsPath(_ w: WorkFolder, _ p: Int) -> String { w.path(.exact, "\(p).dups") }

    /// Unit `p`: every scan unit's keys in range p, sorted by (key, id); all but the first
    /// of each run of equal keys are duplicates. Writes their ids, sorted.
    static func run(_ ctx: BuildContext, partition p: Int) throws -> JSONOut {
        var entries: [(UInt64, UInt64, RecordID)] = []
        let header = (2 * ctx.exactPartitions + 1) * 8
        for u in ctx.units.indices {
            let f = try ScanStage.section(ctx.work, u, .keys)
            var r = ByteReader(try f.read(offset: p * 8, count: 16), path: f.path)
            let a = Int(try r.u64()), b = Int(try r.u64())
            guard a <= b, b <= (f.size - header) / entrySize else { throw TokenmillError.corrupt(path: f.path, message: "partition table out of order") }
            if a == b { continue }
            var c = ByteReader(try f.read(offset: (ctx.exactPartitions + 1 + p) * 8, count: 8), path: f.path)
            let sum = try c.u64()
            let bytes = try f.read(offset: header + a * entrySize, count: (b - a) * entrySize)
            guard XXH3.hash64(bytes) == sum else {
                throw TokenmillError.corrupt(path: f.path, message: "partition \(p): checksum mismatch (damaged or changed; rerun the build with --force to start over)")
            }
            var e = ByteReader(bytes, path: f.path)
            for _ in a..<b {
                let hi = try e.u64(), lo = try e.u64(), row = try e.u32()
                entries.append((hi, lo, recordID(unit: u, row: Int(row))))
            }
        }
        entries.sort { ($0.0, $0.1, $0.2) < ($1.0, $1.1, $1.2) }
        var dups: [RecordID] = []
        var i = 0
        while i < entries.count {
            var j = i + 1
            while j < entries.count && entries[j].0 == entries[i].0 && entries[j].1 == entries[i].1 { dups.append(entries[j].2); j += 1 }
            i = j
        }
        dups.sort()
        var w = ByteWriter(capacity: dups.count * 8)
        for d in dups { w.u64(d) }
        try WorkFile.write(dupsPath(ctx.work, p), w.bytes)
        return .object([("keys", .int(entries.count)), ("duplicates", .int(dups.count))])
    }

    /// Every partition's duplicates, merged into one sorted list.
    static func allDuplicates(_ ctx: BuildContext) throws -> [RecordID] {
        guard ctx.spec.exactDedup != nil else { return [] }
        var all: [RecordID] = []
        for p in 0..<ctx.exactPartitions { all.append(contentsOf: try readIDs(dupsPath(ctx.work, p))) }
        all.sort()
        return all
    }
}

extension BuildContext {
    /// The exact stage's decisions, read once a process.
    func exactDuplicates() throws -> [RecordID] {
        if let d = duplicatesMemo { return d }
        let d = try ExactDedupStep.allDuplicates(self)
        duplicatesMemo = d
        return d
    }
}

func readIDs(_ path: String) throws -> [RecordID] {
    var r = ByteReader(try WorkFile.read(path), path: path)
    guard r.remaining % 8 == 0 else { throw TokenmillError.corrupt(path: path, message: "size is not a multiple of 8") }
    var out: [RecordID] = []
    out.reserveCapacity(r.remaining / 8)
    while !r.atEnd { out.append(try r.u64()) }
    return out
}

func writeIDs(_ path: String, _ ids: [RecordID]) throws {
    var w = ByteWriter(capacity: ids.count * 8)
    for d in ids { w.u64(d) }
    try WorkFile.write(path, w.bytes)
}

/// Walks a sorted id list alongside records visited in id order.
struct SortedIDCursor {
    let ids: [RecordID]
    var i = 0
    init(_ ids: [RecordID]) { self.ids = ids }
    mutating func contains(_ id: RecordID) -> Bool {
        while i < ids.count && ids[i] < id { i += 1 }
        return i < ids.count && ids[i] == id
    }
}
