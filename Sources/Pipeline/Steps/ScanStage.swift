import BPE
import Dedup
import Ingest
import ShardFormat
import TokenmillCore

/// What the scan stage keeps of one record: a fixed 56-byte summary in `scan/<u>.rows`
/// (the global stages read these, never texts).
///
/// `line` counts from the unit's first line (1); `tokenOffset` indexes `scan/<u>.tokens`
/// and `.mask` in tokens.
struct RowSummary {
    static let size = 56
    static let noKind = UInt32.max
    static let filtered: UInt8 = 1, hasKey: UInt8 = 2, sigEmpty: UInt8 = 4, contaminated: UInt8 = 8

    var line: UInt64
    var tokenOffset: UInt64
    var tokenCount: UInt32
    var flags: UInt8
    /// Index into the unit's `reasons` (filtered rows only).
    var reason: UInt8
    var key: UInt128Hash
    /// `Record.contentHash` (normalized fields): the stable split and subsample key.
    var content: UInt64 = 0
    /// The first trained token's index (`tokenCount` when none is trained).
    var firstLoss: UInt32 = 0
    /// A conversation's instruction type (`InstructionType`), as an index into its unit's
    /// `types` (the marker's); `noKind` for text records and filtered rows.
    var kind: UInt32 = RowSummary.noKind

    /// The row's 56 bytes, stored in place and appended at once (field by field, twelve
    /// appends a row were 1.3% of a build's instructions).
    func write(_ w: inout ByteWriter) {
        var raw: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &raw) { p in
            p.storeBytes(of: line.littleEndian, toByteOffset: 0, as: UInt64.self)
            p.storeBytes(of: tokenOffset.littleEndian, toByteOffset: 8, as: UInt64.self)
            p.storeBytes(of: tokenCount.littleEndian, toByteOffset: 16, as: UInt32.self)
            p[20] = flags; p[21] = reason
            p.storeBytes(of: key.high.littleEndian, toByteOffset: 24, as: UInt64.self)
            p.storeBytes(of: key.low.littleEndian, toByteOffset: 32, as: UInt64.self)
            p.storeBytes(of: content.littleEndian, toByteOffset: 40, as: UInt64.self)
            p.storeBytes(of: firstLoss.littleEndian, toByteOffset: 48, as: UInt32.self)
            p.storeBytes(of: kind.littleEndian, toByteOffset: 52, as: UInt32.self)
            w.raw(UnsafeRawBufferPointer(p))
        }
    }

    /// No token of the document is trained on (`firstLoss` is past its end).
    var trainsNothing: Bool { firstLoss >= tokenCount }
    static let noTrainedTokens = "no_trained_tokens"

    static func read(_ r: inout ByteReader) throws -> RowSummary {
        let line = try r.u64(), off = try r.u64(), n = try r.u32(), flags = try r.u8(), reason = try r.u8()
        _ = try r.u8(); _ = try r.u8()
        let hi = try r.u64(), lo = try r.u64(), content = try r.u64(), firstLoss = try r.u32(), kind = try r.u32()
        return RowSummary(line: line, tokenOffset: off, tokenCount: n, flags: flags, reason: reason, key: UInt128Hash(low: lo, high: hi),
                          content: content, firstLoss: firstLoss, kind: kind)
    }

    /// Scan unit `u`'s rows file, whole (checksum checked). The size is checked first (a
    /// whole number of rows), so the rows decode with plain loads and no check per field
    /// (four stages read these files: the near-dedup candidates, shape, the weight draws
    /// and finish).
    static func readAll(_ w: WorkFolder, _ u: Int) throws -> [RowSummary] {
        let path = ScanStage.rowsPath(w, u)
        let bytes = try WorkFile.read(path)
        guard bytes.count % size == 0 else { throw TokenmillError.corrupt(path: path, message: "size is not a multiple of \(size)") }
        let n = bytes.count / size
        return bytes.withUnsafeBytes { raw in
            var out: [RowSummary] = []
            out.reserveCapacity(n)
            for i in 0..<n {
                let b = i * size
                func u64(_ o: Int) -> UInt64 { UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: b + o, as: UInt64.self)) }
                func u32(_ o: Int) -> UInt32 { UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: b + o, as: UInt32.self)) }
                out.append(RowSummary(line: u64(0), tokenOffset: u64(8), tokenCount: u32(16), flags: raw[b + 20], reason: raw[b + 21],
                                      key: UInt128Hash(low: u64(32), high: u64(24)), content: u64(40), firstLoss: u32(48), kind: u32(52)))
            }
            return out
        }
    }
}

