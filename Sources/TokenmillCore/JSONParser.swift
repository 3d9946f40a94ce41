#if canImport(Glibc)
import Glibc
#endif
import CIntrinsics
/// A byte-level JSON parser (RFC 8259) producing `JSONValue`.
///
/// It works on UTF-8 bytes, never on `String`. Errors carry the byte offset; the caller
/// turns it into a line number only once an error exists (swift-foundation's habit).
/// Nesting is capped (`maxDepth`) so hostile input cannot overflow the stack.
///
/// String handling: escapes are decoded straight into UTF-8; `\u` surrogate pairs are
/// combined; a lone surrogate becomes U+FFFD and is counted in `repairs`; raw bytes that
/// are not valid UTF-8 are replaced with U+FFFD the same way. Unescaped control
/// characters are an error, as the RFC says.
public struct JSONParser {
    public struct Failure: Error, Sendable {
        public var offset: Int
        public var message: String
        public init(offset: Int, message: String) { self.offset = offset; self.message = message }
    }

    public static let maxDepth = 512

    let bytes: UnsafeBufferPointer<UInt8>
    public private(set) var position: Int
    let end: Int
    public private(set) var repairs = 0

    public init(_ bytes: UnsafeBufferPointer<UInt8>, start: Int = 0, end: Int? = nil) {
        self.bytes = bytes
        self.position = start
        self.end = end ?? bytes.count
    }

    /// Parses one value that must span the whole range (surrounding whitespace allowed).
    public static func parse(_ bytes: [UInt8]) throws(Failure) -> JSONValue {
        try bytes.withUnsafeBufferPointer { (buf) throws(Failure) -> JSONValue in
            var p = JSONParser(buf)
            let v = try p.parseValue()
            p.skipWhitespace()
            if p.position != p.end { throw Failure(offset: p.position, message: "unexpected data after the JSON value") }
            return v
        }
    }

    public mutating func skipWhitespace() {
        while position < end {
            let c = bytes[position]
            if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { position += 1 } else { break }
        }
    }

    public var atEnd: Bool { position >= end }
    public func peek() -> UInt8? { position < end ? bytes[position] : nil }
    public mutating func advance() { position += 1 }

    public mutating func parseValue() throws(Failure) -> JSONValue {
        try parseValue(depth: 0)
    }

