import TokenmillCore

/// A byte-level BPE tokenizer: mergeable ranks, a pre-tokenizer and special tokens.
///
/// `encodeOrdinary` never produces a special token: text that looks like
/// `<|endoftext|>` is encoded as ordinary text. Special tokens enter a sequence only
/// through templates (`specialID`). Thread-safe and immutable; each thread encodes with its
/// own `Encoder`, which owns the scratch memory of the merge loop.
public final class Tokenizer: @unchecked Sendable {
    public let name: String
    public let ranks: RankTable
    public let pretokenizer: Pretokenizer
    /// Special tokens by id, in id order.
    public private(set) var specialTokens: [(text: String, id: UInt32)]
    public let eosID: UInt32
    /// One more than the largest id this tokenizer can emit.
    public private(set) var vocabSize: Int
    /// xxh3-64 of the ranks file bytes.
    public let vocabHash: UInt64
    /// Hugging Face ByteLevel's `add_prefix_space`: a space before text that lacks one.
    public let addPrefixSpace: Bool
    /// Unicode normalization before pre-tokenization (a tokenizer.json normalizer).
    public enum Normalization: String, Sendable { case none, nfc, nfkc }
    public let normalization: Normalization
    /// tokenizer.json processing the fast path does not cover: non-special added tokens
    /// matched in text, and pre-tokenizer steps other than one known pattern.
    let general: GeneralPath?

    /// What a tokenizer.json needs beyond `pretokenizer` / `addPrefixSpace` / `normalization`.
    struct GeneralPath: Sendable {
        /// Added tokens matched in the raw text, and (after normalization) in the normalized text.
        var rawAdded: AddedTokens
        var normalizedAdded: AddedTokens
        /// nil: each piece goes through the fast path (`pretokenizer`, `addPrefixSpace`).
        var steps: [PreTokenizerStep]?
        /// Non-special added tokens by id, for decoding ids outside the ranks.
        var addedText: [UInt32: [UInt8]]
    }

    /// Where `eosID` came from: nil when it is known (a built-in encoding, the files beside
    /// a tokenizer.json, or the spec); else why it is only a guess, which a build refuses
    /// (`encode` and `decode` need no EOS).
    public let eosGuess: String?

    /// A tokenizer.json special token's `lstrip`/`rstrip` (RoBERTa's `<mask>` takes the
    /// whitespace before it): applied when text may hold special tokens (`--allowed-special`).
    let specialStrips: [UInt32: Strip]
    struct Strip: Sendable { var left: Bool; var right: Bool; var singleWord = false }
    /// A SentencePiece-style BPE (tokenizer.json with `byte_fallback`): encodes instead of
    /// the byte-level engine.
    let sentencePiece: SentencePieceBPE?
    /// Idle encoders' SentencePiece states, reused by the next encoders.
    let sentencePieceStates = FreeList { SentencePieceBPE.State() }
    /// Idle encoders' caches of two-token pieces (`PairCache`), reused by the next encoders.
    let pairCaches = FreeList { PairCache() }

    init(name: String, ranks: RankTable, pretokenizer: Pretokenizer, special: [(String, UInt32)], eos: UInt32, vocabSize: Int, vocabHash: UInt64,
         addPrefixSpace: Bool = false, normalization: Normalization = .none, general: GeneralPath? = nil, eosGuess: String? = nil,
         specialStrips: [UInt32: Strip] = [:], sentencePiece: SentencePieceBPE? = nil) {
        self.addPrefixSpace = addPrefixSpace; self.normalization = normalization; self.general = general
        self.specialStrips = specialStrips; self.sentencePiece = sentencePiece
        self.name = name; self.ranks = ranks; self.pretokenizer = pretokenizer
        self.specialTokens = special.sorted { $0.1 < $1.1 }.map { (text: $0.0, id: $0.1) }
        self.eosID = eos; self.vocabSize = vocabSize; self.vocabHash = vocabHash
        self.eosGuess = eosGuess
    }

    /// The same tokenizer with `text` (one of its special tokens) as EOS, as a spec names it.
    public func withEOS(_ text: String) throws -> Tokenizer {
        guard let id = specialID(text) else {
            throw TokenmillError.spec(path: name, key: "tokenizer.eos", message: "'\(text)' is not a special token of \(name) (its special tokens: \(specialTokens.map(\.text).prefix(12).joined(separator: ", ")))")
        }
        return Tokenizer(name: name, ranks: ranks, pretokenizer: pretokenizer, special: specialTokens.map { ($0.text, $0.id) }, eos: id,
                         vocabSize: vocabSize, vocabHash: vocabHash, addPrefixSpace: addPrefixSpace, normalization: normalization,
                         general: general, eosGuess: nil, specialStrips: specialStrips, sentencePiece: sentencePiece)
    }

