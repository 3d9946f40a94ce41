import TokenmillCore

/// How a raw row becomes a record (DESIGN.md `map`).
///
/// A value is a field name (`"prompt"`, or a dotted path `"meta.title"`) or a template
/// with `{field}` placeholders (`"{instruction}\n\n{input}"`, `{a.b}` for nested
/// fields). `{{` and `}}` are literal braces. Fields may be strings, numbers (rendered as
/// written), booleans or null (rendered empty); objects and arrays are refused.
/// `[[ ... ]]` is an optional section: it is left out when any field in it renders
/// empty, so Alpaca's empty `input` leaves no dangling blank line:
/// `"{instruction}[[\n\n{input}]]"`. (`[[` and `]]` are therefore not literal text in a
/// template.)
public struct FieldMapping: Sendable {
    public indirect enum Part: Sendable, Equatable { case literal([UInt8]), field([String]), optional([Part]) }

    public struct Value: Sendable, Equatable {
        public var parts: [Part]
        /// Substrings replaced in the rendered text, in order (Empathetic Dialogues writes
        /// commas as `_comma_`).
        public var replacements: [Replacement] = []
        /// One of several values, chosen by another field (PKU-SafeRLHF's
        /// `safer_response_id`); `parts` is then empty.
        public var pick: Pick?

        public init(parts: [Part], replacements: [Replacement] = [], pick: Pick? = nil) {
            self.parts = parts; self.replacements = replacements; self.pick = pick
        }

        public struct Replacement: Sendable, Equatable {
            public var from: [UInt8]
            public var to: [UInt8]
            public init(from: [UInt8], to: [UInt8]) { self.from = from; self.to = to }
        }

        public struct Pick: Sendable, Equatable {
            public var choices: [Value]
            /// The field whose value (0, 1, ... as a number or a string of digits) says
            /// which choice.
            public var by: [String]
            /// For each choice, a field that must be true for the row to be kept (else it
            /// is filtered as `reason`): keep the safer response only when it is safe.
            public var require: [[String]]?
            public var reason: String
            public init(choices: [Value], by: [String], require: [[String]]?, reason: String) {
                self.choices = choices; self.by = by; self.require = require; self.reason = reason
            }
        }

        /// Every field path the value reads: its parts', and a pick's choices, `by` and
        /// `require` fields.
        var paths: [[String]] {
            var out: [[String]] = []
            func add(_ parts: [Part]) {
                for p in parts {
                    switch p {
                    case .field(let path): out.append(path)
                    case .optional(let inner): add(inner)
                    case .literal: break
                    }
                }
            }
            add(parts)
            if let pick {
                for c in pick.choices { out += c.paths }
                out.append(pick.by)
                out += pick.require ?? []
            }
            return out
        }
        /// A bare field name: a missing field is an error. In a template, too.
        public static func parse(_ s: String) throws -> Value {
            if !s.contains("{") && !s.contains("}") && !s.contains("[[") && !s.contains("]]") {
                return Value(parts: [.field(s.split(separator: ".", omittingEmptySubsequences: false).map(String.init))])
            }
            return Value(parts: try parseSections(s, whole: s))
        }

        /// Template text with optional `[[ ... ]]` sections (not nested).
        static func parseSections(_ s: String, whole: String) throws -> [Part] {
            let b = Array(s.utf8)
            func find(_ x: UInt8, from: Int) -> Int? {
                var i = from
                while i + 1 < b.count { if b[i] == x && b[i + 1] == x { return i }; i += 1 }
                return nil
            }
            let text = { (r: Range<Int>) in String(decoding: b[r], as: UTF8.self) }
            guard let open = find(UInt8(ascii: "["), from: 0) else {
                if find(UInt8(ascii: "]"), from: 0) != nil { throw MappingError("']]' without '[[' in template \"\(whole)\"") }
                return try parseTemplate(s, whole: whole)
            }
            guard let close = find(UInt8(ascii: "]"), from: open + 2) else { throw MappingError("unclosed '[[' in template \"\(whole)\"") }
            let inner = text(open + 2..<close)
            if inner.utf8.count >= 2 && find(UInt8(ascii: "["), from: open + 2).map({ $0 < close }) == true {
                throw MappingError("nested '[[' in template \"\(whole)\"")
            }
            let innerParts = try parseTemplate(inner, whole: whole)
            guard innerParts.contains(where: { if case .field = $0 { true } else { false } }) else {
                throw MappingError("optional section '[[\(inner)]]' names no {field} in template \"\(whole)\"")
            }
            return try parseTemplate(text(0..<open), whole: whole) + [.optional(innerParts)]
                + parseSections(text(close + 2..<b.count), whole: whole)
        }

