import TokenmillCore

/// datatrove's tokenized files, as its `DocumentTokenizer` (`TokenizedFile`) writes them
/// and `DatatroveFileDataset` / `DatatroveFolderDataset` read them (docs/EXPORT.md):
/// `NAME.ds` the token ids back to back (uint16, or uint32 above 65,536 ids: datatrove's
/// token_size), `NAME.ds.index` the end of every document in tokens (uint64, cumulative),
/// `NAME.ds.loss` one byte (0/1) a token, `NAME.ds.metadata` three lines: the tokenizer
/// and token size (`name|2`), the token count, and the count as `humanize.metric` prints
/// it. A split is a folder of its own, so a folder dataset reads one split.
///
/// datatrove's reader cuts the stream into windows of seq_len + 1 tokens whatever the
/// documents; the index gives them their positions. With `--unit sequence` the stored
/// documents are listed (a padded sequence's padding is a document there, as in
/// Tokenmill's reader); with `--unit document` every document is.
final class DatatroveWriter: PositionedWriter {
    let name: String
    let tokenizer: String
    let width: Int
    let tokens: OutputFile
    let loss: OutputFile
    var ends: [UInt64] = []
    var count = 0

    init(folder: String, name: String, tokenizer: String, tokenWidth: Int) throws {
        try FileSystem.makeDirectories(folder)
        self.name = FileSystem.join(folder, name + ".ds")
        self.tokenizer = tokenizer
        width = tokenWidth
        tokens = try OutputFile(self.name)
        loss = try OutputFile(self.name + ".loss")
    }

    /// The batch's document ends, in order; returns where its tokens go (in tokens).
    func place(_ b: SampleBatch) throws -> Int {
        guard b.tokens.count == b.loss.count else { throw TokenmillError.corrupt(path: name, message: "tokens and loss flags differ in count") }
        // Document ends: each document start after the batch's first, then each sample's end
        // (documents never cross samples).
        var d = 0
        for k in 0..<b.count {
            let r = b.range(k)
            while d < b.documentStarts.count && b.documentStarts[d] <= r.lowerBound { d += 1 }
            while d < b.documentStarts.count && b.documentStarts[d] < r.upperBound {
                ends.append(UInt64(count + b.documentStarts[d])); d += 1
            }
            ends.append(UInt64(count + r.upperBound))
        }
        let at = count
        count += b.tokens.count
        _ = tokens.reserve(b.tokens.count * width)
        _ = loss.reserve(b.tokens.count)
        return at
    }

    var positionedFiles: [OutputFile] { [tokens, loss] }

    func write(_ b: SampleBatch, at token: Int) throws {
        try tokens.writeTokens(b.tokens, width: width, at: token * width)
        try b.loss.withUnsafeBytes { try loss.write($0, at: token) }
    }

    /// `humanize.metric(n, unit="T")` for a count, as Python prints it: n / 10^(3k) as a
    /// double, with 3 significant digits, correctly rounded from the double's binary value
    /// (so 9995 gives "9.99 kT", as Python's format does), and an SI prefix.
    static func humanized(_ n: Int) -> String {
        var exponent = n > 0 ? String(n).count - 1 : 0
        let bucket = exponent / 3 * 3
        var scale = 1.0
        for _ in 0..<bucket { scale *= 10 }
        var value = Double(n) / scale
        var digits = max(0, 2 - exponent % 3)
        if n > 0, roundedScaled(value, digits: digits) >= pow10(exponent % 3 + 1 + digits) {
            // A rounding carry (9.999 -> 10.0) moves to the next power of ten.
            exponent += 1
            let next = exponent / 3 * 3
            if next != bucket { value /= 1000 }
            digits = max(0, 2 - exponent % 3)
        }
        let q = roundedScaled(value, digits: digits)
        var text = String(q)
        if digits > 0 {
            while text.count <= digits { text = "0" + text }
            text.insert(".", at: text.index(text.endIndex, offsetBy: -digits))
        }
        let prefix = exponent >= 3 ? String(Array("kMGTPEZYRQ")[exponent / 3 - 1]) : ""
        return text + " " + prefix + "T"
    }

    static func pow10(_ k: Int) -> UInt64 { var p: UInt64 = 1; for _ in 0..<k { p *= 10 }; return p }

    /// round(x * 10^digits) of a non-negative double, computed exactly from its binary
    /// value (half to even on an exact tie), as Python's `format(x, ".Nf")` rounds.
    static func roundedScaled(_ x: Double, digits: Int) -> UInt64 {
        if x == 0 { return 0 }
        let m = x.significandBitPattern | (x.isNormal ? 1 << 52 : 0)
        let e = Int(x.exponent) - 52   // x = m * 2^e
        let product = m * pow10(digits)   // < 2^60: m < 2^53, 10^digits <= 100
        if e >= 0 { return product << UInt64(e) }
        let shift = -e
        if shift >= 64 { return 0 }
        let q = product >> UInt64(shift)
        let rem = product & ((1 << UInt64(shift)) - 1)
        let half: UInt64 = 1 << UInt64(shift - 1)
        return rem > half || (rem == half && q & 1 == 1) ? q + 1 : q
    }

    func finish() throws -> Int {
        let index = try OutputFile(name + ".index")
        try index.write(ends, width: 8)
        let meta = try OutputFile(name + ".metadata")
        try meta.write(Array("\(tokenizer)|\(width)\n\(count)\n\(Self.humanized(count))".utf8))
        try tokens.commit(); try loss.commit(); try index.commit(); try meta.commit()
        return tokens.size + loss.size + index.size + meta.size
    }
}