    public func specialID(_ text: String) -> UInt32? {
        specialTokens.first { $0.text == text }?.id
    }

    /// Adds special tokens (`<|im_start|>` ...) that the vocabulary does not have, at the
    /// given ids. An id already used by a rank or another special token is refused.
    public func addingSpecialTokens(_ extra: [(String, UInt32)]) throws -> Tokenizer {
        var special = specialTokens.map { ($0.text, $0.id) }
        var size = vocabSize
        for (text, id) in extra where !special.contains(where: { $0.0 == text }) {
            if ranks.isToken(Int(id)) || special.contains(where: { $0.1 == id }) {
                throw TokenmillError.unsupported("tokenizer \(name): id \(id) for \(text) is already taken")
            }
            special.append((text, id))
            size = max(size, Int(id) + 1)
        }
        return Tokenizer(name: name, ranks: ranks, pretokenizer: pretokenizer, special: special, eos: eosID, vocabSize: size, vocabHash: vocabHash,
                         addPrefixSpace: addPrefixSpace, normalization: normalization, general: general, eosGuess: eosGuess,
                         specialStrips: specialStrips, sentencePiece: sentencePiece)
    }

    public func makeEncoder() -> Encoder { Encoder(self) }

    /// Convenience for tests and tools: ordinary encoding of a whole text.
    public func encodeOrdinary(_ text: [UInt8]) -> [UInt32] {
        var enc = makeEncoder()
        var out: [UInt32] = []
        enc.encode(text, into: &out)
        return out
    }

    /// The bytes of `ids` (special tokens as their text). Unknown ids throw.
    public func decode(_ ids: [UInt32]) throws -> [UInt8] {
        var out: [UInt8] = []
        for id in ids {
            if let sp = sentencePiece {
                if let b = sp.decoded[id] { out.append(contentsOf: b); continue }
                if let s = specialTokens.first(where: { $0.id == id }) { out.append(contentsOf: s.text.utf8); continue }
                throw TokenmillError.badInput(path: "<ids>", line: 0, message: "token id \(id) is not in the vocabulary of \(name)")
            }
            if ranks.isToken(Int(id)) {
                out.append(contentsOf: ranks.tokenBytes(Int(id)))
            } else if let s = specialTokens.first(where: { $0.id == id }) {
                out.append(contentsOf: s.text.utf8)
            } else if let t = general?.addedText[id] {
                out.append(contentsOf: t)
            } else {
                throw TokenmillError.badInput(path: "<ids>", line: 0, message: "token id \(id) is not in the vocabulary of \(name)")
            }
        }
        return out
    }

    /// Per-thread encoding state: the merge loop's scratch memory. Not shareable between
    /// threads; each worker makes its own.
    public struct Encoder: ~Copyable {
        let tokenizer: Tokenizer
        var merge = BytePairMerge()
        /// The batch of pieces scanned ahead of the merge (`piecesLoop`): four words a piece,
        /// its end, whole-piece hash and the key's first two words (`RankTable.wholeKey`), in
        /// one block so the loop keeps one pointer to it in a register, not three.
        let pieceBatch = UnsafeMutablePointer<UInt64>.allocate(capacity: 4 * Encoder.batch)
        /// `O200kWindowPieces`' state (the current window of o200k piece starts).
        let windowState = UnsafeMutablePointer<Int>.allocate(capacity: O200kWindowPieces.stateWords)
        static let batch = 32

        /// The SentencePiece engine's scratch and word cache (nil for byte-level vocabularies).
        let sentencePieceState: SentencePieceBPE.State?

        /// `tokenizer.ranks`, used without retaining it (`encodePlain`).
        let ranks: Unmanaged<RankTable>

        /// Recent pieces that merged into two tokens (`PairCache`), kept from text to text
        /// and, through the tokenizer's pool, from one encoder to the next on a worker.
        let pairCache: PairCache