/// One unit's counts, as its marker records them.
struct ScanResult {
    var records = 0
    var rowsRead = 0
    var rejected = 0
    var repaired = 0
    /// Newlines in a range unit's bytes (0 for whole-file units, whose lines are the file's).
    var lines = 0
    var tokens = 0
    var bytesIn = 0
    var reasons: [String] = []
    /// The unit's distinct instruction types, "verb\tobject" (RowSummary.kind indexes it).
    var types: [String] = []
    /// Bytes the vocabulary has no token for, dropped by the tokenizer (as `tokenizers`
    /// drops them); report.json's `dropped_bytes` says so per source.
    var droppedBytes = 0
    /// Files of the unit that began with a UTF-8 byte order mark (skipped).
    var byteOrderMarks = 0
    /// Whether the unit has a `.mask` file: none when every token it wrote has loss 1
    /// (pre-training text through `plain`), so the write stage reads no mask for it.
    var maskFile = true

    var json: JSONOut {
        .object([("records", .int(records)), ("rows_read", .int(rowsRead)), ("rejected", .int(rejected)), ("repaired", .int(repaired)),
                 ("lines", .int(lines)), ("tokens", .int(tokens)), ("bytes_in", .int(bytesIn)),
                 ("reasons", .array(reasons.map { .string($0) })), ("types", .array(types.map { .string($0) })),
                 ("dropped_bytes", .int(droppedBytes)), ("byte_order_marks", .int(byteOrderMarks)), ("mask_file", .bool(maskFile))])
    }

    init() {}
    init(_ v: JSONValue, path: String) throws {
        func i(_ k: String) throws -> Int {
            guard let n = v[k]?.intValue, n >= 0 else { throw TokenmillError.corrupt(path: path, message: "marker lacks '\(k)'") }
            return n
        }
        records = try i("records"); rowsRead = try i("rows_read"); rejected = try i("rejected"); repaired = try i("repaired")
        lines = try i("lines"); tokens = try i("tokens"); bytesIn = try i("bytes_in")
        reasons = (v["reasons"]?.arrayValue ?? []).compactMap(\.stringValue)
        types = (v["types"]?.arrayValue ?? []).compactMap(\.stringValue)
        droppedBytes = v["dropped_bytes"]?.intValue ?? 0
        byteOrderMarks = v["byte_order_marks"]?.intValue ?? 0
        guard let m = v["mask_file"]?.boolValue else { throw TokenmillError.corrupt(path: path, message: "marker lacks 'mask_file'") }
        maskFile = m
    }
}

/// The scan stage: every block-local step over one unit of input, in one pass, so a
/// record's text is read once and never written to the work folder — only its summary,
/// tokens, loss mask, MinHash signature and band keys are.
final class ScanStage {
    let ctx: BuildContext
    let normalize: NormalizeStep
    let near: NearDedupStep?
    let decontaminate: DecontaminateStep?

    init(_ ctx: BuildContext) throws {
        self.ctx = ctx
        normalize = NormalizeStep(ctx.spec)
        near = ctx.spec.nearDedup.map { NearDedupStep(spec: $0, lsh: ctx.lsh!) }
        let normalizer = ctx.spec.normalizer
        decontaminate = try ctx.spec.decontaminate.map { try DecontaminateStep($0, normalize: ctx.spec.normalize ? normalizer.apply : nil) }
    }