        static func parseTemplate(_ s: String, whole: String) throws -> [Part] {
            var parts: [Part] = []
            var lit: [UInt8] = []
            let b = Array(s.utf8)
            var i = 0
            while i < b.count {
                let c = b[i]
                if c == UInt8(ascii: "{") && i + 1 < b.count && b[i + 1] == UInt8(ascii: "{") { lit.append(c); i += 2; continue }
                if c == UInt8(ascii: "}") && i + 1 < b.count && b[i + 1] == UInt8(ascii: "}") { lit.append(c); i += 2; continue }
                if c == UInt8(ascii: "}") { throw MappingError("unmatched '}' in template \"\(whole)\" (write '}}' for a literal brace)") }
                if c == UInt8(ascii: "{") {
                    guard let close = b[(i + 1)...].firstIndex(of: UInt8(ascii: "}")) else {
                        throw MappingError("unclosed '{' in template \"\(whole)\"")
                    }
                    let name = String(decoding: b[(i + 1)..<close], as: UTF8.self)
                    if name.isEmpty || name.contains("{") { throw MappingError("empty or nested field name in template \"\(whole)\"") }
                    if !lit.isEmpty { parts.append(.literal(lit)); lit = [] }
                    parts.append(.field(name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)))
                    i = close + 1
                    continue
                }
                lit.append(c); i += 1
            }
            if !lit.isEmpty { parts.append(.literal(lit)) }
            return parts
        }
    }

    /// A chat list (`messages`): a list of objects with a role and a content field; role
    /// names map to system / user / assistant.
    public struct Chat: Sendable {
        public enum Role: String, Sendable { case system, user, assistant }
        public var messages: [String]
        public var roleKey = "role"
        public var contentKey = "content"
        /// Role names as they appear in data (compared case-insensitively) -> role.
        public var roles: [String: Role] = Chat.defaultRoles
        public static let defaultRoles: [String: Role] = [
            "system": .system, "user": .user, "human": .user, "prompter": .user,
            "assistant": .assistant, "gpt": .assistant, "bot": .assistant, "model": .assistant, "chatgpt": .assistant,
        ]
        public init(messages: [String]) { self.messages = messages }
    }

    public var prompt: Value?
    public var response: Value?
    public var system: Value?
    public var text: Value?
    public var chat: Chat?
    /// Row-per-turn sources (`group_by`): see `TurnGroup`.
    public var group: TurnGroup?

    public init(prompt: Value? = nil, response: Value? = nil, system: Value? = nil, text: Value? = nil, chat: Chat? = nil, group: TurnGroup? = nil) {
        self.prompt = prompt; self.response = response; self.system = system; self.text = text; self.chat = chat; self.group = group
    }

    /// The top-level keys the mapping reads (the first part of every field path): rows are
    /// parsed keeping only these (`JSONParser.parseRow(keeping:)`).
    public var topLevelKeys: Set<[UInt8]> {
        Set(fieldPaths.compactMap { $0.first.map { Array($0.utf8) } })
    }

    /// Every field path the mapping reads (chat lists and grouping included).
    public var fieldPaths: [[String]] {
        var paths: [[String]] = []
        for v in [prompt, response, system, text].compactMap({ $0 }) { paths += v.paths }
        if let chat { paths.append(chat.messages) }
        if let g = group {
            for v in [g.by, g.content, g.order, g.system, g.roleField].compactMap({ $0 }) { paths += v.paths }
        }
        return paths
    }

    /// The top-level keys of a mapping that reads only top-level fields into text or
    /// instruction records (no chat list, no grouping, no dotted paths): such rows can be
    /// mapped straight from the scanned line (`ScannedRow`). Nil otherwise.
    public var scanKeys: [String]? {
        guard chat == nil, group == nil else { return nil }
        var keys: [String] = []
        func add(_ parts: [Part]) -> Bool {
            for p in parts {
                switch p {
                case .field(let path):
                    guard path.count == 1 else { return false }
                    if !keys.contains(path[0]) { keys.append(path[0]) }
                case .optional(let inner): if !add(inner) { return false }
                case .literal: break
                }
            }
            return true
        }
        for v in [prompt, response, system, text].compactMap({ $0 }) {
            for path in v.paths {
                guard path.count == 1 else { return nil }
                if !keys.contains(path[0]) { keys.append(path[0]) }
            }
        }
        return keys
    }

    /// Builds a record from a row; throws `MappingError` saying which field is wrong.
    public func record(from row: JSONValue, source: Int32, file: Int32, line: Int) throws -> Record {
        guard case .object = row else { throw MappingError("row is \(row.kindName), expected an object") }
        if let chat { return try conversation(chat, row, source: source, file: file, line: line) }
        return try plainRecord(from: row, source: source, file: file, line: line)
    }

    /// A text or instruction record from any row (a parsed value or a scanned line).
    func plainRecord<R: RowFields>(from row: R, source: Int32, file: Int32, line: Int) throws -> Record {
        do {
            return try plainRecordKept(from: row, source: source, file: file, line: line)
        } catch let d as DropRow {
            // Filtered (counted under its reason), not a bad row.
            var r = Record(source: source, file: file, line: line, kind: .text)
            r.dropReason = d.reason
            return r
        }
    }

    func plainRecordKept<R: RowFields>(from row: R, source: Int32, file: Int32, line: Int) throws -> Record {
        if let text {
            return Record(source: source, file: file, line: line, kind: .text, text: try render(text, row))
        }
        guard let prompt, let response else { throw MappingError("map needs prompt and response, or text") }
        let sys = try system.map { try render($0, row) } ?? []
        return Record.instruction(source: source, file: file, line: line, system: sys,
                                  prompt: try render(prompt, row), response: try render(response, row))
    }

    /// A conversation from a chat list: leading system messages become the system
    /// prompt (joined by newlines; the map's `system`, if any, is the default), then user
    /// and assistant turns in order. A conversation needs an assistant turn to train on.
    func conversation(_ chat: Chat, _ row: JSONValue, source: Int32, file: Int32, line: Int) throws -> Record {
        var cur: JSONValue? = row
        for k in chat.messages { cur = cur?[k] }
        let name = chat.messages.joined(separator: ".")
        guard let list = cur else { throw MappingError("missing field '\(name)'") }
        guard case .array(let messages) = list else { throw MappingError("field '\(name)' is \(list.kindName), expected a list of messages") }
        var systemParts: [[UInt8]] = []
        var turns: [Record.Turn] = []
        for (k, m) in messages.enumerated() {
            guard case .object = m else { throw MappingError("message \(k) of '\(name)' is \(m.kindName), expected an object") }
            guard let roleValue = m[chat.roleKey] else { throw MappingError("message \(k) has no '\(chat.roleKey)'") }
            guard case .string(let roleBytes) = roleValue else { throw MappingError("message \(k): '\(chat.roleKey)' is \(roleValue.kindName), expected a string") }
            let roleName = String(decoding: roleBytes, as: UTF8.self)
            guard let role = chat.roles[roleName] ?? chat.roles[roleName.lowercased()] else {
                throw MappingError("message \(k): unknown role '\(roleName)' (map it in \"roles\")")
            }
            guard let contentValue = m[chat.contentKey] else { throw MappingError("message \(k) has no '\(chat.contentKey)'") }
            guard case .string(let content) = contentValue else {
                throw MappingError("message \(k): '\(chat.contentKey)' is \(contentValue.kindName), expected a string")
            }
            switch role {
            case .system:
                guard turns.isEmpty else { throw MappingError("message \(k): a system message after the conversation started") }
                systemParts.append(content)
            case .user: turns.append(Record.Turn(role: .user, content: content))
            case .assistant: turns.append(Record.Turn(role: .assistant, content: content))
            }
        }
        guard turns.contains(where: { $0.role == .assistant }) else { throw MappingError("conversation has no assistant turn") }
        var sys: [UInt8] = []
        if systemParts.isEmpty, let system { sys = try render(system, row) }
        for (k, part) in systemParts.enumerated() {
            if k > 0 { sys.append(0x0A) }
            sys.append(contentsOf: part)
        }
        return Record(source: source, file: file, line: line, kind: .conversation, system: sys, turns: turns)
    }

    func render<R: RowFields>(_ v: Value, _ row: R) throws -> [UInt8] {
        if let pick = v.pick { return Self.replaced(try choose(pick, row), v.replacements) }
        if !v.replacements.isEmpty {
            var plain = v
            plain.replacements = []
            return Self.replaced(try render(plain, row), v.replacements)
        }
        if v.parts.count == 1, case .literal(let l) = v.parts[0] { return l }
        // A bare string field is shared with the row (no copy): Parquet and CSV values.
        if v.parts.count == 1, case .field(let path) = v.parts[0], let s = row.bareString(path) { return s }
        var out: [UInt8] = []
        // One allocation: the fields' raw lengths bound their text (escapes only shrink).
        var size = 0
        func measure(_ parts: [Part]) {
            for p in parts {
                switch p {
                case .literal(let l): size += l.count
                case .field(let path): size += row.rawLength(path)
                case .optional(let inner): measure(inner)
                }
            }
        }
        measure(v.parts)
        out.reserveCapacity(size)
        try render(v.parts, row, into: &out)
        return out
    }

    /// The choice `pick.by` names, if its requirement holds; else the row is dropped.
    func choose<R: RowFields>(_ pick: Value.Pick, _ row: R) throws -> [UInt8] {
        var key: [UInt8] = []
        try row.appendField(pick.by, into: &key)
        let name = pick.by.joined(separator: ".")
        guard let k = Int(String(decoding: key, as: UTF8.self)), k >= 0, k < pick.choices.count else {
            throw MappingError("field '\(name)' is '\(String(decoding: key, as: UTF8.self))', expected a number from 0 to \(pick.choices.count - 1) to pick one of \(pick.choices.count)")
        }
        if let require = pick.require {
            var flag: [UInt8] = []
            try row.appendField(require[k], into: &flag)
            // Booleans render as true/false; CSV and pandas exports write True/False or 1/0.
            let yes: Set<String> = ["true", "True", "TRUE", "1"], no: Set<String> = ["false", "False", "FALSE", "0"]
            let text = String(decoding: flag, as: UTF8.self)
            if no.contains(text) { throw DropRow(reason: pick.reason) }
            guard yes.contains(text) else {
                throw MappingError("field '\(require[k].joined(separator: "."))' is '\(text)', expected true or false")
            }
        }
        return try render(pick.choices[k], row)
    }

    /// `text` with each replacement applied in turn (every occurrence, left to right).
    static func replaced(_ text: [UInt8], _ replacements: [Value.Replacement]) -> [UInt8] {
        var t = text
        for r in replacements where !r.from.isEmpty {
            var out: [UInt8] = []
            out.reserveCapacity(t.count)
            var i = 0
            while i < t.count {
                if t[i] == r.from[0] && i + r.from.count <= t.count && t[i..<(i + r.from.count)].elementsEqual(r.from) {
                    out.append(contentsOf: r.to); i += r.from.count
                } else {
                    out.append(t[i]); i += 1
                }
            }
            t = out
        }
        return t
    }

    /// Appends the parts; returns false when a field rendered empty (for optional sections).
    @discardableResult
    func render<R: RowFields>(_ parts: [Part], _ row: R, into out: inout [UInt8]) throws -> Bool {
        var allFilled = true
        for p in parts {
            switch p {
            case .literal(let l): out.append(contentsOf: l)
            case .optional(let inner):
                var section: [UInt8] = []
                if try render(inner, row, into: &section) { out.append(contentsOf: section) }
            case .field(let path):
                let before = out.count
                defer { if out.count == before { allFilled = false } }
                try row.appendField(path, into: &out)
            }
        }
        return allFilled
    }
}

