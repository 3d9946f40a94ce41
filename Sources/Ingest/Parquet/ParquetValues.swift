import TokenmillCore

/// How a leaf's stored values become text, from its logical (or legacy converted) type:
/// the stored integer of a DECIMAL, DATE, TIME or TIMESTAMP column is not its text.
/// docs/DECISIONS.md ("Parquet values as text") gives the forms and why.
enum LeafRendering: Equatable {
    case plain
    /// The unscaled integer with `scale` digits after the point: exact decimal text.
    case decimal(scale: Int)
    /// Days since 1970-01-01: `YYYY-MM-DD`.
    case date
    /// Ticks since midnight in `unit` (1 ms, 2 µs, 3 ns): `HH:MM:SS.fff…`, the unit's digits.
    case time(unit: Int)
    /// Ticks since the epoch: `YYYY-MM-DDTHH:MM:SS.fff…`, the unit's digits, `Z` when the
    /// column holds UTC instants (isAdjustedToUTC).
    case timestamp(unit: Int, utc: Bool)
    /// IEEE half precision, shortest round-trip text.
    case float16
    /// Legacy INT96 (nanoseconds of the day, Julian day): a nanosecond timestamp.
    case int96

    /// The rendering a schema element asks for; a reason string when it is one Tokenmill
    /// cannot render (refused only if the mapping reads the column).
    static func of(_ el: SchemaElement, type: ParquetType) -> (rendering: LeafRendering, refusal: String?) {
        let converted = el.convertedType, logical = el.logicalType
        if converted == 5 || logical == 5 {
            let scale = Int(el.scale ?? 0)
            guard scale >= 0 && scale <= 100 else { return (.plain, "DECIMAL with scale \(scale)") }
            guard [.int32, .int64, .fixedLenByteArray, .byteArray].contains(type) else { return (.plain, "DECIMAL stored as \(type)") }
            return (.decimal(scale: scale), nil)
        }
        if converted == 6 || logical == 6 {
            return type == .int32 ? (.date, nil) : (.plain, "DATE stored as \(type)")
        }
        if logical == 7 || converted == 7 || converted == 8 {
            let unit = logical == 7 ? Int(el.timeUnit ?? 1) : (converted == 7 ? 1 : 2)
            guard (1...3).contains(unit), type == (unit == 1 ? .int32 : .int64) else { return (.plain, "TIME stored as \(type)") }
            return (.time(unit: unit), nil)
        }
        if logical == 8 || converted == 9 || converted == 10 {
            // The legacy TIMESTAMP_MILLIS/MICROS are UTC instants (parquet-format's
            // backward-compatibility rules).
            let unit = logical == 8 ? Int(el.timeUnit ?? 1) : (converted == 9 ? 1 : 2)
            guard (1...3).contains(unit), type == .int64 else { return (.plain, "TIMESTAMP stored as \(type)") }
            return (.timestamp(unit: unit, utc: logical == 8 ? el.adjustedToUTC : true), nil)
        }
        if logical == 15 {
            return type == .fixedLenByteArray && el.typeLength == 2 ? (.float16, nil) : (.plain, "FLOAT16 of \(el.typeLength ?? 0) bytes")
        }
        if type == .int96 { return (.int96, nil) }
        return (.plain, nil)
    }
}

/// Values of a leaf as text (JSON-like values, as records are built from them).
enum ParquetValues {
    static func int(_ v: Int64, _ leaf: LeafColumn) -> JSONValue {
        switch leaf.rendering {
        case .decimal(let scale): return .number(decimal(magnitude: v.magnitude.description, negative: v < 0, scale: scale))
        case .date: return .string(Array(date(days: v).utf8))
        case .time(let unit): return .string(Array(time(ticks: v, unit: unit).utf8))
        case .timestamp(let unit, let utc): return .string(Array(timestamp(ticks: v, unit: unit, utc: utc).utf8))
        default:
            let text: String
            if leaf.type == .int32 {
                text = leaf.unsigned ? String(UInt32(truncatingIfNeeded: v)) : String(Int32(truncatingIfNeeded: v))
            } else {
                text = leaf.unsigned ? String(UInt64(bitPattern: v)) : String(v)
            }
            return .number(Array(text.utf8))
        }
    }

    /// A BYTE_ARRAY or FIXED_LEN_BYTE_ARRAY value: text (UTF-8 checked, repaired), or the
    /// decimal or half float it encodes. Returns whether the text was repaired.
    static func bytes(_ b: UnsafeBufferPointer<UInt8>, _ leaf: LeafColumn) -> (JSONValue, repaired: Bool) {
        switch leaf.rendering {
        case .decimal(let scale):
            let (digits, negative) = bigEndianDecimal(b)
            return (.number(decimal(magnitude: digits, negative: negative, scale: scale)), false)
        case .float16:
            let bits = UInt16(b[0]) | UInt16(b[1]) << 8
            return (.number(half(Float16(bitPattern: bits))), false)
        default:
            if UTF8Validation.isValid(b) { return (.string(Array(b)), false) }
            return (.string(Array(String(decoding: b, as: UTF8.self).utf8)), true)
        }
    }

    /// INT96: 8 bytes of nanoseconds within the day, then the Julian day (4 bytes).
    static func int96(_ b: UnsafeBufferPointer<UInt8>) -> JSONValue {
        var nanos: UInt64 = 0
        for k in 0..<8 { nanos |= UInt64(b[k]) << (8 * UInt64(k)) }
        // The Julian day is unsigned (as Arrow and Impala read it).
        var day: UInt32 = 0
        for k in 0..<4 { day |= UInt32(b[8 + k]) << (8 * UInt32(k)) }
        let julian = Int64(day)
        // Wrapping, as Arrow converts INT96 to its int64 nanoseconds: a value outside
        // 1677-2262 reads as the same wrong instant pyarrow shows, not as an error.
        let ticks = (julian &- 2_440_588) &* 86_400_000_000_000 &+ Int64(bitPattern: nanos)
        return .string(Array(timestamp(ticks: ticks, unit: 3, utc: false).utf8))
    }

