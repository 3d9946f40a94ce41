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
