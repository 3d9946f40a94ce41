import TokenmillCore

/// Reads a tiktoken ranks file: one `BASE64 RANK` pair a line (the format of
/// `openaipublic/encodings/*.tiktoken`). Ranks are unique; holes are allowed.
enum TiktokenFile {
    static func parse(_ data: [UInt8], path: String) throws -> [[UInt8]?] {
        var tokens: [[UInt8]?] = []
        var line = 0
        var i = 0
        let n = data.count
        while i < n {
            line += 1
            var e = i
            while e < n && data[e] != 0x0A { e += 1 }
            var lineEnd = e
            if lineEnd > i && data[lineEnd - 1] == 0x0D { lineEnd -= 1 }
            if lineEnd > i {
                guard let space = data[i..<lineEnd].firstIndex(of: 0x20) else {
                    throw TokenmillError.badInput(path: path, line: line, message: "expected 'BASE64 RANK'")
                }
                guard let token = Base64.decode(data[i..<space]) else {
                    throw TokenmillError.badInput(path: path, line: line, message: "invalid base64 token")
                }
                guard let rank = Int(String(decoding: data[(space + 1)..<lineEnd], as: UTF8.self)), rank >= 0, rank < 10_000_000 else {
                    throw TokenmillError.badInput(path: path, line: line, message: "invalid rank")
                }
                if rank >= tokens.count { tokens.append(contentsOf: repeatElement(nil, count: rank + 1 - tokens.count)) }
                if tokens[rank] != nil { throw TokenmillError.badInput(path: path, line: line, message: "rank \(rank) given twice") }
                tokens[rank] = token
            }
            i = e + 1
        }
        // Ranks may have holes where special tokens sit (p50k_base has no rank 50256).
        return tokens
    }
}

/// Standard base64 (RFC 4648, with padding).
enum Base64 {
    static let table: [UInt8] = {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() { t[Int(c)] = UInt8(i) }
        return t
    }()

    static func decode(_ s: ArraySlice<UInt8>) -> [UInt8]? {
        var out: [UInt8] = []
        var acc: UInt32 = 0, bits = 0
        var padding = 0
        for c in s {
            if c == UInt8(ascii: "=") { padding += 1; continue }
            if padding > 0 { return nil }
            let v = table[Int(c)]
            if v == 0xFF { return nil }
            acc = acc << 6 | UInt32(v); bits += 6
            if bits >= 8 { bits -= 8; out.append(UInt8((acc >> UInt32(bits)) & 0xFF)) }
        }
        if (s.count % 4) != 0 || padding > 2 { return nil }
        return out
    }

    static func encode(_ b: [UInt8]) -> String {
        let chars = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        var i = 0
        while i + 3 <= b.count {
            let v = UInt32(b[i]) << 16 | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2])
            for s in [18, 12, 6, 0] { out.append(chars[Int((v >> UInt32(s)) & 63)]) }
            i += 3
        }
        let rest = b.count - i
        if rest > 0 {
            var v = UInt32(b[i]) << 16
            if rest == 2 { v |= UInt32(b[i + 1]) << 8 }
            out.append(chars[Int((v >> 18) & 63)]); out.append(chars[Int((v >> 12) & 63)])
            out.append(rest == 2 ? chars[Int((v >> 6) & 63)] : UInt8(ascii: "="))
            out.append(UInt8(ascii: "="))
        }
        return String(decoding: out, as: UTF8.self)
    }
}