    // MARK: text forms

    /// 10^k for |k| <= 22, exactly (beyond, as near as a double gets).
    static func pow10(_ k: Int) -> Double {
        var p = 1.0
        for _ in 0..<abs(k) { p *= 10 }
        return k >= 0 ? p : 1 / p
    }

    /// A half float as numpy prints it: the fewest significant digits that read back as
    /// the same half (65504 prints as 65500.0), in Python's float form.
    static func half(_ v: Float16) -> [UInt8] {
        if v.isNaN || v.isInfinite { return ColumnDecoder.number(v) }
        let x = Double(v)
        if x == 0 { return Array(x.description.utf8) }
        // The decimal exponent: 10^e <= |x| < 10^(e+1) (halves lie within 1e-8...65504).
        var e = 0
        while abs(x) >= pow10(e + 1) { e += 1 }
        while abs(x) < pow10(e) { e -= 1 }
        for digits in 1...5 {
            // Rounded to `digits` significant digits with exact powers of ten and one
            // correctly rounded step, so the double is the one nearest the decimal.
            let n = digits - 1 - e
            let r = n >= 0 ? (x * pow10(n)).rounded() / pow10(n) : (x / pow10(-n)).rounded() * pow10(-n)
            if Float16(r) == v { return Array(r.description.utf8) }
        }
        return Array(x.description.utf8)
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { let q = a / b; return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q }

    /// Proleptic Gregorian date of a day count from 1970-01-01 (H. Hinnant's civil_from_days).
    static func civil(_ days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = floorDiv(z, 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    static func pad(_ v: Int64, _ width: Int) -> String {
        let s = String(v.magnitude)
        return (v < 0 ? "-" : "") + String(repeating: "0", count: max(0, width - s.count)) + s
    }

    static func date(days: Int64) -> String {
        // Days beyond ±2^40 cannot be a calendar date anyone stored on purpose; keep the
        // arithmetic in range.
        guard days.magnitude < 1 << 40 else { return "(date out of range)" }
        let (y, m, d) = civil(days)
        let year = (0...9999).contains(y) ? pad(y, 4) : (y < 0 ? pad(y, 4) : "+" + pad(y, 4))
        return "\(year)-\(pad(m, 2))-\(pad(d, 2))"
    }

    static func perSecond(_ unit: Int) -> Int64 { unit == 1 ? 1_000 : unit == 2 ? 1_000_000 : 1_000_000_000 }

    static func clock(secondsOfDay s: Int64, fraction: Int64, unit: Int) -> String {
        "\(pad(s / 3600, 2)):\(pad(s / 60 % 60, 2)):\(pad(s % 60, 2)).\(pad(fraction, unit * 3))"
    }

    static func time(ticks: Int64, unit: Int) -> String {
        let per = perSecond(unit)
        let secs = floorDiv(ticks, per)
        guard secs >= 0 && secs < 86_400 else { return "(time out of range: \(ticks))" }
        return clock(secondsOfDay: secs, fraction: ticks - secs * per, unit: unit)
    }

    static func timestamp(ticks: Int64, unit: Int, utc: Bool) -> String {
        let per = perSecond(unit)
        let secs = floorDiv(ticks, per)
        let days = floorDiv(secs, 86_400)
        return date(days: days) + "T" + clock(secondsOfDay: secs - days * 86_400, fraction: ticks - secs * per, unit: unit) + (utc ? "Z" : "")
    }

    /// `digits` (a magnitude in decimal) with the point `scale` digits from the right.
    static func decimal(magnitude digits: String, negative: Bool, scale: Int) -> [UInt8] {
        var d = Array(digits.utf8)
        if scale > 0 {
            if d.count <= scale { d = [UInt8](repeating: UInt8(ascii: "0"), count: scale - d.count + 1) + d }
            d.insert(UInt8(ascii: "."), at: d.count - scale)
        }
        let zero = d.allSatisfy { $0 == UInt8(ascii: "0") || $0 == UInt8(ascii: ".") }
        return (negative && !zero ? [UInt8(ascii: "-")] : []) + d
    }

    /// A big-endian two's-complement integer as its decimal magnitude and sign.
    static func bigEndianDecimal(_ b: UnsafeBufferPointer<UInt8>) -> (String, negative: Bool) {
        if b.isEmpty { return ("0", false) }
        let negative = b[0] & 0x80 != 0
        var bytes = Array(b)
        if negative {
            // Two's complement: invert and add one.
            for k in bytes.indices { bytes[k] = ~bytes[k] }
            var k = bytes.count - 1
            while k >= 0 { bytes[k] &+= 1; if bytes[k] != 0 { break }; k -= 1 }
        }
        // Repeated division by 10^9 over the big-endian bytes.
        var limbs: [String] = []
        var n = bytes
        while n.contains(where: { $0 != 0 }) {
            var rem: UInt64 = 0
            for k in n.indices {
                let cur = rem << 8 | UInt64(n[k])
                n[k] = UInt8(cur / 1_000_000_000)
                rem = cur % 1_000_000_000
            }
            limbs.append(String(rem))
        }
        if limbs.isEmpty { return ("0", false) }
        var text = limbs.last!
        for limb in limbs.dropLast().reversed() { text += String(repeating: "0", count: 9 - limb.count) + limb }
        return (text, negative)
    }
}
