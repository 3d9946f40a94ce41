import TokenmillCore

/// How a raw row becomes a record (DESIGN.md `map`).
///
/// A value is a field name (`"prompt"`, or a dotted path `"meta.title"`) or a template
/// with `{field}` placeholders (`"{instruction}\n\n{input}"`, `{a.b}` for nested
/// fields). `{{` and `}}` are literal braces. Fields may be strings, numbers (rendered as
/// written), booleans or null (rendered empty); objects and arrays are refused.
public struct FieldMapping: Sendable {
    public enum Part: Sendable, Equatable { case literal([UInt8]), field([String]) }

    public struct Value: Sendable, Equatable {
        public var parts: [Part]
        /// A bare field name: a missing field is an error. In a template, too.
        public static func parse(_ s: String) throws -> Value {
            if !s.contains("{") && !s.contains("}") { return Value(parts: [.field(s.split(separator: ".", omittingEmptySubsequences: false).map(String.init))]) }
            var parts: [Part] = []
            var lit: [UInt8] = []
            let b = Array(s.utf8)
            var i = 0
            while i < b.count {
                let c = b[i]
                if c == UInt8(ascii: "{") && i + 1 < b.count && b[i + 1] == UInt8(ascii: "{") { lit.append(c); i += 2; continue }
                if c == UInt8(ascii: "}") && i + 1 < b.count && b[i + 1] == UInt8(ascii: "}") { lit.append(c); i += 2; continue }
                if c == UInt8(ascii: "}") { throw MappingError("unmatched '}' in template \"\(s)\" (write '}}' for a literal brace)") }
                if c == UInt8(ascii: "{") {
                    guard let close = b[(i + 1)...].firstIndex(of: UInt8(ascii: "}")) else {
                        throw MappingError("unclosed '{' in template \"\(s)\"")
                    }
                    let name = String(decoding: b[(i + 1)..<close], as: UTF8.self)
                    if name.isEmpty || name.contains("{") { throw MappingError("empty or nested field name in template \"\(s)\"") }
                    if !lit.isEmpty { parts.append(.literal(lit)); lit = [] }
                    parts.append(.field(name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)))
                    i = close + 1
                    continue
                }
                lit.append(c); i += 1
            }
            if !lit.isEmpty { parts.append(.literal(lit)) }
            return Value(parts: parts)
        }
    }

    public var prompt: Value?
    public var response: Value?
    public var system: Value?
    public var text: Value?

    public init(prompt: Value? = nil, response: Value? = nil, system: Value? = nil, text: Value? = nil) {
        self.prompt = prompt; self.response = response; self.system = system; self.text = text
    }

    /// Builds a record from a row; throws `MappingError` saying which field is wrong.
    public func record(from row: JSONValue, source: Int32, file: Int32, line: Int) throws -> Record {
        guard case .object = row else { throw MappingError("row is \(row.kindName), expected an object") }
        if let text {
            return Record(source: source, file: file, line: line, kind: .text, text: try render(text, row))
        }
        guard let prompt, let response else { throw MappingError("map needs prompt and response, or text") }
        let sys = try system.map { try render($0, row) } ?? []
        return Record.instruction(source: source, file: file, line: line, system: sys,
                                  prompt: try render(prompt, row), response: try render(response, row))
    }

    func render(_ v: Value, _ row: JSONValue) throws -> [UInt8] {
        if v.parts.count == 1, case .literal(let l) = v.parts[0] { return l }
        var out: [UInt8] = []
        for p in v.parts {
            switch p {
            case .literal(let l): out.append(contentsOf: l)
            case .field(let path):
                var cur: JSONValue? = row
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
        return out
    }
}

public struct MappingError: Error, Sendable {
    public var message: String
    public init(_ m: String) { message = m }
}
