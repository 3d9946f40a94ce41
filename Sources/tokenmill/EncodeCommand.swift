#if canImport(Glibc)
import Glibc
#endif
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
        let field = a.options["--field"]
        let writer = OrderedWriter()
        var st = stat()
        if path != "-" && stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG {
            try encodeMapped(path, threads: threads, writer: writer) { base, count, lineNumber in
                try encodeChunk(base, count, tokenizer: tokenizer, field: field, allowed: allowed, path: path, lineNumber: lineNumber)
            }
        } else {
            try encodeStream(path, threads: threads, writer: writer) { base, count, lineNumber in
                try encodeChunk(base, count, tokenizer: tokenizer, field: field, allowed: allowed, path: path, lineNumber: lineNumber)
            }
        }
        // `tokenizers` drops a byte its vocabulary has no token for; so does encode, and
        // says how many it dropped.
        let dropped = writer.dropped
        if dropped > 0 { FileSystem.writeStderr("tokenmill: dropped \(dropped) byte\(dropped == 1 ? "" : "s") that \(tokenizer.name) has no token for (as the tokenizers library does)") }
    }

    /// Encodes one chunk: its bytes (whole lines), a line's number in the whole input from
    /// its index in the chunk (asked only for an error) -> the JSON lines and the bytes
    /// dropped and the chunk's line count.
    typealias ChunkEncoder = (UnsafePointer<UInt8>, Int, (Int) -> Int) throws -> (json: [UInt8], dropped: Int, lines: Int)

    /// A regular file, mapped: workers take chunks of ~64 KB of whole lines from a shared
    /// cursor, in input order, for as long as there are any (no barrier anywhere), and hand
    /// each chunk's JSON to the ordered writer; input pages are released once their chunk
    /// is written, so resident memory stays a few chunks whatever the file's size. After a
    /// bad line no new chunk is taken, and the error of the earliest chunk is the one
    /// reported (the first bad line in the input).
    static func encodeMapped(_ path: String, threads: Int, writer: OrderedWriter, _ encode: ChunkEncoder) throws {
        let file = try FileSystem.map(path, populate: false)
        guard let base = file.bytes.baseAddress else { return }
        let n = file.bytes.count
        let source = ChunkCursor(base, n)
        // Released a few MB at a time (the writer calls this under its writing turn only).
        var released = 0
        writer.written = { end in
            guard end - released >= 4 << 20 else { return }
            file.release(released..<end)
            released = end & ~4095
        }
        let failures = FirstFailure()
        _ = try parallelBatches(count: threads, threads: threads, batchSize: 1) { _ in
            while let (index, range) = source.next() {
                do {
                    let (out, dropped, _) = try encode(base + range.lowerBound, range.count) { k in 1 + countNewlines(base, range.lowerBound) + k }
                    writer.submit(index, out, dropped: dropped, end: range.upperBound)
                } catch {
                    failures.record(index, error)
                    source.stop()
                }
            }
        }
        // The chunks before a bad line are written before its error is reported, as they
        // were when each chunk was written on its own.
        try writer.finish()
        try failures.rethrow()
    }

    /// A pipe or stdin: blocks of whole lines read into one buffer (`BlockInput`), each
    /// block's chunks encoded on all workers before the next block is read.
    static func encodeStream(_ path: String, threads: Int, writer: OrderedWriter, _ encode: ChunkEncoder) throws {
        let input = try BlockInput(path)
        var firstLine = 1, chunkBase = 0
        do {
            while let (base, count) = try input.nextBlock() {
                let chunks = cutChunks(base, count)
                let lineCounts: [Int] = try parallelBatches(count: chunks.count, threads: threads, batchSize: 1) { r in
                    let c = chunks[r.lowerBound]
                    let (out, dropped, lines) = try encode(base + c.lowerBound, c.count) { k in firstLine + countNewlines(base, c.lowerBound) + k }
                    writer.submit(chunkBase + r.lowerBound, out, dropped: dropped, end: 0)
                    return lines
                }
                chunkBase += chunks.count
                firstLine += lineCounts.reduce(0, +)
            }
        } catch {
            // The chunks before the bad line are written before its error is reported.
            try? writer.finish()
            throw error
        }
        try writer.finish()
    }

    /// The error of the earliest chunk that failed.
    final class FirstFailure: @unchecked Sendable {
        let lock = NSLockLite()
        var first: (Int, Error)?
        func record(_ index: Int, _ error: Error) {
            lock.lock(); defer { lock.unlock() }
            if first == nil || index < first!.0 { first = (index, error) }
        }
        func rethrow() throws { if let (_, e) = first { throw e } }
    }

    /// Whole-line chunks of about `chunkSize` bytes (a longer line is a chunk of its own).
    static let chunkSize = 64 << 10

    static func cutChunks(_ base: UnsafePointer<UInt8>, _ n: Int) -> [Range<Int>] {
        var chunks: [Range<Int>] = []
        var s = 0
        while s < n {
            var e = min(n, s + chunkSize)
            if e < n, let nl = memchr(base + e - 1, 0x0A, n - e + 1) {
                e = UnsafeRawPointer(nl) - UnsafeRawPointer(base) + 1
            } else {
                e = n
            }
            chunks.append(s..<e)
            s = e
        }
        return chunks
    }

    static func countNewlines(_ base: UnsafePointer<UInt8>, _ n: Int) -> Int {
        var count = 0, s = 0
        while s < n, let nl = memchr(base + s, 0x0A, n - s) {
            count += 1
            s = UnsafeRawPointer(nl) - UnsafeRawPointer(base) + 1
        }
        return count
    }

    /// One chunk of lines: every line's ids into one flat array, then all of them written
    /// as JSON in one pass into an output buffer of exactly the size they need. Lines are
    /// found as they are read: a line of the common shape (`JSONParser.fieldLine`) ends
    /// where its JSON does, any other at the next `\n`.
    static func encodeChunk(_ buf: UnsafePointer<UInt8>, _ count: Int, tokenizer: Tokenizer, field: String?,
                            allowed: [(bytes: [UInt8], id: UInt32)], path: String,
                            lineNumber: (Int) -> Int) throws -> (json: [UInt8], dropped: Int, lines: Int) {
        var enc = tokenizer.makeEncoder()
        var ids: [UInt32] = []
        var ends: [Int] = []
        ends.reserveCapacity(count / 64 + 1)
        let scan = field.map { FieldScan($0) }
        let head = scan?.head
        // The plain path keeps the chunk's tokens in the encoder's buffer, read once by the
        // id writer (`encodeKeeping`); the others append to `ids` text by text.
        let kept = allowed.isEmpty && enc.keepsTokens
        var s = 0, k = 0
        // No closure or nested function touches `enc` or `ids` in this loop: variables
        // captured by one are boxed and checked for exclusive access at run time, one call
        // into the runtime a line.
        while s < count {
            var repaired: UnsafeMutableBufferPointer<UInt8>? = nil
            let text: UnsafeBufferPointer<UInt8>
            let e: Int
            if let head, let scan,
               let f = JSONParser.fieldLine(buf + s, available: count - s, head: UnsafeBufferPointer(head),
                                            scratch: scan.reserveScratch(count - s + 32)) {
                text = f.text
                e = s + f.lineEnd
            } else {
                e = memchr(buf + s, 0x0A, count - s).map { UnsafeRawPointer($0) - UnsafeRawPointer(buf) } ?? count
                let slice = UnsafeBufferPointer(start: buf + s, count: e - s)
                if let scan {
                    let line = k
                    text = try scan.text(slice, path: path, line: { lineNumber(line) })
                } else if let fixed = UTF8Validation.repaired(slice) {
                    let copy = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: fixed.count)
                    _ = copy.initialize(from: fixed)
                    repaired = copy
                    text = UnsafeBufferPointer(copy)
                } else {
                    text = slice
                }
            }
            if kept { enc.encodeKeeping(text) } else { enc.encode(text, allowedSpecial: allowed, into: &ids) }
            repaired?.deallocate()
            ends.append(kept ? enc.keptTokens.count : ids.count)
            s = e + 1
            k += 1
        }
        return (kept ? IDWriter.json(enc.keptTokens, lineEnds: ends) : IDWriter.json(ids, lineEnds: ends), enc.droppedBytes, k)
    }

    /// Writes chunks to stdout in chunk order, whichever worker finishes them: a chunk is
    /// handed on as soon as every chunk before it is (by the worker that completes the run),
    /// so no worker waits for the writing and nothing is held longer than needed. Chunks
    /// are written 256 KiB or more at a time (one `writev`): writes of one 64 KB chunk's ids
    /// each cost the page cache a third more than writes of 256 KB (`dd` of the same 18.6 MB
    /// of ids: 9.6 ms against 7.1). `finish()` writes the rest and reports a failed write.
    /// `written(end)` is told the input offset all written chunks end at.
    final class OrderedWriter: @unchecked Sendable {
        private let lock = NSLockLite()
        private var pending: [Int: ([UInt8], Int)] = [:]
        private var next = 0
        private var writing = false
        /// Chunks ready in order and not yet written, their bytes and input end.
        private var batch: [[UInt8]] = []
        private var batchBytes = 0
        private var batchEnd = 0
        /// The errno of the first failed write (nothing is written after it).
        private var failure: Int32 = 0
        private(set) var dropped = 0
        var written: ((Int) -> Void)?
        static let batchTarget = 256 << 10

        func submit(_ index: Int, _ bytes: [UInt8], dropped: Int, end: Int) {
            lock.lock()
            self.dropped += dropped
            pending[index] = (bytes, end)
            if writing { lock.unlock(); return }
            writing = true
            while let (out, end) = pending.removeValue(forKey: next) {
                next += 1
                batch.append(out); batchBytes += out.count; batchEnd = end
                if batchBytes >= OrderedWriter.batchTarget {
                    let parts = batch, e = batchEnd
                    batch = []; batchBytes = 0
                    lock.unlock()
                    write(parts, end: e)
                    lock.lock()
                }
            }
            writing = false
            lock.unlock()
        }

        /// Writes what is left once every chunk has been submitted.
        func finish() throws {
            lock.lock()
            let parts = batch, e = batchEnd
            batch = []; batchBytes = 0
            lock.unlock()
            write(parts, end: e)
            if failure != 0 {
                throw TokenmillError.io(path: "<stdout>", message: "cannot write the ids: \(String(cString: strerror(failure)))")
            }
        }

        /// Called by the holder of the writing turn (or by `finish`) only.
        private func write(_ parts: [[UInt8]], end: Int) {
            guard failure == 0, !parts.isEmpty else { return }
            failure = OrderedWriter.withBuffers(parts[...], []) { FileSystem.writeStdout(gathering: $0) }
            if failure == 0 { written?(end) }
        }

        /// `body` with the raw bytes of every array (each borrowed for the call).
        static func withBuffers(_ parts: ArraySlice<[UInt8]>, _ done: [UnsafeRawBufferPointer],
                                _ body: ([UnsafeRawBufferPointer]) -> Int32) -> Int32 {
            guard let first = parts.first else { return body(done) }
            return first.withUnsafeBytes { withBuffers(parts.dropFirst(), done + [$0], body) }
        }
    }

    /// The `--field` of a JSON line, scanned in place (`JSONParser.scanObject`: no value
    /// tree; a string without escapes used where it lies, one with escapes decoded once
    /// into scratch memory). A line the scan does not take
    /// (an escape in a key, a repeated key, a string needing UTF-8 repair, a value that is
    /// not a string, bad JSON) goes through the full parser, which gives the text or the
    /// exact error.
    final class FieldScan {
        let keys: [[UInt8]]
        let field: String
        let slot = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        let end = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        let inScratch = UnsafeMutablePointer<Bool>.allocate(capacity: 1)
        let inInput = UnsafeMutablePointer<Bool>.allocate(capacity: 1)
        /// The scratch memory and its capacity, behind a pointer rather than in `var`
        /// properties: a class's `var` is checked for exclusive access at run time on every
        /// read (two calls into the runtime a line, 3% of `encode`'s instructions).
        let scratchBox = UnsafeMutablePointer<(buffer: UnsafeMutablePointer<UInt8>, capacity: Int)>.allocate(capacity: 1)

        /// The field's name for the common line shape `{"field": "plain text"}`
        /// (`JSONParser.onlyStringMember`), or nil when the name holds a byte a JSON key
        /// cannot hold as it is (quote, backslash, control byte).
        let plainKey: UnsafeMutableBufferPointer<UInt8>?
        /// `{"field":`, the bytes that open a line of the shape `tm_jsonl_field_line`
        /// takes, where the name needs no escape (nil otherwise).
        let head: UnsafeMutableBufferPointer<UInt8>?

        init(_ field: String) {
            self.field = field
            keys = [Array(field.utf8)]
            scratchBox.initialize(to: (.allocate(capacity: 1 << 16), 1 << 16))
            if field.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x22 && $0 != 0x5C }) {
                let key = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: field.utf8.count)
                _ = key.initialize(from: field.utf8)
                plainKey = key
                let opening = Array("{\"".utf8) + Array(field.utf8) + Array("\":".utf8)
                let h = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: opening.count)
                _ = h.initialize(from: opening)
                head = h
            } else {
                plainKey = nil
                head = nil
            }
        }

        deinit {
            slot.deallocate(); end.deallocate(); inScratch.deallocate(); inInput.deallocate()
            scratchBox.pointee.buffer.deallocate(); scratchBox.deallocate(); plainKey?.deallocate(); head?.deallocate()
        }

        /// Room for `count` bytes of scratch.
        func reserveScratch(_ count: Int) -> UnsafeMutablePointer<UInt8> {
            if count > scratchBox.pointee.capacity {
                scratchBox.pointee.buffer.deallocate()
                let capacity = max(count, 2 * scratchBox.pointee.capacity)
                scratchBox.pointee = (.allocate(capacity: capacity), capacity)
            }
            return scratchBox.pointee.buffer
        }

        /// The field's text: in the line itself, or decoded into the scratch memory (valid
        /// until the next call).
        func text(_ line: UnsafeBufferPointer<UInt8>, path: String, line lineNo: () -> Int) throws -> UnsafeBufferPointer<UInt8> {
            // The common shape first, without the general object scan.
            if let key = plainKey, let (a, b) = JSONParser.onlyStringMember(line, key: UnsafeBufferPointer(key)) {
                return UnsafeBufferPointer(rebasing: line[a..<b])
            }
            let scratch = reserveScratch(line.count)
            var p = JSONParser(line)
            if (try? p.scanObject(keys: keys, into: slot, ends: end, inScratch: inScratch, scratch: scratch, inInput: inInput)) == true,
               slot[0] >= 0, inScratch[0] || inInput[0] {
                p.skipWhitespace()
                // A string without escapes is encoded where it lies in the input.
                if p.atEnd { return UnsafeBufferPointer(start: (inInput[0] ? line.baseAddress! : UnsafePointer(scratch)) + slot[0], count: end[0] - slot[0]) }
            }
            // The full parser: the text (repairs can make it longer than the line) or the error.
            let text = try EncodeCommand.fieldText(line, field: field, path: path, line: lineNo)
            let into = reserveScratch(text.count)
            text.withUnsafeBufferPointer { if let b = $0.baseAddress { into.update(from: b, count: $0.count) } }
            return UnsafeBufferPointer(start: into, count: text.count)
        }
    }

    static func fieldText(_ line: UnsafeBufferPointer<UInt8>, field: String, path: String, line lineNo: () -> Int) throws -> [UInt8] {
        let value: JSONValue
        do { value = try JSONParser.parse(Array(line)) } catch {
            throw TokenmillError.badInput(path: path, line: lineNo(), message: "invalid JSON: \(error.message)")
        }
        guard let v = value[field] else { throw TokenmillError.badInput(path: path, line: lineNo(), message: "missing field '\(field)'") }
        guard case .string(let s) = v else {
            throw TokenmillError.badInput(path: path, line: lineNo(), message: "field '\(field)' is \(v.kindName), expected a string")
        }
        return s
    }

    /// Line ranges split at `\n` (a final line without `\n` counts; a trailing `\n` does
    /// not start another line).
    static func splitLines(_ b: [UInt8]) -> [(Int, Int)] {
        b.withUnsafeBufferPointer { $0.baseAddress.map { splitLines($0, b.count) } ?? [] }
    }

    static func splitLines(_ p: UnsafePointer<UInt8>, _ n: Int) -> [(Int, Int)] {
        var lines: [(Int, Int)] = []
        var s = 0
        while s < n {
            let e = memchr(p + s, 0x0A, n - s).map { UnsafeRawPointer($0) - UnsafeRawPointer(p) } ?? n
            lines.append((s, e))
            s = e + 1
        }
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
