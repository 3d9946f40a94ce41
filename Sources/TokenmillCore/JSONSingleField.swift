/// The shape most JSON-lines text files have, `{"text": "..."}`: an object whose only
/// member is the wanted key, its value a string without escapes. `JSONParser.scanObject`
/// takes any object, and its generality (key table, escapes, other members, the value's
/// kind, error messages) cost ~430 instructions a line, a twentieth of `tokenmill encode`
/// on chat-turn lines; this path takes ~100 on such lines. Any other line (another member,
/// an escape, a control byte, invalid UTF-8, bad JSON) gets nil and goes to the general
/// scan, which gives the same text or the exact error.
extension JSONParser {
    /// The range of the string value in `line` when `line` is, with JSON whitespace
    /// anywhere between the tokens, `{"<key>":"<string>"}` and the string has no escape,
    /// no control byte and is valid UTF-8; nil otherwise.
    @inline(__always)
    public static func onlyStringMember(_ line: UnsafeBufferPointer<UInt8>, key: UnsafeBufferPointer<UInt8>) -> (start: Int, end: Int)? {
        guard let p = line.baseAddress, let k = key.baseAddress else { return nil }
        let n = line.count, kn = key.count
        @inline(__always) func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 }
        var i = 0
        while i < n && isSpace(p[i]) { i &+= 1 }
        // `{` then the key's opening quote.
        guard i &+ kn &+ 4 <= n, p[i] == 0x7B else { return nil }
        i &+= 1
        while i < n && isSpace(p[i]) { i &+= 1 }
        guard i &+ kn &+ 2 < n, p[i] == 0x22, p[i &+ 1 &+ kn] == 0x22, memcmpEqual(p + (i &+ 1), k, kn) else { return nil }
        i &+= kn &+ 2
        while i < n && isSpace(p[i]) { i &+= 1 }
        guard i < n, p[i] == 0x3A else { return nil }
        i &+= 1
        while i < n && isSpace(p[i]) { i &+= 1 }
        guard i < n, p[i] == 0x22 else { return nil }
        // The string: `plainString` (16 bytes a step to the first quote, backslash or
        // control byte, which must be the closing quote; UTF-8 checked unless ASCII).
        var parser = JSONParser(line, start: i)
        guard let (start, end) = parser.plainString() else { return nil }
        i = parser.position
        while i < n && isSpace(p[i]) { i &+= 1 }
        guard i < n, p[i] == 0x7D else { return nil }
        i &+= 1
        while i < n && isSpace(p[i]) { i &+= 1 }
        guard i == n else { return nil }
        return (start, end)
    }
}

@inline(__always)
func memcmpEqual(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ n: Int) -> Bool {
    var j = 0
    while j < n && a[j] == b[j] { j &+= 1 }
    return j == n
}
