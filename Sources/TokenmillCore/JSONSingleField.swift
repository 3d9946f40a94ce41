import CIntrinsics

/// The shape most JSON-lines text files have, `{"text": "..."}`: an object whose only
/// member is the wanted key, its value a string without escapes. `JSONParser.scanObject`
/// takes any object, and its generality (key table, escapes, other members, the value's
/// kind, error messages) cost ~430 instructions a line, a twentieth of `tokenmill encode`
/// on chat-turn lines; this path takes ~100 on such lines. Any other line (another member,
/// an escape, a control byte, invalid UTF-8, bad JSON) gets nil and goes to the general
/// scan, which gives the same text or the exact error.
extension JSONParser {
    /// A whole line of the exact layouts JSON-lines writers use for one text member,
    /// `{"<key>": "<string>"}` or `{"<key>":"<string>"}` with nothing else before its
    /// `\n`, found in one pass from `line` (`available` bytes readable, the line's end
    /// among them): the string's range and the line's end (its `\n`, or `available`),
    /// both relative to `line`, when the string has no escape or control byte and is
    /// valid UTF-8; nil for any other line, which `onlyStringMember` or the full scan
    /// then read. `head` is `{"<key>":`. The line's end comes from the JSON itself, so a
    /// line of this shape is read once, not once for its `\n` and again for its text.
    @inline(__always)
    public static func fieldLine(_ line: UnsafePointer<UInt8>, available: Int, head: UnsafeBufferPointer<UInt8>)
        -> (start: Int, end: Int, lineEnd: Int)? {
        var start = 0, end = 0, lineEnd = 0
        let shape = tm_jsonl_field_line(line, available, head.baseAddress!, head.count, &start, &end, &lineEnd)
        guard shape != 0 else { return nil }
        guard shape == 1 || UTF8Validation.isValid(UnsafeBufferPointer(start: line + start, count: end - start)) else { return nil }
        return (start, end, lineEnd)
    }

    /// The same layouts with a string that holds escapes (`\n`, `\"`, `\u4e2d`, ...): the
    /// string decoded into `scratch` (room for `available` + 32 bytes: decoding only
    /// shrinks, and the one-pass decoder stores whole 32-byte blocks)
    /// and its decoded length, with the line's end; nil for any other line, a string
    /// with a bad escape or one that needs a UTF-8 repair (the general scan gives their
    /// text or error). Lines with escapes had gone through `scanObject`, whose generality
    /// cost more than the decoding on them.
    public static func escapedFieldLine(_ line: UnsafePointer<UInt8>, available: Int, head: UnsafeBufferPointer<UInt8>,
                                        scratch: UnsafeMutablePointer<UInt8>) -> (count: Int, lineEnd: Int)? {
        let hn = head.count
        guard available >= hn + 3, memcmpEqual(line, head.baseAddress!, hn) else { return nil }
        var q = hn
        if line[q] == 0x20 { q += 1 }
        guard line[q] == 0x22 else { return nil }
        // One pass that scans, copies and unescapes (`tm_json_string_decode`); what it
        // leaves (a lone surrogate, a bad escape) to `decodeString`, which repairs or fails.
        var consumed = 0, high: UInt8 = 0
        var n = tm_json_string_decode(line + q + 1, available - q - 1, scratch, &consumed, &high)
        var e = q + 1 + consumed
        if n < 0 {
            var p = JSONParser(UnsafeBufferPointer(start: line, count: available), start: q)
            guard let m = (try? p.decodeString(into: scratch)) ?? nil else { return nil }
            n = m
            e = p.position
        } else if high != 0 && !UTF8Validation.isValid(UnsafeBufferPointer(start: scratch, count: n)) {
            return nil
        }
        guard e < available, line[e] == 0x7D, e + 1 == available || line[e + 1] == 0x0A else { return nil }
        return (n, e + 1)
    }

    /// The range of the string value in `line` when `line` is, with JSON whitespace
    /// anywhere between the tokens, `{"<key>":"<string>"}` and the string has no escape,
    /// no control byte and is valid UTF-8; nil otherwise. `key` must hold no quote,
    /// backslash or control byte (the line's key is compared byte for byte, undecoded).
    @inline(__always)
    public static func onlyStringMember(_ line: UnsafeBufferPointer<UInt8>, key: UnsafeBufferPointer<UInt8>) -> (start: Int, end: Int)? {
        guard let p = line.baseAddress, let k = key.baseAddress else { return nil }
        let kn = key.count
        var q = JSONParser(line)
        q.skipWhitespace()
        guard q.peek() == 0x7B else { return nil }
        q.advance()
        q.skipWhitespace()
        // The key: its quotes around exactly its bytes.
        let keyStart = q.position &+ 1
        guard keyStart &+ kn < line.count, p[q.position] == 0x22, p[keyStart &+ kn] == 0x22, memcmpEqual(p + keyStart, k, kn) else { return nil }
        q = JSONParser(line, start: keyStart &+ kn &+ 1)
        q.skipWhitespace()
        guard q.peek() == 0x3A else { return nil }
        q.advance()
        q.skipWhitespace()
        // The string: `plainString` (to the first quote, backslash or control byte, which
        // must be the closing quote; UTF-8 checked unless ASCII).
        guard q.peek() == 0x22, let text = q.plainString() else { return nil }
        q.skipWhitespace()
        guard q.peek() == 0x7D else { return nil }
        q.advance()
        q.skipWhitespace()
        return q.atEnd ? text : nil
    }
}

/// `a[0..<n] == b[0..<n]`, byte by byte: for short keys, where a call to memcmp cost more
/// than the compare.
@inline(__always)
func memcmpEqual(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ n: Int) -> Bool {
    var j = 0
    while j < n && a[j] == b[j] { j &+= 1 }
    return j == n
}
