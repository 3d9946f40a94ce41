import TokenmillCore

/// Reads a tiktoken ranks file: one `BASE64 RANK` pair a line (the format of
/// `openaipublic/encodings/*.tiktoken`). Ranks are unique; holes are allowed.
enum TiktokenFile {
    /// Line-aligned pieces of the file are decoded on `threads` workers; the ranks are then
    /// placed in file order, so errors (and the first of two lines giving one rank) are
    /// reported exactly as a one-pass reader would.
    static func parse(_ data: [UInt8], path: String, threads: Int = 1) throws -> [[UInt8]?] {
        let n = data.count
        let pieces = max(1, min(threads, n / 65_536))
        var cuts = [0]
        for k in 1..<pieces {
            var c = max(cuts[k - 1], n * k / pieces)
            while c < n && data[c] != 0x0A { c += 1 }
            cuts.append(min(n, c + 1))
        }
        cuts.append(n)
        struct Piece {
            var entries: [(rank: Int, token: [UInt8], line: Int)] = []
            var lines = 0
            var error: (line: Int, message: String)?
        }
        let parsed = try data.withUnsafeBufferPointer { buf in
            try parallelBatches(count: pieces, threads: threads, batchSize: 1) { range -> Piece in
                var piece = Piece()
                var i = cuts[range.lowerBound]
                let end = cuts[range.lowerBound + 1]
                while i < end {
                    piece.lines += 1
                    var e = i
                    while e < end && buf[e] != 0x0A { e += 1 }
                    var lineEnd = e
                    if lineEnd > i && buf[lineEnd - 1] == 0x0D { lineEnd -= 1 }
                    if lineEnd > i {
                        var space = i
                        while space < lineEnd && buf[space] != 0x20 { space += 1 }
                        guard space < lineEnd else { piece.error = (piece.lines, "expected 'BASE64 RANK'"); break }
                        guard let token = Base64.decode(data[i..<space]) else { piece.error = (piece.lines, "invalid base64 token"); break }
                        var rank = 0, digits = 0
                        for k in (space + 1)..<lineEnd {
                            let d = Int(buf[k]) &- 0x30
                            guard d >= 0 && d <= 9 && digits < 8 else { digits = -1; break }
                            rank = rank * 10 + d; digits += 1
                        }
                        guard digits > 0, rank < 10_000_000 else { piece.error = (piece.lines, "invalid rank"); break }
                        piece.entries.append((rank, token, piece.lines))
                    }
                    i = e + 1
                }
                return piece
            }
        }
        var tokens: [[UInt8]?] = []
        var before = 0
        for piece in parsed {
            for (rank, token, line) in piece.entries {
                if rank >= tokens.count { tokens.append(contentsOf: repeatElement(nil, count: rank + 1 - tokens.count)) }
                if tokens[rank] != nil { throw TokenmillError.badInput(path: path, line: before + line, message: "rank \(rank) given twice") }
                tokens[rank] = token
            }
            if let (line, message) = piece.error { throw TokenmillError.badInput(path: path, line: before + line, message: message) }
            before += piece.lines
        }
        // Ranks may have holes where special tokens sit (p50k_base has no rank 50256).
        return tokens
    }
}