    mutating func parseValue(depth: Int) throws(Failure) -> JSONValue {
        skipWhitespace()
        guard position < end else { throw fail("unexpected end of input, expected a value") }
        switch bytes[position] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw fail("unexpected character \(describe(bytes[position])), expected a value")
        }
    }

    /// Parses a row: an object keeps only the members whose key is in `keep` — the
    /// other values are checked for syntax and skipped without building anything (the
    /// hot path of ingest: a spec names a few fields of rows that may hold many). Any
    /// other value is parsed whole (the mapping then reports it).
    public mutating func parseRow(keeping keep: Set<[UInt8]>) throws(Failure) -> JSONValue {
        skipWhitespace()
        guard position < end, bytes[position] == UInt8(ascii: "{") else { return try parseValue() }
        return try parseObject(depth: 1, keeping: keep)
    }

    /// Checks one value's syntax and moves past it without building it.
    public mutating func skipValue() throws(Failure) { try skipValue(depth: 0) }

    mutating func skipValue(depth: Int) throws(Failure) {
        skipWhitespace()
        guard position < end else { throw fail("unexpected end of input, expected a value") }
        switch bytes[position] {
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            let close = bytes[position] == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
            let isObject = close == UInt8(ascii: "}")
            if depth + 1 > Self.maxDepth { throw fail("nesting deeper than \(Self.maxDepth)") }
            position += 1
            skipWhitespace()
            if position < end && bytes[position] == close { position += 1; return }
            while true {
                if isObject {
                    skipWhitespace()
                    guard position < end, bytes[position] == UInt8(ascii: "\"") else { throw fail("expected a string key in object") }
                    try skipString()
                    skipWhitespace()
                    guard position < end, bytes[position] == UInt8(ascii: ":") else { throw fail("expected ':' after object key") }
                    position += 1
                }
                try skipValue(depth: depth + 1)
                skipWhitespace()
                guard position < end else { throw fail("unexpected end of input inside \(isObject ? "an object" : "an array")") }
                let c = bytes[position]
                position += 1
                if c == UInt8(ascii: ",") { continue }
                if c == close { return }
                position -= 1
                throw fail("expected ',' or '\(Character(Unicode.Scalar(close)))', found \(describe(c))")
            }
        case UInt8(ascii: "\""): try skipString()
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): _ = try parseNumber()
        default: throw fail("unexpected character \(describe(bytes[position])), expected a value")
        }
    }

    /// Scans an object at `position` without building a value. For each of `keys` found:
    /// a string value is decoded once into `scratch` (room for the object's bytes: decoding
    /// only shrinks), `inScratch[k]` is true and
    /// `slots[k]..<ends[k]` is its range there; any other value stays in place, from
    /// `slots[k]` to `ends[k]` in the input. Keys not found keep `slots[k] == -1`.
    /// False — parse the row the ordinary way — when the value is not an object, a key
    /// holds an escape or repeats, or a string needed UTF-8 repair; a syntax error throws
    /// as `parseRow` would.
    ///
    /// With `inInput`, a string value without escapes is not copied: `inInput[k]` is true
    /// and `slots[k]..<ends[k]` is its text in the input (checked as UTF-8 like a decoded one).
    public mutating func scanObject(keys: [[UInt8]], into slots: UnsafeMutablePointer<Int>, ends: UnsafeMutablePointer<Int>,
                                    inScratch: UnsafeMutablePointer<Bool>, scratch: UnsafeMutablePointer<UInt8>,
                                    inInput: UnsafeMutablePointer<Bool>? = nil) throws(Failure) -> Bool {
        for k in keys.indices { slots[k] = -1; inScratch[k] = false; inInput?[k] = false }
        var used = 0
        skipWhitespace()
        guard position < end, bytes[position] == UInt8(ascii: "{") else { return false }
        position += 1
        skipWhitespace()
        if position < end && bytes[position] == UInt8(ascii: "}") { position += 1; return true }
        let base = bytes.baseAddress!
        while true {
            skipWhitespace()
            guard position < end, bytes[position] == UInt8(ascii: "\"") else { throw fail("expected a string key in object") }
            let keyStart = position + 1
            let escaped = try skipString()
            let keyEnd = position - 1
            skipWhitespace()
            guard position < end, bytes[position] == UInt8(ascii: ":") else { throw fail("expected ':' after object key") }
            position += 1
            skipWhitespace()
            let n = keyEnd - keyStart
            if escaped { return false }
            var wanted = -1
            for k in keys.indices where keys[k].count == n {
                // Keys are short: compared in line (a memcmp call per key was a fifth of a
                // one-field line's scan).
                if keys[k].withUnsafeBufferPointer({ key in n == 0 || memcmpEqual(key.baseAddress!, base + keyStart, n) }) {
                    // A repeated key: `parseRow` builds every copy (and checks each one's
                    // UTF-8), so such a row takes that path.
                    if slots[k] >= 0 { return false }
                    wanted = k
                    break
                }
            }
            if wanted >= 0 {
                if let inInput, position < end && bytes[position] == UInt8(ascii: "\""), let (a, b) = plainString() {
                    slots[wanted] = a
                    ends[wanted] = b
                    inInput[wanted] = true
                } else if position < end && bytes[position] == UInt8(ascii: "\"") {
                    guard let n = try decodeString(into: scratch + used) else { return false }
                    slots[wanted] = used
                    used += n
                    ends[wanted] = used
                    inScratch[wanted] = true
                } else {
                    slots[wanted] = position
                    try skipValue(depth: 1)
                    ends[wanted] = position
                }
            } else {
                try skipValue(depth: 1)
            }
            skipWhitespace()
            guard position < end else { throw fail("unexpected end of input inside an object") }
            let c = bytes[position]
            position += 1
            if c == UInt8(ascii: ",") { continue }
            if c == UInt8(ascii: "}") { return true }
            position -= 1
            throw fail("expected ',' or '}' in object, found \(describe(c))")
        }
    }

    /// Nonzero when the word holds a quote, a backslash or a control byte (SWAR zero-byte
    /// tests; exact as "any" tests, which is all that is asked of them).
    @inline(__always)
    static func hasSpecial(_ w: UInt64) -> UInt64 {
        let q = w ^ 0x2222_2222_2222_2222, b = w ^ 0x5C5C_5C5C_5C5C_5C5C
        return (((q &- 0x0101_0101_0101_0101) & ~q) | ((b &- 0x0101_0101_0101_0101) & ~b) | ((w &- 0x2020_2020_2020_2020) & ~w)) & 0x8080_8080_8080_8080
    }

    /// A string (quote at `position`) with no escape and valid UTF-8: its text's range in
    /// the input, `position` after its closing quote. Otherwise nil and `position` where it
    /// was (the caller decodes it, and meets any error there).
    @inline(__always)
    mutating func plainString() -> (Int, Int)? {
        let quote = position
        position += 1
        let ascii = runToSpecial()
        if position < end && bytes[position] == UInt8(ascii: "\"") {
            let text = (quote + 1, position)
            if ascii || UTF8Validation.isValid(UnsafeBufferPointer(start: bytes.baseAddress! + text.0, count: text.1 - text.0)) {
                position += 1
                return text
            }
        }
        position = quote
        return nil
    }

    /// Moves past a string (quote at `position`), checking escapes and control bytes; true
    /// when it held an escape.
    @discardableResult
    mutating func skipString() throws(Failure) -> Bool {
        position += 1
        var escaped = false
        while true {
            _ = runToSpecial()
            guard position < end else { throw fail("unterminated string") }
            let c = bytes[position]
            if c == UInt8(ascii: "\"") { position += 1; return escaped }
            if c < 0x20 { throw fail("unescaped control character \(describe(c)) in string") }
            // A backslash (`runToSpecial` stops only at these three).
            escaped = true
            position += 1
            guard position < end else { throw fail("unterminated escape") }
            if JSONParser.simpleEscape(bytes[position]) != 0 {
                position += 1
            } else if bytes[position] == UInt8(ascii: "u") {
                guard end - position > 4 else { throw fail("unterminated \\u escape") }
                for k in 1...4 where !isHex(bytes[position + k]) { throw fail("invalid \\u escape") }
                position += 5
            } else {
                throw fail("invalid escape \\\(describe(bytes[position]))")
            }
        }
    }

    @inline(__always) func isHex(_ c: UInt8) -> Bool { c &- UInt8(ascii: "0") < 10 || (c | 0x20) &- UInt8(ascii: "a") < 6 }

    /// An object; with `keep`, only members whose key is in it are built (the others are
    /// skipped after a syntax check).
    mutating func parseObject(depth: Int, keeping keep: Set<[UInt8]>? = nil) throws(Failure) -> JSONValue {
        if depth > Self.maxDepth { throw fail("nesting deeper than \(Self.maxDepth)") }
        position += 1
        var members: [JSONMember] = []
        skipWhitespace()
        if position < end && bytes[position] == UInt8(ascii: "}") { position += 1; return .object(members) }
        while true {
            skipWhitespace()
            guard position < end, bytes[position] == UInt8(ascii: "\"") else { throw fail("expected a string key in object") }
            let key = try parseString()
            skipWhitespace()
            guard position < end, bytes[position] == UInt8(ascii: ":") else { throw fail("expected ':' after object key") }
            position += 1
            if let keep, !keep.contains(key) {
                try skipValue(depth: depth)
            } else {
                members.append(JSONMember(key: key, value: try parseValue(depth: depth)))
            }
            skipWhitespace()
            guard position < end else { throw fail("unexpected end of input inside an object") }
            let c = bytes[position]
            position += 1
            if c == UInt8(ascii: ",") { continue }
            if c == UInt8(ascii: "}") { return .object(members) }
            position -= 1
            throw fail("expected ',' or '}' in object, found \(describe(c))")
        }
    }

    mutating func parseArray(depth: Int) throws(Failure) -> JSONValue {
        if depth > Self.maxDepth { throw fail("nesting deeper than \(Self.maxDepth)") }
        position += 1
        var items: [JSONValue] = []
        skipWhitespace()
        if position < end && bytes[position] == UInt8(ascii: "]") { position += 1; return .array(items) }
        while true {
            items.append(try parseValue(depth: depth))
            skipWhitespace()
            guard position < end else { throw fail("unexpected end of input inside an array") }
            let c = bytes[position]
            position += 1
            if c == UInt8(ascii: ",") { continue }
            if c == UInt8(ascii: "]") { return .array(items) }
            position -= 1
            throw fail("expected ',' or ']' in array, found \(describe(c))")
        }
    }

    mutating func literal(_ word: StaticString) throws(Failure) {
        let n = word.utf8CodeUnitCount
        guard end - position >= n else { throw fail("invalid literal") }
        let w = word.utf8Start
        for i in 0..<n where bytes[position + i] != w[i] { throw fail("invalid literal") }
        position += n
    }

    mutating func parseNumber() throws(Failure) -> [UInt8] {
        let start = position
        if bytes[position] == UInt8(ascii: "-") { position += 1 }
        guard position < end, isDigit(bytes[position]) else { throw fail("invalid number") }
        if bytes[position] == UInt8(ascii: "0") {
            position += 1
        } else {
            while position < end && isDigit(bytes[position]) { position += 1 }
        }
        if position < end && bytes[position] == UInt8(ascii: ".") {
            position += 1
            guard position < end, isDigit(bytes[position]) else { throw fail("invalid number: digit expected after '.'") }
            while position < end && isDigit(bytes[position]) { position += 1 }
        }
        if position < end && (bytes[position] | 0x20) == UInt8(ascii: "e") {
            position += 1
            if position < end && (bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-")) { position += 1 }
            guard position < end, isDigit(bytes[position]) else { throw fail("invalid number: digit expected in exponent") }
            while position < end && isDigit(bytes[position]) { position += 1 }
        }
        return Array(bytes[start..<position])
    }

    @inline(__always) func isDigit(_ c: UInt8) -> Bool { c &- UInt8(ascii: "0") < 10 }

    /// Parses a string at `position` (which holds the opening quote) into UTF-8 bytes.
    public mutating func parseString() throws(Failure) -> [UInt8] {
        var out: [UInt8] = []
        try parseString(into: &out)
        return out
    }

    /// The same, appended to `out`: mapped fields are unescaped straight into a record.
    public mutating func parseString(into out: inout [UInt8]) throws(Failure) {
        position += 1
        var runStart = position
        while true {
            let ascii = runToSpecial()
            guard position < end else { throw fail("unterminated string") }
            let c = bytes[position]
            if c == UInt8(ascii: "\"") {
                appendRun(&out, runStart, position, ascii)
                position += 1
                return
            }
            if c == UInt8(ascii: "\\") {
                appendRun(&out, runStart, position, ascii)
                try parseEscape(into: &out)
                runStart = position
                continue
            }
            throw fail("unescaped control character \(describe(c)) in string")
        }
    }

    /// The string at `position` (its opening quote) unescaped into `dst`, which has room
    /// for the string's raw bytes (unescaping only shrinks); returns the decoded length,
    /// or nil when the string needs a UTF-8 repair (the caller then takes the ordinary
    /// path, which repairs and counts). The ingest hot path: plain runs are copied with
    /// memcpy, escapes written in place, no array in between.
    public mutating func decodeString(into dst: UnsafeMutablePointer<UInt8>) throws(Failure) -> Int? {
        position += 1
        var runStart = position
        var k = 0
        let base = bytes.baseAddress!
        while true {
            let ascii = runToSpecial()
            guard position < end else { throw fail("unterminated string") }
            let n = position - runStart
            if n > 0 {
                if !ascii && !UTF8Validation.isValid(UnsafeBufferPointer(start: base + runStart, count: n)) { return nil }
                (dst + k).update(from: base + runStart, count: n)
                k += n
            }
            let c = bytes[position]
            if c == UInt8(ascii: "\"") { position += 1; return k }
            if c == UInt8(ascii: "\\") {
                // `\n` and the other one-letter escapes inline (text is full of them); a run
                // of `\u` escapes of characters at once (`tm_json_u_escapes`: a file that
                // escapes all non-ASCII text is one such run after another, and one
                // `escapeScalar` each made decoding 22% of `encode` on it); a lone
                // surrogate, a bad digit and anything odd through `escapeScalar`.
                let simple = position + 1 < end ? JSONParser.simpleEscape(bytes[position + 1]) : 0
                var consumed = 0
                let written = simple == 0 ? tm_json_u_escapes(base + position, end - position, dst + k, &consumed) : 0
                if consumed > 0 {
                    k += written
                    position += consumed
                } else if simple != 0 {
                    dst[k] = simple
                    k += 1
                    position += 2
                } else {
                    let scalar = try escapeScalar()
                    if repairs > 0 { return nil }
                    k += UTF8Encoding.write(scalar, dst + k)
                }
                runStart = position
                continue
            }
            throw fail("unescaped control character \(describe(c)) in string")
        }
    }

    /// The byte a one-letter escape (`\n`, `\"`, ...) stands for, or 0.
    @inline(__always)
    static func simpleEscape(_ c: UInt8) -> UInt8 {
        switch c {
        case UInt8(ascii: "n"): return 0x0A
        case UInt8(ascii: "\""): return 0x22
        case UInt8(ascii: "\\"): return 0x5C
        case UInt8(ascii: "t"): return 0x09
        case UInt8(ascii: "r"): return 0x0D
        case UInt8(ascii: "/"): return 0x2F
        case UInt8(ascii: "b"): return 0x08
        case UInt8(ascii: "f"): return 0x0C
        default: return 0
        }
    }

    /// Moves `position` to the next quote, backslash or control byte of a string (or the
    /// end of input) and says whether the bytes passed over were all ASCII. Sixteen bytes
    /// a step in SIMD while none is special (the common case of long plain text runs),
    /// then one word (`hasSpecial`) and single bytes for the last few.
    @inline(__always)
    mutating func runToSpecial() -> Bool {
        let base = bytes.baseAddress!
        let end = self.end
        // The position lives in a register here (as a stored property of an inout self it
        // was written back on every block).
        var pos = position
        defer { position = pos }
        // 32 bytes a step in AVX2 where it is compiled in (`tm_json_plain_run`: no byte
        // loop for the tail, one call a string).
        var high: UInt8 = 0
        let at = tm_json_plain_run(base + pos, end - pos, &high)
        if at >= 0 {
            pos += at
            return high == 0
        }
        // Whole 16-byte blocks in SIMD (pcmpeqb/pmovmskb; Swift's SIMD16 compiles to them
        // when the types are concrete). The lanes of the comparison are 0x00 or 0xFF, so the
        // first set byte of its two words is the first special byte, and the bytes before
        // it join the ASCII test.
        let quote = SIMD16<UInt8>(repeating: 0x22), slash = SIMD16<UInt8>(repeating: 0x5C)
        let space = SIMD16<UInt8>(repeating: 0x20)
        var seen = SIMD16<UInt8>(repeating: 0)
        while pos + 16 <= end {
            let v = UnsafeRawPointer(base + pos).loadUnaligned(as: SIMD16<UInt8>.self)
            let special = (v .== quote) .| (v .== slash) .| (v .< space)
            if any(special) {
                let m = unsafeBitCast(special, to: (UInt64, UInt64).self)
                let w = unsafeBitCast(v, to: (UInt64, UInt64).self)
                let s = unsafeBitCast(seen, to: (UInt64, UInt64).self)
                var high = s.0 | s.1
                if m.0 != 0 {
                    pos += m.0.trailingZeroBitCount >> 3
                    high |= w.0 & ((m.0 & (~m.0 &+ 1)) &- 1)
                } else {
                    pos += 8 + m.1.trailingZeroBitCount >> 3
                    high |= w.0 | (w.1 & ((m.1 & (~m.1 &+ 1)) &- 1))
                }
                return high & 0x8080_8080_8080_8080 == 0
            }
            seen |= v
            pos += 16
        }
        // Fewer than 16 bytes left: a word, then single bytes.
        let s = unsafeBitCast(seen, to: (UInt64, UInt64).self)
        var ascii = (s.0 | s.1) & 0x8080_8080_8080_8080 == 0
        if pos + 8 <= end {
            let w = UnsafeRawPointer(base + pos).loadUnaligned(as: UInt64.self)
            if JSONParser.hasSpecial(w) == 0 {
                if w & 0x8080_8080_8080_8080 != 0 { ascii = false }
                pos += 8
            }
        }
        while pos < end {
            let c = base[pos]
            if c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") || c < 0x20 { break }
            if c >= 0x80 { ascii = false }
            pos += 1
        }
        return ascii
    }

    mutating func appendRun(_ out: inout [UInt8], _ a: Int, _ b: Int, _ ascii: Bool) {
        if a == b { return }
        let run = UnsafeBufferPointer(rebasing: bytes[a..<b])
        if ascii || UTF8Validation.isValid(run) {
            out.append(contentsOf: run)
        } else {
            repairs += 1
            out.append(contentsOf: String(decoding: run, as: UTF8.self).utf8)
        }
    }

    mutating func parseEscape(into out: inout [UInt8]) throws(Failure) {
        UTF8Encoding.append(try escapeScalar(), to: &out)
    }

    /// The scalar of the escape at `position` (its backslash), moving past it. A lone
    /// surrogate gives U+FFFD and counts a repair.
    mutating func escapeScalar() throws(Failure) -> UInt32 {
        position += 1
        guard position < end else { throw fail("unterminated escape") }
        let c = bytes[position]
        position += 1
        let simple = JSONParser.simpleEscape(c)
        if simple != 0 { return UInt32(simple) }
        switch c {
        case UInt8(ascii: "u"):
            var scalar = try hex4()
            if scalar >= 0xD800 && scalar < 0xDC00 {
                // A high surrogate must be followed by \u and a low surrogate.
                if end - position >= 6 && bytes[position] == UInt8(ascii: "\\") && bytes[position + 1] == UInt8(ascii: "u") {
                    let save = position
                    position += 2
                    let low = try hex4()
                    if low >= 0xDC00 && low < 0xE000 {
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else {
                        position = save
                        scalar = 0xFFFD
                        repairs += 1
                    }
                } else {
                    scalar = 0xFFFD
                    repairs += 1
                }
            } else if scalar >= 0xDC00 && scalar < 0xE000 {
                scalar = 0xFFFD
                repairs += 1
            }
            return scalar
        default:
            position -= 1
            throw fail("invalid escape '\\\(String(UnicodeScalar(c)))' in string")
        }
    }

    mutating func hex4() throws(Failure) -> UInt32 {
        guard end - position >= 4 else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[position]
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw fail("invalid hex digit in \\u escape")
            }
            v = v << 4 | d
            position += 1
        }
        return v
    }

    func fail(_ message: String) -> Failure { Failure(offset: position, message: message) }

    func describe(_ c: UInt8) -> String {
        if c >= 0x20 && c < 0x7F { return "'\(String(UnicodeScalar(c)))'" }
        return "byte 0x" + String(c, radix: 16)
    }
}

/// Line number (1-based) of a byte offset: computed only once an error exists.
public func lineNumber(of offset: Int, in bytes: UnsafeBufferPointer<UInt8>, startLine: Int = 1, from start: Int = 0) -> Int {
    var line = startLine
    var i = start
    let stop = min(offset, bytes.count)
    while i < stop { if bytes[i] == 0x0A { line += 1 }; i += 1 }
    return line
}