        init(_ t: Tokenizer) {
            tokenizer = t
            ranks = Unmanaged.passUnretained(t.ranks)
            pairCache = t.pairCaches.take()
            // Encoders come and go per batch of texts; their SentencePiece states (scratch
            // and word cache, a few MB) go back to the tokenizer and warm the next one.
            sentencePieceState = t.sentencePiece.map { _ in t.sentencePieceStates.take() }
        }

        /// Bytes of the texts encoded so far that the vocabulary has no token for, dropped as
        /// `tokenizers` drops them (`RankTable.hasByteHoles`); reported, never silent.
        public var droppedBytes: Int { merge.droppedBytes }

        deinit {
            merge.deallocate(); pieceBatch.deallocate(); windowState.deallocate()
            tokenizer.pairCaches.give(pairCache)
            if let sentencePieceState { tokenizer.sentencePieceStates.give(sentencePieceState) }
        }

        /// Appends the ordinary encoding of `text` (valid UTF-8) to `out`.
        public mutating func encode(_ text: UnsafeBufferPointer<UInt8>, into out: inout [UInt32]) {
            guard text.count > 0 else { return }
            precondition(merge.tokenCount == 0, "clearKept() before encode after encodeKeeping")
            if let sp = tokenizer.sentencePiece {
                sp.encode(Array(text), state: sentencePieceState!, into: &out)
            } else if let general = tokenizer.general {
                encodeGeneral(Array(text), general, into: &out)
            } else if tokenizer.normalization != .none || tokenizer.addPrefixSpace {
                // tokenizer.json options: rebuild the text, then encode it plainly.
                let t = normalized(Array(text))
                encodePiece(t, into: &out)
            } else {
                encodePlain(text, into: &out)
            }
        }

        /// Whether `encodeKeeping` applies: a byte-level vocabulary whose texts take the
        /// plain path (no SentencePiece, no tokenizer.json normalizer or pre-tokenizer steps).
        public var keepsTokens: Bool {
            tokenizer.sentencePiece == nil && tokenizer.general == nil && tokenizer.normalization == .none && !tokenizer.addPrefixSpace
        }

        /// `encode` for a run of texts whose ids are wanted together: the tokens stay in the
        /// encoder's own buffer (`keptTokens`), after those of the texts before, instead of
        /// being appended to an array text by text (that append cost ~300 instructions a
        /// text: a tenth of `tokenmill encode`'s own work on chat-turn lines). Only where
        /// `keepsTokens`.
        public mutating func encodeKeeping(_ text: UnsafeBufferPointer<UInt8>) {
            precondition(keepsTokens, "encodeKeeping needs the plain path")
            guard text.count > 0 else { return }
            merge.keep = true
            defer { merge.keep = false }
            var unused: [UInt32] = []
            encodePlain(text, into: &unused)
        }

        /// The tokens `encodeKeeping` has kept, valid until the next call on this encoder.
        public var keptTokens: UnsafeBufferPointer<UInt32> { UnsafeBufferPointer(start: merge.tokens, count: merge.tokenCount) }

        public mutating func clearKept() { merge.tokenCount = 0 }

        func normalized(_ t: [UInt8]) -> [UInt8] {
            if tokenizer.normalization == .none || t.withUnsafeBufferPointer(UTF8Validation.isASCII) { return t }
            switch tokenizer.normalization {
            case .none: return t
            case .nfc: return UnicodeNormalization.nfc(t)
            case .nfkc: return UnicodeNormalization.nfkc(t)
            }
        }

        /// A normalized piece through the fast path's prefix space and scanner.
        mutating func encodePiece(_ piece: [UInt8], into out: inout [UInt32]) {
            var t = piece
            if tokenizer.addPrefixSpace && t.first != 0x20 { t.insert(0x20, at: 0) }
            t.withUnsafeBufferPointer { encodePlain($0, into: &out) }
        }

        /// The `tokenizers` order: added tokens in the raw text; each other piece
        /// normalized; added tokens in the normalized piece; pre-tokenizer steps on each
        /// remaining piece; the merge loop on each pre-token.
        mutating func encodeGeneral(_ text: [UInt8], _ g: GeneralPath, into out: inout [UInt32]) {
            let table = tokenizer.ranks
            for (r, id) in g.rawAdded.split(text) {
                if let id { out.append(id); continue }
                let piece = normalized(Array(text[r]))
                for (r2, id2) in g.normalizedAdded.split(piece) {
                    if let id2 { out.append(id2); continue }
                    let sub = Array(piece[r2])
                    guard let steps = g.steps else { encodePiece(sub, into: &out); continue }
                    for p in PreTokenization.apply(steps, to: sub) {
                        p.withUnsafeBufferPointer { merge.encode($0.baseAddress!, $0.count, table, into: &out) }
                    }
                }
            }
        }

