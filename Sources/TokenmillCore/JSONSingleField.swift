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
    /// `\n`, read in one pass from `line` (`available` bytes readable, the line's end
    /// among them; `tm_jsonl_field_line`): the string's text and the line's end (its `\n`,
    /// or `available`, relative to `line`) when the string is valid UTF-8. The text lies in
    /// the line itself when the string has no escape, else it is decoded into `scratch`
    /// (room for `available` + 32 bytes: decoding only shrinks, and the decoder stores
    /// whole 32-byte blocks). nil for any other line (another layout, a control byte, a
    /// lone surrogate or bad escape, invalid UTF-8), which `onlyStringMember` or the full
    /// scan then read, giving the same text or the exact error. `head` is `{"<key>":`.
    /// The line's end comes from the JSON itself, so a line of this shape is read once,
    /// not once for its `\n` and again for its text; lines with escapes had gone through
    /// `scanObject`, whose generality cost more than the decoding on them.
    @inline(__always)
    public static func fieldLine(_ line: UnsafePointer<UInt8>, available: Int, head: UnsafeBufferPointer<UInt8>,
                                 scratch: UnsafeMutablePointer<UInt8>) -> (text: UnsafeBufferPointer<UInt8>, lineEnd: Int)? {
        var start = 0, end = 0, lineEnd = 0, high: UInt8 = 0
        let shape = tm_jsonl_field_line(line, available, head.baseAddress!, head.count, scratch, &start, &end, &lineEnd, &high)
        guard shape != 0 else { return nil }
        let text = UnsafeBufferPointer(start: (shape == 1 ? line : UnsafePointer(scratch)) + start, count: end - start)
        guard high == 0 || UTF8Validation.isValid(text) else { return nil }
        return (text, lineEnd)
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