    static func rowsPath(_ w: WorkFolder, _ u: Int) -> String { w.path(.scan, "\(u).rows") }
    /// The unit's data: its token ids (the body, at offset 0), then the sections below.
    static func dataPath(_ w: WorkFolder, _ u: Int) -> String { w.path(.scan, "\(u).data") }
    /// The sections of `u.data` after the ids (`SectionedWorkFile`), written together at
    /// the unit's end: one file for the three instead of one each. (The rows stay a file
    /// of their own: the finish stage reads them while the data files, which no stage
    /// after write reads, are being removed.)
    enum Section: Int { case keys = 0, bands = 1 }
    static func section(_ w: WorkFolder, _ u: Int, _ s: Section) throws -> WorkFileSection {
        try WorkFileSection(path: dataPath(w, u), index: s.rawValue, name: "\(s)")
    }
    static func maskPath(_ w: WorkFolder, _ u: Int) -> String { w.path(.scan, "\(u).mask") }
    static func sigPath(_ w: WorkFolder, _ u: Int) -> String { w.path(.scan, "\(u).sig") }
    static func rejectsPath(_ w: WorkFolder, _ u: Int) -> String { w.path(.scan, "\(u).rejects") }
    static func hitsPath(_ w: WorkFolder, _ u: Int) -> String { w.path(.scan, "\(u).hits") }

    /// What the steps make of one record.
    struct Scanned {
        var reason: String?
        var key: UInt128Hash?
        var content: UInt64 = 0
        /// False when `prepare` took the results from `RepeatedContent` and left the
        /// record as read.
        var normalized = true
        var sigEmpty = true
        var hit: Decontaminator.Hit?
        /// "verb\tobject" of a conversation's first user turn (nil for text records).
        var type: String?
        var tokens: [UInt32] = []
        /// Loss flags, one a token; left empty when every token has loss 1 (`allLoss`).
        var mask: [UInt8] = []
        var allLoss = true
    }

    private let docLock = NSLockLite()
    private var docMade: DocumentTokenizer?

    /// The renderer, made once the tokenizer is loaded: a unit reads, normalizes and keys
    /// its records before it first needs it (`BuildContext.tokenizer`).
    func document() throws -> DocumentTokenizer {
        docLock.lock(); defer { docLock.unlock() }
        if let d = docMade { return d }
        let d = try DocumentTokenizer(tokenizer: try ctx.tokenizer, template: ctx.spec.template)
        docMade = d
        return d
    }

    /// First half: normalize, filter, exact key. A record whose content this process has
    /// met already (`known`, from `RepeatedContent`) takes the results from there and stays
    /// as read (`normalized` false): `finish` normalizes it if it needs it.
    func prepare(_ record: Record, known: RepeatedContent.Entry?) -> (Record, Scanned) {
        var s = Scanned()
        if let e = known {
            s.content = e.content; s.key = e.key; s.type = e.type; s.normalized = false
            return (record, s)
        }
        var r = record
        s.reason = normalize.apply(&r)
        if s.reason == nil {
            s.content = r.contentHash
            if let on = ctx.spec.exactDedup { s.key = ExactDedup.key(of: r, on: on) }
            if r.kind == .conversation {
                let t = InstructionType.of(r.turns.first { $0.role == .user }?.content ?? [])
                s.type = t.verb + "\t" + t.object
            }
        }
        return (r, s)
    }