        mutating func encodePlain(_ text: UnsafeBufferPointer<UInt8>, into out: inout [UInt32]) {
            guard let base = text.baseAddress, text.count > 0 else { return }
            let n = text.count
            let scan = Scan()
            let pretokenizer = tokenizer.pretokenizer
            // The table borrowed, not retained: `tokenizer` holds it for as long as this
            // encoder lives. `let table = tokenizer.ranks` retained and released it once a
            // text, and with two workers that atomic count bounced the table object's cache
            // line (which also holds the fields the merges read) between the cores on every
            // line: 1.7% of a two-thread `encode`'s samples in swift_release alone.
            ranks._withUnsafeGuaranteedRef { table in
                // One loop per pattern so each scanner inlines into its own loop. Tokens go
                // to the merge's raw buffer (`emit`) and reach `out` in batches.
                // o200k and cl100k through a scanner type rather than a closure: its
                // `end` is inlined, fast path and all, so the piece loop makes no call for
                // an ASCII piece and keeps its state in registers across it.
                switch pretokenizer {
                case .r50k: encodePieces(base, n, table, into: &out, ClosurePieces { scan.r50k(base, $0, n) })
                case .cl100k: encodePieces(base, n, table, into: &out, CL100kPieces(scan: scan, b: base, n: n))
                case .o200k:
                    O200kWindowPieces.initialState(windowState)
                    encodePieces(base, n, table, into: &out, O200kWindowPieces(scan: scan, b: base, n: n, state: windowState))
                case .llama3: encodePieces(base, n, table, into: &out, ClosurePieces { scan.llama3(base, $0, n, digits: 3) })
                case .qwen2: encodePieces(base, n, table, into: &out, ClosurePieces { scan.llama3(base, $0, n, digits: 1) })
                case .whole: merge.reserveTokens(n, flushingInto: &out); merge.encode(base, n, table)
                }
            }
            merge.flush(into: &out)
        }

        /// Merges the pieces `pieces` cuts from `base[0..<n]` (`pieces.end(i)` is the end of
        /// the piece starting at i), with the scanner up to `Encoder.batch` pieces in front of the merge:
        /// each scanned piece's whole-piece slot is prefetched (`RankTable.prefetch`), so the
        /// table's cache misses (it is 12 MiB for o200k_base, far beyond L2) overlap the
        /// merges of the pieces before it instead of stalling one by one.
        @inline(__always)
        mutating func encodePieces<S: PieceEnds>(_ base: UnsafePointer<UInt8>, _ n: Int, _ table: RankTable,
                                                 into out: inout [UInt32], _ pieces: S) {
            // The common case in a loop of its own, with its conditions constant: a
            // vocabulary with whole-piece lookups and no byte holes (tiktoken's), and room
            // for the text's tokens reserved up front (a piece of m bytes gives at most m
            // tokens), so a piece that is a token is stored with no test of the buffer's end.
            // Texts over 1 MiB take the checked loop rather than reserve 4 bytes a byte.
            if table.wholeLookups && !table.hasByteHoles && n <= 1 << 20 {
                merge.reserveTokens(n, flushingInto: &out)
                piecesLoop(base, n, table, into: &out, pieces, ReservedLoop.self)
            } else {
                piecesLoop(base, n, table, into: &out, pieces, CheckedLoop.self)
            }
        }

