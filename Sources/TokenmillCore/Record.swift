/// The one record type that flows between stages (datatrove's `Document`).
///
/// A record is either a conversation (an instruction pair is a conversation of one user
/// turn and one assistant turn, with an optional system prompt) or a plain text
/// document. Text is UTF-8 bytes: stages work on bytes, `String` is built only at the
/// edges. `source` indexes the spec's sources; `file` and `line` say where it came from
/// (1-based line of JSONL, or the line an element of a JSON array starts on).
public struct Record: Sendable, Equatable {
    public enum Kind: UInt8, Sendable { case conversation = 0, text = 1 }
    public enum Role: UInt8, Sendable { case user = 0, assistant = 1 }

    public struct Turn: Sendable, Equatable {
        public var role: Role
        public var content: [UInt8]
        public init(role: Role, content: [UInt8]) { self.role = role; self.content = content }
    }

    public var source: Int32
    public var file: Int32
    public var line: Int
    public var kind: Kind
    public var system: [UInt8]
    public var turns: [Turn]
    public var text: [UInt8]
    /// Set when the mapping dropped the row on purpose (a pick's requirement): the record
    /// is filtered under this reason before anything else looks at it.
    public var dropReason: String? = nil

    public init(source: Int32, file: Int32, line: Int, kind: Kind, system: [UInt8] = [], turns: [Turn] = [], text: [UInt8] = []) {
        self.source = source; self.file = file; self.line = line; self.kind = kind
        self.system = system; self.turns = turns; self.text = text
    }

    public static func instruction(source: Int32, file: Int32, line: Int, system: [UInt8], prompt: [UInt8], response: [UInt8]) -> Record {
        Record(source: source, file: file, line: line, kind: .conversation, system: system,
               turns: [Turn(role: .user, content: prompt), Turn(role: .assistant, content: response)])
    }

    /// Applies `f` to every text field (system, each turn, text).
    public mutating func transformTexts(_ f: ([UInt8]) -> [UInt8]) {
        if !system.isEmpty { system = f(system) }
        for i in turns.indices { turns[i].content = f(turns[i].content) }
        if !text.isEmpty { text = f(text) }
    }

    /// Number of Unicode scalars over all text fields (for `min_chars`/`max_chars`).
    public var scalarCount: Int {
        var n = countScalars(system) + countScalars(text)
        for t in turns { n += countScalars(t.content) }
        return n
    }

    /// xxh3-64 of `dedupKey`, hashed field by field (no copy of the texts): what a stable
    /// split and subsample key on, so a record's split depends on its source's name and its
    /// own content, never on where it lies among the inputs.
    public var contentHash: UInt64 {
        var h = XXH3Stream()
        withUnsafeBytes(of: kind.rawValue) { h.update($0) }
        func field(_ tag: UInt8, _ b: [UInt8]) {
            withUnsafeBytes(of: tag) { h.update($0) }
            withUnsafeBytes(of: UInt64(b.count).littleEndian) { h.update($0) }
            b.withUnsafeBytes { h.update($0) }
        }
        field(0xFF, system)
        for t in turns { field(t.role.rawValue, t.content) }
        field(0xFE, text)
        return h.digest()
    }

    /// Bytes that identify the record's content for exact dedup: the kind, then every
    /// field with its length, so field boundaries cannot alias ("ab"+"c" vs "a"+"bc").
    public var dedupKey: [UInt8] {
        var key: [UInt8] = [kind.rawValue]
        func field(_ tag: UInt8, _ b: [UInt8]) {
            key.append(tag)
            withUnsafeBytes(of: UInt64(b.count).littleEndian) { key.append(contentsOf: $0) }
            key.append(contentsOf: b)
        }
        field(0xFF, system)
        for t in turns { field(t.role.rawValue, t.content) }
        field(0xFE, text)
        return key
    }
}

@inline(__always)
public func countScalars(_ b: [UInt8]) -> Int {
    // Bytes minus continuation bytes (10xxxxxx), eight at a time: a continuation byte has
    // bit 7 set and bit 6 clear.
    b.withUnsafeBytes { raw in
        let n = raw.count
        var i = 0, continuation = 0
        let hi: UInt64 = 0x8080_8080_8080_8080
        while i + 8 <= n {
            let x = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            continuation += (x & hi & ~(x << 1)).nonzeroBitCount
            i += 8
        }
        while i < n { if raw[i] & 0xC0 == 0x80 { continuation += 1 }; i += 1 }
        return n - continuation
    }
}
