import TokenmillCore

/// A JSON row mapped where it lies: `JSONParser.scanObject` found the offsets of the
/// mapped top-level fields and decoded their strings, in one pass, into one scratch
/// buffer; `render` copies them into the record: no value tree, no allocation per field
/// (the ingest hot path).
///
/// Only the plain case is handled here: a field that is missing, a list or an object
/// throws `SlowPath` (and the scan gives up on repeated keys and strings needing UTF-8
/// repair), and the caller maps the row the ordinary way, which gives the usual error,
/// repair count or reject.
struct ScannedRow: RowFields {
    struct SlowPath: Error {}

    let bytes: UnsafeBufferPointer<UInt8>
    let end: Int
    let keys: [String]
    let slots: [Int]
    let ends: [Int]
    let inScratch: [Bool]
    /// The mapped strings, decoded by the scan (`JSONParser.scanObject`).
    let scratch: [UInt8]

    func bareString(_ path: [String]) -> [UInt8]? { nil }

    func rawLength(_ path: [String]) -> Int {
        guard path.count == 1, let k = keys.firstIndex(of: path[0]), slots[k] >= 0 else { return 0 }
        return ends[k] - slots[k]
    }

    func appendField(_ path: [String], into out: inout [UInt8]) throws {
        guard path.count == 1, let k = keys.firstIndex(of: path[0]) else { throw SlowPath() }
        let s = slots[k]
        guard s >= 0 else { throw SlowPath() }
        if inScratch[k] {
            out.append(contentsOf: scratch[s..<ends[k]])
            return
        }
        switch bytes[s] {
        case UInt8(ascii: "t"): out.append(contentsOf: "true".utf8)
        case UInt8(ascii: "f"): out.append(contentsOf: "false".utf8)
        case UInt8(ascii: "n"): break
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            // Already syntax-checked by the scan: the number runs to its first delimiter.
            var e = s + 1
            while e < end {
                let c = bytes[e]
                if c &- UInt8(ascii: "0") < 10 || c == UInt8(ascii: ".") || c | 0x20 == UInt8(ascii: "e") || c == UInt8(ascii: "+") || c == UInt8(ascii: "-") {
                    e += 1
                } else { break }
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[s..<e]))
        default:
            throw SlowPath()
        }
    }
}

/// The scan state one batch of rows reuses: the mapping's top-level keys and the slots,
/// ends and scratch buffer `JSONParser.scanObject` fills for each row.
struct RowScanner {
    let names: [String]
    let keys: [[UInt8]]
    var slots: [Int]
    var ends: [Int]
    var inScratch: [Bool]
    var scratch: [UInt8] = []

    init(_ mapping: FieldMapping) {
        names = mapping.scanKeys ?? []
        keys = names.map { Array($0.utf8) }
        slots = [Int](repeating: -1, count: names.count)
        ends = slots
        inScratch = [Bool](repeating: false, count: names.count)
    }

    /// The row at `buf[a..<b]` mapped from its bytes when the mapping allows (`fast`) and
    /// the row is plain; nil sends it down the ordinary path, which reports whatever was
    /// unusual.
    @inline(__always)
    mutating func map<T>(_ fast: ((ScannedRow, Int) throws -> T)?, _ buf: UnsafeBufferPointer<UInt8>, _ a: Int, _ b: Int,
                         line: Int) -> T? {
        guard let fast else { return nil }
        var p = JSONParser(buf, start: a, end: b)
        do {
            guard try p.scanObject(keys: keys, into: &slots, ends: &ends, inScratch: &inScratch, scratch: &scratch) else { return nil }
            p.skipWhitespace()
            guard p.atEnd else { return nil }
            return try fast(ScannedRow(bytes: buf, end: b, keys: names, slots: slots, ends: ends, inScratch: inScratch, scratch: scratch), line)
        } catch {
            return nil
        }
    }
}