        /// `encodePieces`' loop; `M.reserved` (a type, so that each specialization has it as
        /// a constant) says that the text's tokens fit in the buffer and the vocabulary has
        /// whole-piece lookups and no holes.
        ///
        /// Two phases a batch of up to `Encoder.batch` pieces: the scanner cuts the batch's
        /// pieces, computes each one's whole-piece key and hash and prefetches its slot; then
        /// the lookups and merges run over the batch. Each phase is a tight loop of its own
        /// whose state fits in registers. (A ring eight pieces deep, scanning one piece and
        /// looking up one in turn, kept both loops' state live at once: the scanner's
        /// position, the ring's two counters, the cursor and the table's fields were spilled
        /// to the stack and reloaded every piece.)
        @inline(__always)
        mutating func piecesLoop<S: PieceEnds, M: PieceLoopMode>(_ base: UnsafePointer<UInt8>, _ n: Int, _ table: RankTable,
                                                                 into out: inout [UInt32], _ pieces: S, _: M.Type) {
            let reserved = M.reserved
            let batch = pieceBatch
            let whole = reserved || table.wholeLookups
            // The whole-piece table's base and mask as locals: read through `table` they
            // were loaded (and the base's optional checked) twice a piece.
            let slots = table.slots.baseAddress!, mask = table.mask
            let cache = pairCache.slots
            var i = 0
            // The token buffer as a cursor and an end: the common piece, a token of its own
            // (nine in ten on chat lines), is emitted here without a trip through the merge's
            // fields, which the compiler reloaded and stored around every piece. The merge
            // gets the count back before any other piece and may move the buffer
            // (`reserveTokens`), so both are read again after.
            let fast = reserved || !table.hasByteHoles
            var cursor = merge.tokens + merge.tokenCount, limit = merge.tokens + merge.tokenCapacity
            while i < n {
                // Scan: one call site, so the scanner is inlined into this loop (a second
                // site had the compiler outline the step, a call a piece).
                var slot = batch, scanned = i
                let full = batch + 4 &* Encoder.batch
                repeat {
                    let e = pieces.end(scanned)
                    let m = e &- scanned
                    // 16 bytes can be read for all but a text's last few pieces: their key
                    // words then take no branch on the piece's length.
                    let w = table.wholeKey(base + scanned, m, readable16: scanned &+ 16 <= n)
                    if whole && m > 1 { RankTable.prefetch(w.hash, slots, mask) }
                    slot[0] = UInt64(truncatingIfNeeded: e); slot[1] = w.hash; slot[2] = w.key; slot[3] = w.key2
                    slot += 4; scanned = e
                } while scanned < n && slot < full
                // Look up and merge the batch.
                let queued = slot
                slot = batch
                while slot < queued {
                    let e = Int(truncatingIfNeeded: slot[0]), h = slot[1], k1 = slot[2], k2 = slot[3]
                    slot += 4
                    let m = e &- i
                    // Set when this piece is known to be no token (so it has two bytes or more).
                    var notToken = false
                    if reserved || (fast && cursor < limit) {
                        let r = m == 1 ? table.byteRanks[Int(base[i])]
                            : !whole ? RankTable.none
                            : m <= 16 ? RankTable.find16(m, h, k1, k2, slots, mask) : table.lookup(base + i, m, h, k1, k2)
                        if r != RankTable.none {
                            cursor.pointee = r
                            cursor += 1
                            i = e
                            continue
                        }
                        notToken = true
                    }
                    // A piece of up to 16 bytes that is no token: two tokens if it is in the
                    // cache (`PairCache`); else merged, and cached if it gave two.
                    var cached: UnsafeMutablePointer<UInt64>? = nil
                    if reserved && notToken && m <= 16 {
                        let c = PairCache.slot(cache, h)
                        let v = c[2]
                        if c[0] == k1 && c[1] == k2 && v & 31 == UInt64(m) {
                            cursor[0] = UInt32(truncatingIfNeeded: v &>> 8) & 0x1F_FFFF
                            cursor[1] = UInt32(truncatingIfNeeded: v &>> 29) & 0x1F_FFFF
                            cursor += 2
                            i = e
                            continue
                        }
                        cached = c
                    }
                    merge.tokenCount = cursor - merge.tokens
                    merge.reserveTokens(m, flushingInto: &out)
                    // A piece whose whole-piece lookup just missed goes straight to the merge
                    // from its parts, without looking itself up again.
                    if notToken {
                        let before = merge.tokenCount
                        merge.mergeParts(base + i, m, table)
                        if let c = cached, merge.tokenCount == before &+ 2 {
                            c[0] = k1; c[1] = k2
                            c[2] = UInt64(m) | UInt64(merge.tokens[before]) &<< 8 | UInt64(merge.tokens[before &+ 1]) &<< 29
                        }
                    } else {
                        merge.encode(base + i, m, table, hash: h, key: k1, key2: k2)
                    }
                    cursor = merge.tokens + merge.tokenCount; limit = merge.tokens + merge.tokenCapacity
                    i = e
                }
            }
            merge.tokenCount = cursor - merge.tokens
        }