    /// Second half, for records that are neither filtered nor a repeat of a key seen earlier
    /// in the unit or in an earlier unit (such a record is an exact duplicate whatever other
    /// units hold, so its signature and tokens would never be read; `EarlierKeys`):
    /// MinHash, decontamination, tokens.
    /// `sig` and `bands`: the record's rows in its piece's signature and band buffers.
    func finish(_ r: Record, _ s: inout Scanned, doc: DocumentTokenizer, encoder: inout Tokenizer.Encoder, scratch: inout NearDedupStep.Scratch,
                shingler: inout Shingler?, sig: UnsafeMutablePointer<UInt32>?, bands: UnsafeMutablePointer<UInt64>?) {
        var r = r
        if !s.normalized { _ = normalize.apply(&r) }
        if let near, let sig, let bands { s.sigEmpty = near.sign(r, &scratch, sig: sig, bands: bands) }
        if let decontaminate, shingler != nil { s.hit = decontaminate.check(r, &shingler!) }
        s.allLoss = doc.tokenize(r, encoder: &encoder, tokens: &s.tokens, mask: &s.mask)
    }

    /// `n` loss flags of 1 (the tokens of documents that train every token, which keep no
    /// mask of their own), 64 KB at a time.
    static let ones = [UInt8](repeating: 1, count: 1 << 16)
    static func appendOnes(_ n: Int, to f: WorkFileWriter) throws {
        var left = n
        while left > 0 {
            let k = min(left, ones.count)
            try ones.withUnsafeBytes { try f.append(UnsafeRawBufferPointer(rebasing: $0[0..<k])) }
            left -= k
        }
    }

