/// A parsed JSON value. Strings hold UTF-8 bytes (already unescaped and valid); numbers
/// keep their source text so `{field}` templates render them exactly as written.
///
/// Objects keep their members in source order; lookups are linear, which beats hashing for
/// the handful of fields an instruction record has.
public indirect enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case number([UInt8])
    case string([UInt8])
    case array([JSONValue])
    case object([JSONMember])

    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        let k = Array(key.utf8)
        for m in members where m.key == k { return m.value }
        return nil
    }

    public var stringValue: String? {
        if case .string(let b) = self { return String(decoding: b, as: UTF8.self) }
        return nil
    }

    public var doubleValue: Double? {
        if case .number(let b) = self { return Double(String(decoding: b, as: UTF8.self)) }
        return nil
    }

    public var intValue: Int? {
        if case .number(let b) = self { return Int(String(decoding: b, as: UTF8.self)) }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var objectValue: [JSONMember]? {
        if case .object(let m) = self { return m }
        return nil
    }

    /// A word for error messages: "a string", "an object", ...
    public var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

public struct JSONMember: Equatable, Sendable {
    public var key: [UInt8]
    public var value: JSONValue
    public var keyString: String { String(decoding: key, as: UTF8.self) }
    public init(key: [UInt8], value: JSONValue) { self.key = key; self.value = value }
}