/// Where `render` finds fields: a parsed row (`JSONValue`) or a line scanned in place
/// (`ScannedRow`).
protocol RowFields {
    /// Appends the text of the field at `path`: strings as they are, numbers as written,
    /// booleans as `true`/`false`, null as nothing. Throws `MappingError` when it is
    /// missing or is a list or an object.
    func appendField(_ path: [String], into out: inout [UInt8]) throws
    /// An upper bound of the field's text length when cheaply known, else 0.
    func rawLength(_ path: [String]) -> Int
    /// The field's bytes when it is a string the row already holds as an array, else nil.
    func bareString(_ path: [String]) -> [UInt8]?
}

extension JSONValue: RowFields {
    func rawLength(_ path: [String]) -> Int { 0 }

    func bareString(_ path: [String]) -> [UInt8]? {
        var cur: JSONValue? = self
        for k in path { cur = cur?[k] }
        if case .string(let s)? = cur { return s }
        return nil
    }

    func appendField(_ path: [String], into out: inout [UInt8]) throws {
        var cur: JSONValue? = self
        for k in path { cur = cur?[k] }
        guard let value = cur else { throw MappingError("missing field '\(path.joined(separator: "."))'") }
        switch value {
        case .string(let s): out.append(contentsOf: s)
        case .number(let n): out.append(contentsOf: n)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .null: break
        case .array, .object:
            throw MappingError("field '\(path.joined(separator: "."))' is \(value.kindName), expected a string")
        }
    }
}

/// A row the mapping drops on purpose (a pick's requirement failed): filtered and counted
/// under `reason`, not a bad row.
struct DropRow: Error { var reason: String }

public struct MappingError: Error, Sendable {
    public var message: String
    public init(_ m: String) { message = m }
}
