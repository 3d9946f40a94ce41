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
    /// The `RowScanner`'s buffers (valid while the row is being mapped): no array is
    /// copied or retained per row.
    let slots: UnsafePointer<Int>
    let ends: UnsafePointer<Int>
    let inScratch: UnsafePointer<Bool>
    /// The mapped strings, decoded by the scan (`JSONParser.scanObject`).
    let scratch: UnsafePointer<UInt8>
    /// Strings without escapes, left where they lie in `bytes` (not copied into scratch).
    let inInput: UnsafePointer<Bool>

    /// The text of string field `k`: decoded into scratch, or in place in the input.
    @inline(__always)
    func text(_ k: Int) -> UnsafeBufferPointer<UInt8>? {
        if inInput[k] { return UnsafeBufferPointer(start: bytes.baseAddress! + slots[k], count: ends[k] - slots[k]) }
        if inScratch[k] { return UnsafeBufferPointer(start: scratch + slots[k], count: ends[k] - slots[k]) }
        return nil
    }

    @inline(__always)
    func index(_ path: [String]) -> Int? {
        guard path.count == 1 else { return nil }
        for k in keys.indices where keys[k] == path[0] { return slots[k] >= 0 ? k : nil }
        return nil
    }

    /// A string field, copied once (from the input or the scratch buffer) into the record's array.
    func bareString(_ path: [String]) -> [UInt8]? {
        guard let k = index(path), let t = text(k) else { return nil }
        return Array(t)
    }

    func rawLength(_ path: [String]) -> Int {
        guard let k = index(path) else { return 0 }
        return ends[k] - slots[k]
    }

    func appendField(_ path: [String], into out: inout [UInt8]) throws {
        guard let k = index(path) else { throw SlowPath() }
        let s = slots[k]
        if let t = text(k) {
            out.append(contentsOf: t)
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
/// ends and scratch buffer `JSONParser.scanObject` fills for each row, as raw memory this
/// scanner owns (`deallocate` when the batch is done).
struct RowScanner {
    let names: [String]
    let keys: [[UInt8]]
    let slots: UnsafeMutablePointer<Int>
    let ends: UnsafeMutablePointer<Int>
    let inScratch: UnsafeMutablePointer<Bool>
    let inInput: UnsafeMutablePointer<Bool>
    var scratch: UnsafeMutablePointer<UInt8>
    var scratchCapacity = 1 << 16

    init(_ mapping: FieldMapping) {
        names = mapping.scanKeys ?? []
        keys = names.map { Array($0.utf8) }
        slots = .allocate(capacity: max(names.count, 1))
        ends = .allocate(capacity: max(names.count, 1))
        inScratch = .allocate(capacity: max(names.count, 1))
        inInput = .allocate(capacity: max(names.count, 1))
        scratch = .allocate(capacity: scratchCapacity)
    }

    func deallocate() {
        slots.deallocate(); ends.deallocate(); inScratch.deallocate(); inInput.deallocate(); scratch.deallocate()
    }

    /// The row at `buf[a..<b]` mapped from its bytes when the mapping allows (`fast`) and
    /// the row is plain; nil sends it down the ordinary path, which reports whatever was
    /// unusual.
    @inline(__always)
    mutating func map<T>(_ fast: ((ScannedRow, Int) throws -> T)?, _ buf: UnsafeBufferPointer<UInt8>, _ a: Int, _ b: Int,
                         line: Int) -> T? {
        guard let fast else { return nil }
        if b - a > scratchCapacity {
            scratch.deallocate()
            scratchCapacity = max(b - a, 2 * scratchCapacity)
            scratch = .allocate(capacity: scratchCapacity)
        }
        var p = JSONParser(buf, start: a, end: b)
        do {
            guard try p.scanObject(keys: keys, into: slots, ends: ends, inScratch: inScratch, scratch: scratch, inInput: inInput) else { return nil }
            p.skipWhitespace()
            guard p.atEnd else { return nil }
            return try fast(ScannedRow(bytes: buf, end: b, keys: names, slots: slots, ends: ends, inScratch: inScratch, scratch: scratch,
                                       inInput: inInput), line)
        } catch {
            return nil
        }
    }
}
