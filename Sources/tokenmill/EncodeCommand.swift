import BPE
import TokenmillCore

/// `tokenmill encode --tokenizer T [--field F] [--threads N] [FILE|-]`: one JSON array of
/// ids per input line, in input order whatever the thread count. Lines split at `\n`
/// only; invalid UTF-8 is replaced with U+FFFD (tiktoken only sees valid text).
enum EncodeCommand {
    static let usage = "tokenmill encode --tokenizer T [--field F] [--threads N] [--allowed-special all|TOKEN,...] [FILE|-]"

    static func run(_ args: ArraySlice<String>) throws {
        let a = try Arguments(args, valued: ["--tokenizer", "--field", "--threads", "--allowed-special"], flags: [])
        guard let tk = a.options["--tokenizer"] else { throw TokenmillError.usage("encode needs --tokenizer (\(usage))") }
        guard a.positionals.count <= 1 else { throw TokenmillError.usage(usage) }
        let threads = try a.int("--threads", default: activeProcessorCount, min: 1)
        let tokenizer = try TokenizerLoader.load(tk, threads: threads)
        // Special tokens in the text stay text unless named here (tiktoken's allowed_special).
        var allowed: [(bytes: [UInt8], id: UInt32)] = []
        if let list = a.options["--allowed-special"] {
            let names = list == "all" ? tokenizer.specialTokens.map(\.text) : list.split(separator: ",").map(String.init)
            for name in names {
                guard let id = tokenizer.specialID(name) else {
                    throw TokenmillError.usage("--allowed-special: \(name) is not a special token of \(tokenizer.name) (it has: \(tokenizer.specialTokens.map(\.text).joined(separator: ", ")))")
                }
                allowed.append((Array(name.utf8), id))
            }
        }
        let path = a.positionals.first ?? "-"
        let input = try readInput(path)
        let field = a.options["--field"]
        let lines = splitLines(input)
        let batches: [([UInt8], Int)] = try input.withUnsafeBufferPointer { buf in
            try parallelBatches(count: lines.count, threads: threads, batchSize: 256) { range -> ([UInt8], Int) in
                var enc = tokenizer.makeEncoder()
                var ids: [UInt32] = []
                var out: [UInt8] = []
                for li in range {
                    let (s, e) = lines[li]
                    ids.removeAll(keepingCapacity: true)
                    let slice = UnsafeBufferPointer(rebasing: buf[s..<e])
                    if let field {
                        let text = try fieldText(slice, field: field, path: path, line: li + 1)
                        text.withUnsafeBufferPointer { enc.encode($0, allowedSpecial: allowed, into: &ids) }
                    } else if let fixed = UTF8Validation.repaired(slice) {
                        fixed.withUnsafeBufferPointer { enc.encode($0, allowedSpecial: allowed, into: &ids) }
                    } else {
                        enc.encode(slice, allowedSpecial: allowed, into: &ids)
                    }
                    appendIDs(&out, ids)
                }
                return (out, enc.droppedBytes)
            }
        }
        for (o, _) in batches { o.withUnsafeBytes { FileSystem.writeStdout($0) } }
        // `tokenizers` drops a byte its vocabulary has no token for; so does encode, and
        // says how many it dropped.
        let dropped = batches.reduce(0) { $0 + $1.1 }
        if dropped > 0 { FileSystem.writeStderr("tokenmill: dropped \(dropped) byte\(dropped == 1 ? "" : "s") that \(tokenizer.name) has no token for (as the tokenizers library does)") }
    }

    static func fieldText(_ line: UnsafeBufferPointer<UInt8>, field: String, path: String, line lineNo: Int) throws -> [UInt8] {
        let value: JSONValue
        do { value = try JSONParser.parse(Array(line)) } catch {
            throw TokenmillError.badInput(path: path, line: lineNo, message: "invalid JSON: \(error.message)")
        }
        guard let v = value[field] else { throw TokenmillError.badInput(path: path, line: lineNo, message: "missing field '\(field)'") }
        guard case .string(let s) = v else {
            throw TokenmillError.badInput(path: path, line: lineNo, message: "field '\(field)' is \(v.kindName), expected a string")
        }
        return s
    }

    static func appendIDs(_ out: inout [UInt8], _ ids: [UInt32]) {
        out.append(UInt8(ascii: "["))
        for (i, id) in ids.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            appendDecimal(&out, id)
        }
        out.append(UInt8(ascii: "]"))
        out.append(0x0A)
    }

    @inline(__always)
    static func appendDecimal(_ out: inout [UInt8], _ v: UInt32) {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        var x = v
        withUnsafeMutableBytes(of: &digits) { d in
            repeat { d[n] = UInt8(ascii: "0") + UInt8(x % 10); x /= 10; n += 1 } while x > 0
            while n > 0 { n -= 1; out.append(d[n]) }
        }
    }

    /// Line ranges split at `\n` (a final line without `\n` counts; a trailing `\n` does
    /// not start another line).
    static func splitLines(_ b: [UInt8]) -> [(Int, Int)] {
        var lines: [(Int, Int)] = []
        var s = 0
        b.withUnsafeBufferPointer { p in
            for i in 0..<p.count where p[i] == 0x0A {
                lines.append((s, i)); s = i + 1
            }
        }
        if s < b.count { lines.append((s, b.count)) }
        return lines
    }

    static func readInput(_ path: String) throws -> [UInt8] {
        path == "-" ? try FileSystem.readFile("/dev/stdin") : try FileSystem.readFile(path)
    }
}

/// `tokenmill decode --tokenizer T [FILE|-]`: one JSON array of ids a line in, the text
/// out (one line per array, `\n` after each).
enum DecodeCommand {
    static func run(_ args: ArraySlice<String>) throws {
        let a = try Arguments(args, valued: ["--tokenizer"], flags: [])
        guard let tk = a.options["--tokenizer"] else { throw TokenmillError.usage("decode needs --tokenizer") }
        let tokenizer = try TokenizerLoader.load(tk)
        let path = a.positionals.first ?? "-"
        let input = try EncodeCommand.readInput(path)
        var out: [UInt8] = []
        for (n, (s, e)) in EncodeCommand.splitLines(input).enumerated() {
            let value: JSONValue
            do { value = try JSONParser.parse(Array(input[s..<e])) } catch {
                throw TokenmillError.badInput(path: path, line: n + 1, message: "expected a JSON array of ids: \(error.message)")
            }
            guard let items = value.arrayValue else { throw TokenmillError.badInput(path: path, line: n + 1, message: "expected a JSON array of ids") }
            var ids: [UInt32] = []
            for item in items {
                guard let v = item.intValue, v >= 0, v <= Int(UInt32.max) else {
                    throw TokenmillError.badInput(path: path, line: n + 1, message: "ids must be non-negative integers")
                }
                ids.append(UInt32(v))
            }
            do { out.append(contentsOf: try tokenizer.decode(ids)) } catch let e as TokenmillError {
                if case .badInput(_, _, let m) = e { throw TokenmillError.badInput(path: path, line: n + 1, message: m) }
                throw e
            }
            out.append(0x0A)
        }
        out.withUnsafeBytes { FileSystem.writeStdout($0) }
    }
}