    /// Runs unit `u` with `threads` workers inside it and commits its files and marker.
    func run(unit u: Int, threads: Int) throws -> ScanResult {
        let unit = ctx.units[u]
        let src = ctx.spec.sources[unit.source]
        let config = SourceConfig(name: src.name, index: Int32(unit.source), files: src.files, format: src.format,
                                  mapping: src.mapping, skipBadRows: src.skipBadRows, invalidUTF8: src.invalidUTF8, csvQuotes: src.csvQuotes)
        let w = ctx.work
        let tokensFile = try WorkFileWriter(path: Self.dataPath(w, u))
        // Made when the first token with loss 0 comes (`ScanResult.maskFile`).
        var maskFile: WorkFileWriter?
        var tokensBeforeMask = 0
        let sigFile: WorkFileWriter? = near == nil ? nil : try WorkFileWriter(path: Self.sigPath(w, u))
        var rows = ByteWriter()
        var bandKeys: [[UInt64]] = Array(repeating: [], count: near?.lsh.bands ?? 0)
        var keys: [[(UInt128Hash, UInt32)]] = Array(repeating: [], count: ctx.spec.exactDedup == nil ? 0 : ctx.exactPartitions)
        var rejects = ByteWriter()
        var hits = ByteWriter()
        var result = ScanResult()
        var reasonIndex: [String: UInt8] = [:]
        var typeIndex: [String: UInt32] = [:]
        var tokenOffset: UInt64 = 0
        var seen = HashKeySet()
        let p = ctx.spec.nearDedup?.permutations ?? 0, nb = near?.lsh.bands ?? 0
        var sigs: [UInt32] = [], bandRows: [UInt64] = []

        let (lines, bytes) = try IngestStep.read(unit, config: config, threads: threads) { piece in
            result.rowsRead += piece.rowsRead
            result.repaired += piece.repaired
            result.byteOrderMarks += piece.byteOrderMarks
            result.rejected += piece.rejects.count
            for rj in piece.rejects { rejects.u64(UInt64(rj.line)); rejects.blob(Array(rj.reason.utf8)) }
            let records = piece.records
            let prepared = UnsafeMutableBufferPointer<(Record, Scanned)>.allocate(capacity: records.count)
            defer { prepared.deinitialize().deallocate() }
            // Records met before (`RepeatedContent`), looked up and remembered a piece at a
            // time: one lock for the piece, not two a record (taken per record by both
            // workers, it cost the two-thread build more than it saved).
            let cache = ctx.spec.exactDedup == nil ? nil : ctx.repeatedContent
            var identities = [UInt128Hash?](repeating: nil, count: cache == nil ? 0 : records.count)
            var known = [RepeatedContent.Entry?](repeating: nil, count: records.count)
            if let cache {
                identities.withUnsafeMutableBufferPointer { ids in
                    _ = try? parallelBatches(count: records.count, threads: threads, batchSize: 256) { range in
                        for i in range where records[i].dropReason == nil { ids[i] = RepeatedContent.identity(records[i]) }
                    }
                }
                cache.lookup(identities, into: &known)
            }
            _ = try known.withUnsafeBufferPointer { known in
                try parallelBatches(count: records.count, threads: threads, batchSize: 256) { range in
                    for i in range { (prepared.baseAddress! + i).initialize(to: prepare(records[i], known: known[i])) }
                }
            }
            if let cache {
                cache.remember(count: records.count) { i in
                    guard known[i] == nil, let id = identities[i], prepared[i].1.reason == nil, let key = prepared[i].1.key else { return nil }
                    return (id, RepeatedContent.Entry(key: key, content: prepared[i].1.content, type: prepared[i].1.type))
                }
            }
            var repeated = [Bool](repeating: false, count: records.count)
            for i in 0..<records.count {
                if let key = prepared[i].1.key { repeated[i] = !seen.insert(key) }
            }
            ctx.earlierKeys.mark(unit: u, keys: { i in prepared[i].1.key }, count: records.count, repeated: &repeated)
            let doc = try document()
            let width = DatasetDirectory.tokenWidth(vocabSize: doc.tokenizer.vocabSize)
            // The piece's signatures and band hashes: one buffer each, written by the
            // workers at their rows; only the rows that were signed and have a shingle
            // (`sigEmpty` false, the only rows near-bands reads) go to `.sig` and `.bands`
            // (half the rows of a corpus that repeats itself are neither). The buffers are
            // the unit's, reused piece after piece (fresh ones of a few MB came from the
            // kernel each time, zero-filled page by page); rows not signed are never read
            // from them, so they are not cleared.
            if sigs.count < records.count * p { sigs = [UInt32](repeating: 0, count: records.count * p) }
            if bandRows.count < records.count * nb { bandRows = [UInt64](repeating: 0, count: records.count * nb) }
            let dropped = try sigs.withUnsafeMutableBufferPointer { sigBuf in
                try bandRows.withUnsafeMutableBufferPointer { bandBuf in
                    let sigBase = sigBuf.baseAddress, bandBase = bandBuf.baseAddress
                    return try parallelBatches(count: records.count, threads: threads, batchSize: 256) { range -> Int in
                        var enc = doc.tokenizer.makeEncoder()
                        var scratch = NearDedupStep.Scratch()
                        var sh: Shingler? = decontaminate.map { Shingler(ngram: $0.ngram) }
                        for i in range where prepared[i].1.reason == nil && !repeated[i] {
                            finish(prepared[i].0, &prepared[i].1, doc: doc, encoder: &enc, scratch: &scratch, shingler: &sh,
                                   sig: sigBase.map { $0 + i * p }, bands: bandBase.map { $0 + i * nb })
                        }
                        return enc.droppedBytes
                    }
                }
            }
            // The signed rows' signatures through the writer's 1 MB buffer, consecutive
            // signed rows in one call (one `write` of a whole piece, a few MB, spent 4x
            // longer in the kernel's copy into the page cache).
            if let sigFile {
                try sigs.withUnsafeBytes { raw in
                    let row = p * 4
                    var k = 0
                    while k < records.count {
                        if prepared[k].1.sigEmpty { k += 1; continue }
                        var e = k + 1
                        while e < records.count, !prepared[e].1.sigEmpty, (e - k) * row < (64 << 10) { e += 1 }
                        try sigFile.append(UnsafeRawBufferPointer(rebasing: raw[(k * row)..<(e * row)]))
                        k = e
                    }
                }
            }
            result.droppedBytes += dropped.reduce(0, +)
            for k in 0..<records.count {
                do {
                    let s = prepared[k].1
                    let row = UInt32(result.records)
                    let rec = records[k]
                    var summary = RowSummary(line: UInt64(rec.line), tokenOffset: tokenOffset, tokenCount: UInt32(s.tokens.count),
                                             flags: 0, reason: 0, key: UInt128Hash(low: 0, high: 0), content: s.content,
                                             firstLoss: s.allLoss ? 0 : UInt32(s.mask.firstIndex(where: { $0 != 0 }) ?? s.tokens.count))
                    if let reason = s.reason {
                        summary.flags |= RowSummary.filtered
                        if reasonIndex[reason] == nil { reasonIndex[reason] = UInt8(result.reasons.count); result.reasons.append(reason) }
                        summary.reason = reasonIndex[reason]!
                    }
                    if let type = s.type {
                        if typeIndex[type] == nil { typeIndex[type] = UInt32(result.types.count); result.types.append(type) }
                        summary.kind = typeIndex[type]!
                    }
                    if let key = s.key {
                        summary.flags |= RowSummary.hasKey
                        summary.key = key
                        keys[ExactDedupStep.partition(key, bits: ctx.exactBits)].append((key, row))
                    }
                    if near != nil {
                        if s.sigEmpty { summary.flags |= RowSummary.sigEmpty } else {
                            for b in 0..<nb { bandKeys[b].append(bandRows[k * nb + b]) }
                        }
                    }
                    if let hit = s.hit {
                        summary.flags |= RowSummary.contaminated
                        hits.u32(row); hits.u64(UInt64(hit.eval.file)); hits.u64(UInt64(hit.eval.line)); hits.blob(Array(hit.shingle.utf8))
                    }
                    if !s.tokens.isEmpty {
                        if width == 2 {
                            let narrow = s.tokens.map { UInt16(truncatingIfNeeded: $0) }
                            try narrow.withUnsafeBytes { try tokensFile.append($0) }
                        } else {
                            try s.tokens.withUnsafeBytes { try tokensFile.append($0) }
                        }
                        if s.allLoss {
                            if let maskFile { try Self.appendOnes(s.tokens.count, to: maskFile) } else { tokensBeforeMask += s.tokens.count }
                        } else {
                            if maskFile == nil {
                                maskFile = try WorkFileWriter(path: Self.maskPath(w, u))
                                try Self.appendOnes(tokensBeforeMask, to: maskFile!)
                            }
                            try maskFile!.append(s.mask)
                        }
                    }
                    tokenOffset += UInt64(s.tokens.count)
                    result.tokens += s.tokens.count
                    summary.write(&rows)
                    result.records += 1
                }
            }
        }
        result.lines = lines
        result.bytesIn = bytes
        if let maskFile { _ = try maskFile.commit() }
        result.maskFile = maskFile != nil
        if let f = sigFile { _ = try f.commit() }
        var bands = ByteWriter(capacity: bandKeys.count * (bandKeys.first?.count ?? 0) * 8)
        for band in bandKeys { for v in band { bands.u64(v) } }
        let keyBytes = ctx.spec.exactDedup != nil ? ExactDedupStep.encodeKeys(keys) : []
        try SectionedWorkFile.appendSections(tokensFile, [keyBytes, bands.bytes])
        _ = try tokensFile.commit()
        try WorkFile.write(Self.rowsPath(w, u), rows.bytes)
        // Most units reject nothing and match no eval prompt: no file then (the marker's
        // counts say so; finish reads these only for units that have some).
        if !rejects.bytes.isEmpty { try WorkFile.write(Self.rejectsPath(w, u), rejects.bytes) }
        if !hits.bytes.isEmpty { try WorkFile.write(Self.hitsPath(w, u), hits.bytes) }
        return result
    }
}
