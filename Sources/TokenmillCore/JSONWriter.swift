/// Builds compact or indented JSON text as bytes, keys in the order written, so output
/// files are byte-identical from run to run.
public struct JSONWriter {
    public private(set) var bytes: [UInt8] = []
    public init() {}

    public mutating func raw(_ s: String) { bytes.append(contentsOf: s.utf8) }

    public mutating func string(_ s: String) { Self.appendEscaped(&bytes, Array(s.utf8)) }
    public mutating func string(bytes b: [UInt8]) { Self.appendEscaped(&bytes, b) }

    /// Escapes per RFC 8259: quote, backslash and control characters; everything else
    /// (valid UTF-8) is copied.
    public static func appendEscaped(_ out: inout [UInt8], _ s: [UInt8]) {
        out.append(0x22)
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        for c in s {
            switch c {
            case 0x22: out.append(0x5C); out.append(0x22)
            case 0x5C: out.append(0x5C); out.append(0x5C)
            case 0x0A: out.append(0x5C); out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(0x5C); out.append(UInt8(ascii: "r"))
            case 0x09: out.append(0x5C); out.append(UInt8(ascii: "t"))
            case 0..<0x20:
                out.append(contentsOf: Array("\\u00".utf8))
                out.append(hex[Int(c >> 4)]); out.append(hex[Int(c & 15)])
            default: out.append(c)
            }
        }
        out.append(0x22)
    }

    public static func quoted(_ s: String) -> String {
        var out: [UInt8] = []
        appendEscaped(&out, Array(s.utf8))
        return String(decoding: out, as: UTF8.self)
    }
}

/// An ordered JSON document tree for our own output files (index.json, report.json).
public indirect enum JSONOut {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONOut])
    case object([(String, JSONOut)])

    /// Pretty-printed with two-space indents; small arrays of scalars stay on one line.
    public func render(indent: Int = 0) -> String {
        var w = JSONWriter()
        write(into: &w, indent: indent, pretty: true)
        return String(decoding: w.bytes, as: UTF8.self)
    }

    public func renderCompact() -> String {
        var w = JSONWriter()
        write(into: &w, indent: 0, pretty: false)
        return String(decoding: w.bytes, as: UTF8.self)
    }

    func write(into w: inout JSONWriter, indent: Int, pretty: Bool) {
        switch self {
        case .null: w.raw("null")
        case .bool(let b): w.raw(b ? "true" : "false")
        case .int(let i): w.raw(String(i))
        case .double(let d):
            if d.isFinite { w.raw(d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(d)) } else { w.raw("null") }
        case .string(let s): w.string(s)
        case .array(let items):
            if items.isEmpty { w.raw("[]"); return }
            let flat = !pretty || items.allSatisfy { if case .object = $0 { return false }; if case .array = $0 { return false }; return true }
            w.raw("[")
            for (i, item) in items.enumerated() {
                if i > 0 { w.raw(flat ? (pretty ? ", " : ",") : ",") }
                if !flat { w.raw("\n" + String(repeating: "  ", count: indent + 1)) }
                item.write(into: &w, indent: indent + 1, pretty: pretty)
            }
            if !flat { w.raw("\n" + String(repeating: "  ", count: indent)) }
            w.raw("]")
        case .object(let members):
            if members.isEmpty { w.raw("{}"); return }
            w.raw("{")
            for (i, (k, v)) in members.enumerated() {
                if i > 0 { w.raw(",") }
                if pretty { w.raw("\n" + String(repeating: "  ", count: indent + 1)) }
                w.string(k)
                w.raw(pretty ? ": " : ":")
                v.write(into: &w, indent: indent + 1, pretty: pretty)
            }
            if pretty { w.raw("\n" + String(repeating: "  ", count: indent)) }
            w.raw("}")
        }
    }
}

extension JSONOut {
    /// A parsed value written back (markers carry results from one stage to the report).
    public init(_ v: JSONValue) {
        switch v {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .number(let t):
            let s = String(decoding: t, as: UTF8.self)
            if let i = Int(s) { self = .int(i) } else { self = .double(Double(s) ?? 0) }
        case .string(let b): self = .string(String(decoding: b, as: UTF8.self))
        case .array(let items): self = .array(items.map(JSONOut.init))
        case .object(let members): self = .object(members.map { ($0.keyString, JSONOut($0.value)) })
        }
    }
}
