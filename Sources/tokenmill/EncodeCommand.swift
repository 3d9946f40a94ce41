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
            try encodeMapped(path, threads: threads, writer: writer) { lines, base, lineNumber in
                try encodeChunk(lines, base, tokenizer: tokenizer, field: field, allowed: allowed, path: path, lineNumber: lineNumber)
            }
        } else {
            try encodeStream(path, threads: threads, writer: writer) { lines, base, lineNumber in
                try encodeChunk(lines, base, tokenizer: tokenizer, field: field, allowed: allowed, path: path, lineNumber: lineNumber)
            }
        }
        // `tokenizers` drops a byte its vocabulary has no token for; so does encode, and
        // says how many it dropped.
        let dropped = writer.dropped
        if dropped > 0 { FileSystem.writeStderr("tokenmill: dropped \(dropped) byte\(dropped == 1 ? "" : "s") that \(tokenizer.name) has no token for (as the tokenizers library does)") }
    }

    /// Encodes one chunk: its lines (ranges in `base`), a line's number in the whole input
    /// from its index in the chunk (asked only for an error) -> the JSON lines and the
    /// bytes dropped.
    typealias ChunkEncoder = ([(Int, Int)], UnsafePointer<UInt8>, (Int) -> Int) throws -> ([UInt8], Int)

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
                    let lines = splitLines(base + range.lowerBound, range.count)
                    let (out, dropped) = try encode(lines, base + range.lowerBound) { k in 1 + countNewlines(base, range.lowerBound) + k }
                    writer.submit(index, out, dropped: dropped, end: range.upperBound)
                } catch {
                    failures.record(index, error)
                    source.stop()
                }
            }
        }
        try failures.rethrow()
    }

    /// A pipe or stdin: blocks of whole lines read into one buffer (`BlockInput`), each
    /// block's chunks encoded on all workers before the next block is read.
    static func encodeStream(_ path: String, threads: Int, writer: OrderedWriter, _ encode: ChunkEncoder) throws {
        let input = try BlockInput(path)
        var firstLine = 1, chunkBase = 0
        while let (base, count) = try input.nextBlock() {
            let chunks = cutChunks(base, count)
            let lineCounts: [Int] = try parallelBatches(count: chunks.count, threads: threads, batchSize: 1) { r in
                let c = chunks[r.lowerBound]
                let lines = splitLines(base + c.lowerBound, c.count)
                let (out, dropped) = try encode(lines, base + c.lowerBound) { k in firstLine + countNewlines(base, c.lowerBound) + k }
                writer.submit(chunkBase + r.lowerBound, out, dropped: dropped, end: 0)
                return lines.count
            }
            chunkBase += chunks.count
            firstLine += lineCounts.reduce(0, +)
        }
    }

    /// Hands out whole-line chunks of a mapped file in order.
    final class ChunkCursor: @unchecked Sendable {
        let lock = NSLockLite()
        let base: UnsafePointer<UInt8>
        let n: Int
        var position = 0, index = 0
        var stopped = false

        init(_ base: UnsafePointer<UInt8>, _ n: Int) { self.base = base; self.n = n }

        func next() -> (Int, Range<Int>)? {
            lock.lock(); defer { lock.unlock() }
            guard !stopped, position < n else { return nil }
            let s = position
            var e = min(n, s + EncodeCommand.chunkSize)
            if e < n, let nl = memchr(base + e - 1, 0x0A, n - e + 1) {
                e = UnsafeRawPointer(nl) - UnsafeRawPointer(base) + 1
            } else {
                e = n
            }
            position = e
            index += 1
            return (index - 1, s..<e)
        }

        func stop() { lock.lock(); stopped = true; lock.unlock() }
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
    /// as JSON in one pass into an output buffer of exactly the size they need.
    static func encodeChunk(_ lines: [(Int, Int)], _ buf: UnsafePointer<UInt8>, tokenizer: Tokenizer, field: String?,
                            allowed: [(bytes: [UInt8], id: UInt32)], path: String,
                            lineNumber: (Int) -> Int) throws -> ([UInt8], Int) {
        var enc = tokenizer.makeEncoder()
        var ids: [UInt32] = []
        var ends: [Int] = []
        ends.reserveCapacity(lines.count)
        let scan = field.map { FieldScan($0) }
        for (k, (s, e)) in lines.enumerated() {
            let slice = UnsafeBufferPointer(start: buf + s, count: e - s)
            if let scan {
                try scan.withText(slice, path: path, line: { lineNumber(k) }) { enc.encode($0, allowedSpecial: allowed, into: &ids) }
            } else if let fixed = UTF8Validation.repaired(slice) {
                fixed.withUnsafeBufferPointer { enc.encode($0, allowedSpecial: allowed, into: &ids) }
            } else {
                enc.encode(slice, allowedSpecial: allowed, into: &ids)
            }
            ends.append(ids.count)
        }
        return (IDWriter.json(ids, lineEnds: ends), enc.droppedBytes)
    }

    /// Writes chunks to stdout in chunk order, whichever worker finishes them: a chunk is
    /// written as soon as every chunk before it is (by the worker that completes the run),
    /// so no worker waits for the writing and nothing is held longer than needed.
    /// `written(end)` is told the input offset all written chunks end at.
    final class OrderedWriter: @unchecked Sendable {
        private let lock = NSLockLite()
        private var pending: [Int: ([UInt8], Int)] = [:]
        private var next = 0
        private var writing = false
        private(set) var dropped = 0
        var written: ((Int) -> Void)?

        func submit(_ index: Int, _ bytes: [UInt8], dropped: Int, end: Int) {
            lock.lock()
            self.dropped += dropped
            pending[index] = (bytes, end)
            if writing { lock.unlock(); return }
            writing = true
            while let (out, end) = pending.removeValue(forKey: next) {
                next += 1
                lock.unlock()
                out.withUnsafeBytes { FileSystem.writeStdout($0) }
                written?(end)
                lock.lock()
            }
            writing = false
            lock.unlock()
        }
    }

    /// The `--field` of a JSON line, scanned in place (`JSONParser.scanObject`: no value
    /// tree, the string decoded once into scratch memory). A line the scan does not take
    /// (an escape in a key, a repeated key, a string needing UTF-8 repair, a value that is
    /// not a string, bad JSON) goes through the full parser, which gives the text or the
    /// exact error.
    final class FieldScan {
        let keys: [[UInt8]]
        let field: String
        let slot = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        let end = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        let inScratch = UnsafeMutablePointer<Bool>.allocate(capacity: 1)
        var scratch: UnsafeMutablePointer<UInt8>
        var capacity = 1 << 16

        init(_ field: String) {
            self.field = field
            keys = [Array(field.utf8)]
            scratch = .allocate(capacity: capacity)
        }

        deinit { slot.deallocate(); end.deallocate(); inScratch.deallocate(); scratch.deallocate() }

        func withText(_ line: UnsafeBufferPointer<UInt8>, path: String, line lineNo: () -> Int,
                      _ body: (UnsafeBufferPointer<UInt8>) -> Void) throws {
            if line.count > capacity {
                scratch.deallocate()
                capacity = max(line.count, 2 * capacity)
                scratch = .allocate(capacity: capacity)
            }
            var p = JSONParser(line)
            if (try? p.scanObject(keys: keys, into: slot, ends: end, inScratch: inScratch, scratch: scratch)) == true,
               slot[0] >= 0, inScratch[0] {
                p.skipWhitespace()
                if p.atEnd { return body(UnsafeBufferPointer(start: scratch + slot[0], count: end[0] - slot[0])) }
            }
            let text = try EncodeCommand.fieldText(line, field: field, path: path, line: lineNo)
            text.withUnsafeBufferPointer(body)
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

/// Token ids as JSON lines: `[1,2,3]\n` per line. An id below 10^8 becomes eight digit
/// characters in one word (four two-digit pairs from a 200-byte table that stays in L1),
/// shifted past its leading zeros, with the comma after it: one 8-byte store. (A table of
/// every id's digits was slower: at 1.6 MB for o200k_base it missed the cache beside the
/// BPE tables.)
enum IDWriter {
    /// "00" ... "99" as little-endian pairs: the tens digit in the low byte.
    static let pairs: [UInt16] = {
        var t: [UInt16] = []
        for v in 0..<100 {
            let tens = UInt16(48 + v / 10), ones = UInt16(48 + v % 10)
            t.append(tens | ones << 8)
        }
        return t
    }()

    /// `ids[lineEnds[k-1]..<lineEnds[k]]` as line k.
    static func json(_ ids: [UInt32], lineEnds: [Int]) -> [UInt8] {
        let capacity = 11 * ids.count + 3 * lineEnds.count + 8
        return [UInt8](unsafeUninitializedCapacity: capacity) { out, count in
            pairs.withUnsafeBufferPointer { pairs in
                ids.withUnsafeBufferPointer { ids in
                    let base = UnsafeMutableRawPointer(out.baseAddress!)
                    let table = pairs.baseAddress!
                    var o = 0, i = 0
                    for end in lineEnds {
                        base.storeBytes(of: UInt8(ascii: "["), toByteOffset: o, as: UInt8.self)
                        o += 1
                        let first = i
                        while i < end { o = write(ids[i], base, o, table); i += 1 }
                        if i > first { o -= 1 }   // the last id's comma
                        base.storeBytes(of: UInt8(ascii: "]"), toByteOffset: o, as: UInt8.self)
                        base.storeBytes(of: UInt8(0x0A), toByteOffset: o + 1, as: UInt8.self)
                        o += 2
                    }
                    count = o
                }
            }
        }
    }

    /// `v` in decimal and a comma at `base + o` (room for 11 bytes); the offset after them.
    @inline(__always)
    static func write(_ v: UInt32, _ base: UnsafeMutableRawPointer, _ o: Int, _ table: UnsafePointer<UInt16>) -> Int {
        if v >= 100_000_000 { return writeLarge(v, base, o) }
        let hi = Int(v / 10_000), lo = Int(v % 10_000)
        let w0 = UInt64(table[hi / 100]), w1 = UInt64(table[hi % 100]) << 16
        let w2 = UInt64(table[lo / 100]) << 32, w3 = UInt64(table[lo % 100]) << 48
        let w = w0 | w1 | w2 | w3
        // Leading zeros are the low bytes whose digit is 0 (keep at least one digit).
        let digits = w &- 0x3030_3030_3030_3030
        let zeros = digits == 0 ? 7 : min(digits.trailingZeroBitCount >> 3, 7)
        let n = 8 - zeros
        let shifted = w >> UInt64(8 * zeros)
        if n < 8 {
            base.storeBytes(of: (shifted | UInt64(UInt8(ascii: ",")) << UInt64(8 * n)).littleEndian, toByteOffset: o, as: UInt64.self)
        } else {
            base.storeBytes(of: shifted.littleEndian, toByteOffset: o, as: UInt64.self)
            base.storeBytes(of: UInt8(ascii: ","), toByteOffset: o + 8, as: UInt8.self)
        }
        return o + n + 1
    }

    static func writeLarge(_ v: UInt32, _ base: UnsafeMutableRawPointer, _ o: Int) -> Int {
        var tmp: (UInt64, UInt64) = (0, 0)
        return withUnsafeMutableBytes(of: &tmp) { t in
            var x = v, n = 0
            repeat { t[15 - n] = UInt8(48 + x % 10); x /= 10; n += 1 } while x > 0
            (base + o).copyMemory(from: t.baseAddress! + 16 - n, byteCount: n)
            base.storeBytes(of: UInt8(ascii: ","), toByteOffset: o + n, as: UInt8.self)
            return o + n + 1
        }
    }
}

/// Input in blocks of whole lines: a block ends after the last `\n` within `blockSize`
/// bytes (or runs on to the next `\n`, for a longer line); the rest starts the next block.
/// A regular file is mapped (no copy; each block's pages are released when the next is
/// asked for, so resident memory stays one block whatever the file's size); a pipe or
/// stdin is read into one reused buffer.
final class BlockInput {
    let path: String
    static let blockSize = 8 << 20
    let mapped: MappedFile?
    var position = 0
    let fd: Int32
    var buffer: UnsafeMutablePointer<UInt8>
    var capacity: Int
    /// Read mode: `[0, consumed)` handed out as the last block, `[consumed, filled)` carried.
    var filled = 0
    var consumed = 0
    var eof = false

    init(_ path: String) throws {
        self.path = path
        var st = stat()
        if path != "-" && stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG {
            mapped = try FileSystem.map(path, populate: false)
            fd = -1
            capacity = 0
            buffer = .allocate(capacity: 1)
            return
        }
        mapped = nil
        if path == "-" {
            fd = dup(0)
        } else {
            fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw TokenmillError.io(path: path, message: "cannot open for reading") }
            if fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR {
                close(fd)
                throw TokenmillError.io(path: path, message: "is a directory, expected a file")
            }
        }
        capacity = BlockInput.blockSize
        buffer = .allocate(capacity: capacity)
    }

    deinit { if fd >= 0 { close(fd) }; buffer.deallocate() }

    /// The next block, valid until the next call; nil at the end of the input.
    func nextBlock() throws -> (UnsafePointer<UInt8>, Int)? {
        if let m = mapped {
            m.release(0..<position)
            let n = m.bytes.count
            guard position < n, let base = m.bytes.baseAddress else { return nil }
            var end = min(n, position + BlockInput.blockSize)
            if end < n {
                // After the last newline in the block, else after the first one beyond it.
                var k = end - 1
                while k >= position && base[k] != 0x0A { k -= 1 }
                if k >= position {
                    end = k + 1
                } else if let nl = memchr(base + end, 0x0A, n - end) {
                    end = UnsafeRawPointer(nl) - UnsafeRawPointer(base) + 1
                } else {
                    end = n
                }
            }
            defer { position = end }
            return (base + position, end - position)
        }
        return try nextReadBlock()
    }

    func nextReadBlock() throws -> (UnsafePointer<UInt8>, Int)? {
        // Move the carried partial line to the front.
        let carry = filled - consumed
        if consumed > 0 && carry > 0 { memmove(buffer, buffer + consumed, carry) }
        filled = carry
        consumed = 0
        while true {
            let searchFrom = filled
            while !eof && filled < capacity {
                let n = read(fd, buffer + filled, capacity - filled)
                if n < 0 { if errno == EINTR { continue }; throw TokenmillError.io(path: path, message: "read failed") }
                if n == 0 { eof = true; break }
                filled += n
            }
            if eof {
                if filled == 0 { return nil }
                consumed = filled
                return (UnsafePointer(buffer), filled)
            }
            // The block ends after its last newline (only the new bytes can hold one: the
            // carried ones are what followed the previous block's last newline); with
            // none, the line is longer than the buffer: grow it and read on.
            var last = filled - 1
            while last >= searchFrom && buffer[last] != 0x0A { last -= 1 }
            if last >= searchFrom {
                consumed = last + 1
                return (UnsafePointer(buffer), consumed)
            }
            let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: 2 * capacity)
            bigger.update(from: buffer, count: filled)
            buffer.deallocate()
            buffer = bigger
            capacity *= 2
        }
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