        public mutating func encode(_ text: [UInt8], into out: inout [UInt32]) {
            text.withUnsafeBufferPointer { encode($0, into: &out) }
        }

        /// Like `encode`, but the special tokens in `allowed` written in the text become
        /// those tokens (tiktoken's `encode(text, allowed_special=...)`): the earliest
        /// occurrence wins, the longest on a tie, and the text between is encoded ordinarily.
        public mutating func encode(_ text: UnsafeBufferPointer<UInt8>, allowedSpecial allowed: [(bytes: [UInt8], id: UInt32)], into out: inout [UInt32]) {
            if allowed.isEmpty { return encode(text, into: &out) }
            var start = 0, i = 0
            let n = text.count
            while i < n {
                var best: (len: Int, id: UInt32)? = nil
                for s in allowed where s.bytes.count <= n - i && s.bytes.count > (best?.len ?? 0) && s.bytes[0] == text[i] {
                    if s.bytes.withUnsafeBufferPointer({ memcmpBytes(UnsafeRawPointer($0.baseAddress!), UnsafeRawPointer(text.baseAddress! + i), s.bytes.count) }) {
                        best = (s.bytes.count, s.id)
                    }
                }
                if let best {
                    // A single_word token inside a word is passed over, and the search goes
                    // on after it (the automaton's matches do not overlap).
                    if tokenizer.specialStrips[best.id]?.singleWord == true && !AddedTokens.isSingleWord(text, i, i + best.len) {
                        i += best.len
                        continue
                    }
                    // lstrip takes the whitespace before the match (back to the previous
                    // match's end), rstrip the whitespace after, as `tokenizers` does.
                    var from = i, to = i + best.len
                    if let strip = tokenizer.specialStrips[best.id] {
                        if strip.left {
                            while from > start {
                                var k = from - 1
                                while k > start && text[k] & 0xC0 == 0x80 { k -= 1 }
                                guard UnicodeData.isSpace(PreTokenization.scalar(Array(text[k..<from]), 0).0) else { break }
                                from = k
                            }
                        }
                        if strip.right {
                            while to < n {
                                let (c, len) = PreTokenization.scalar(Array(text[to..<min(n, to + 4)]), 0)
                                guard UnicodeData.isSpace(c) else { break }
                                to += len
                            }
                        }
                    }
                    encode(UnsafeBufferPointer(rebasing: text[start..<from]), into: &out)
                    out.append(best.id)
                    i = to
                    start = i
                } else {
                    i += 1
                }
            }
            encode(UnsafeBufferPointer(rebasing: text[start..<n]), into: &out)
        }
    }
}

/// A direct-mapped cache of pieces of up to 16 bytes that are not tokens and merge into
/// two (five in six of the pieces that reach the merge on English text, and 45% of those
/// occurred earlier in the same 20,000 lines). The merge of such a piece waits on one
/// pair-table lookup after another (`short` held 29% of `encode`'s time on English lines
/// with 4% of the pieces); a hit is one slot of three words: the piece's two key words
/// (`RankTable.wholeKey`) and its length with the two ids (21 bits each), indexed by bits
/// of the whole-piece hash that the rank table's index does not use. 4,096 slots (96 KiB):
/// 16,384 pushed the rank and pair tables' lines out of L2 (the lines 1.04-1.10x the time).
final class PairCache: @unchecked Sendable {
    static let count = 4096
    let slots = UnsafeMutablePointer<UInt64>.allocate(capacity: 3 * PairCache.count)
    init() { slots.initialize(repeating: 0, count: 3 * PairCache.count) }
    deinit { slots.deallocate() }

    @inline(__always)
    static func slot(_ slots: UnsafeMutablePointer<UInt64>, _ hash: UInt64) -> UnsafeMutablePointer<UInt64> {
        slots + 3 &* (Int(truncatingIfNeeded: hash &>> 24) & (PairCache.count &- 1))
    }
}

/// Which of `Tokenizer.Encoder.piecesLoop`'s two loops to build (a type parameter, so the
/// condition is a constant in each specialization rather than a register and a test a piece).
protocol PieceLoopMode { static var reserved: Bool { get } }
/// Room for the text's tokens reserved, whole-piece lookups, no byte holes.
enum ReservedLoop: PieceLoopMode { static var reserved: Bool { true } }
/// Anything else: the buffer's end tested before a token is stored.
enum CheckedLoop: PieceLoopMode { static var reserved: Bool { false } }
