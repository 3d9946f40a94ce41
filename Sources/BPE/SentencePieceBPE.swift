import TokenmillCore

/// SentencePiece-style BPE as a tokenizer.json describes it (Llama 2, Mistral, Phi-3, ...):
/// the text is normalized by `Prepend("▁")` and `Replace(" ", "▁")`, is one word (no
/// pre-tokenizer), and is merged from its *characters* (not bytes): a character the
/// vocabulary lacks becomes its UTF-8 bytes as `<0xNN>` tokens (`byte_fallback`), else the
/// unknown token (consecutive ones fused with `fuse_unk`). Merges apply lowest rank first,
/// leftmost on ties, as `tokenizers`' `Word::merge_all` does. Non-special added tokens
/// (matched in the raw text, `lstrip`/`rstrip` honoured) cut the text first, and each
/// piece between them is normalized on its own (so each gets its own `▁`), as in
/// `tokenizers`.
final class SentencePieceBPE: @unchecked Sendable {
    /// Token (UTF-8 of its string) -> id.
    let vocab: [[UInt8]: UInt32]
    /// (left id << 32 | right id) -> (rank, merged id).
    let merges: [UInt64: (rank: UInt32, id: UInt32)]
    /// The same as an open-addressing table (linear probing, load < 0.5): slot keys
    /// (`pairKey`, 0 = empty) and values (rank << 32 | merged id), probed without hashing
    /// through `Hasher` in the merge loop.
    let pairKeys: UnsafeMutableBufferPointer<UInt64>
    let pairValues: UnsafeMutableBufferPointer<UInt64>
    let pairShift: UInt64
    /// `<0xNN>` token of each byte (nil: none).
    let byteTokens: [UInt32?]
    let unk: UInt32?
    let fuseUnk: Bool
    /// `Prepend`'s text (nil: none) and `Replace(" ", x)`'s replacement (nil: none).
    /// A tokenizer.json normalizer's steps, in order, on each piece between raw added
    /// tokens: `Prepend(s)` and `Replace(String a, b)`.
    enum NormalizerStep: Sendable {
        case prepend([UInt8])
        case replace([UInt8], [UInt8])
    }
    let normalizerSteps: [NormalizerStep]
    /// What a space became (`Replace(" ", x)` or Metaspace's replacement): decoded as a space.
    let spaceReplacement: [UInt8]?
    let added: AddedTokens
    /// Each id's bytes when decoded: `▁` as a space, `<0xNN>` as its byte.
    let decoded: [UInt32: [UInt8]]
    /// The id of each single-character token, by the character's UTF-8 bytes packed into
    /// a UInt32 (no array is made per character of the text).
    let charIDs: [UInt32: UInt32]

    /// A SentencePiece model file's normalizer (`SentencePieceModelFile`): applied to the
    /// whole text before the `added` (user-defined) pieces are cut out of it, where a
    /// tokenizer.json's Prepend/Replace apply to each piece between raw added tokens.
    struct ModelNormalizer: Sendable {
        var addDummyPrefix: Bool
        var removeExtraWhitespaces: Bool
        var escapeWhitespaces: Bool

        /// sentencepiece's `Normalizer::Normalize` with an identity character map.
        func normalize(_ text: [UInt8]) -> [UInt8] {
            var t = text[...]
            if removeExtraWhitespaces {
                while t.first == 0x20 { t = t.dropFirst() }
            }
            if t.isEmpty { return [] }
            let space: [UInt8] = escapeWhitespaces ? [0xE2, 0x96, 0x81] : [0x20]
            var out: [UInt8] = []
            out.reserveCapacity(t.count + 3 + t.count / 4)
            if addDummyPrefix { out += space }
            var previousSpace = removeExtraWhitespaces
            for c in t {
                if c == 0x20 {
                    if previousSpace { continue }
                    out += space
                    previousSpace = removeExtraWhitespaces
                } else {
                    out.append(c)
                    previousSpace = false
                }
            }
            if removeExtraWhitespaces {
                while out.count >= space.count && out[(out.count - space.count)...].elementsEqual(space) { out.removeLast(space.count) }
            }
            return out
        }
    }
    let modelNormalizer: ModelNormalizer?

    /// A tokenizer.json `Metaspace` pre-tokenizer (Mistral v0.3, Llama files converted with
    /// `legacy: false`), applied to each piece between raw added tokens as `tokenizers`
    /// does: spaces become `replacement`, which is prepended (unless the piece starts with
    /// it) to every piece (`always`) or to the piece at the start of the text (`first`);
    /// with `split`, each `replacement` starts a new word (merges never cross words).
    struct Metaspace: Sendable {
        enum Scheme: String, Sendable { case always, first, never }
        var replacement: [UInt8]
        var scheme: Scheme
        var split: Bool
    }
    let metaspace: Metaspace?

    init(vocab: [[UInt8]: UInt32], merges: [UInt64: (rank: UInt32, id: UInt32)], unk: UInt32?, fuseUnk: Bool,
         normalizerSteps: [NormalizerStep] = [], added: AddedTokens, modelNormalizer: ModelNormalizer? = nil,
         metaspace: Metaspace? = nil) {
        self.vocab = vocab; self.merges = merges; self.unk = unk; self.fuseUnk = fuseUnk
        self.normalizerSteps = normalizerSteps; self.added = added
        var replacement: [UInt8]? = metaspace?.replacement
        for case .replace(let a, let b) in normalizerSteps where a == [0x20] { replacement = b }
        self.spaceReplacement = replacement
        self.modelNormalizer = modelNormalizer; self.metaspace = metaspace
        var bytes = [UInt32?](repeating: nil, count: 256)
        var decoded: [UInt32: [UInt8]] = [:]
        let hex = Array("0123456789ABCDEF".utf8)
        for b in 0..<256 {
            let name = Array("<0x".utf8) + [hex[b >> 4], hex[b & 15]] + [UInt8(ascii: ">")]
            bytes[b] = vocab[name]
        }
        let space = spaceReplacement ?? Array("\u{2581}".utf8)
        for (token, id) in vocab {
            decoded[id] = Self.replacing(space, with: [0x20], in: token)
        }
        for (b, id) in bytes.enumerated() { if let id { decoded[id] = [UInt8(b)] } }
        byteTokens = bytes
        self.decoded = decoded
        var chars: [UInt32: UInt32] = [:]
        for (token, id) in vocab where !token.isEmpty && token.count <= 4 {
            let lead = token[0]
            let len = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
            if len == token.count { chars[Self.pack(token[...])] = id }
        }
        charIDs = chars
        var bits = 4
        while (1 << bits) < merges.count * 2 + 2 { bits += 1 }
        pairKeys = .allocate(capacity: 1 << bits); pairKeys.initialize(repeating: 0)
        pairValues = .allocate(capacity: 1 << bits); pairValues.initialize(repeating: 0)
        pairShift = UInt64(64 - bits)
        for (key, m) in merges {
            let k = key &+ 1   // ids start at 0: +1 keeps 0 free for "empty"
            var i = Int(truncatingIfNeeded: (k &* 0x9E37_79B9_7F4A_7C15) >> pairShift)
            while pairKeys[i] != 0 { i = (i + 1) & (pairKeys.count - 1) }
            pairKeys[i] = k
            pairValues[i] = UInt64(m.rank) << 32 | UInt64(m.id)
        }
    }

    deinit { pairKeys.deallocate(); pairValues.deallocate() }

    /// (rank << 32 | merged id) of merging `a` then `b`, or nil.
    @inline(__always) func merge(_ a: UInt32, _ b: UInt32) -> UInt64? {
        let k = (UInt64(a) << 32 | UInt64(b)) &+ 1
        var i = Int(truncatingIfNeeded: (k &* 0x9E37_79B9_7F4A_7C15) >> pairShift)
        while true {
            let s = pairKeys[i]
            if s == k { return pairValues[i] }
            if s == 0 { return nil }
            i = (i + 1) & (pairKeys.count - 1)
        }
    }

    /// Up to four bytes as one key (the length is implied by the lead byte).
    @inline(__always) static func pack(_ c: ArraySlice<UInt8>) -> UInt32 {
        var k: UInt32 = 0
        for b in c { k = k << 8 | UInt32(b) }
        return k
    }

    static func replacing(_ a: [UInt8], with b: [UInt8], in s: [UInt8]) -> [UInt8] {
        if a.isEmpty || s.count < a.count { return s }
        var out: [UInt8] = []
        out.reserveCapacity(s.count)
        var i = 0
        while i < s.count {
            if i + a.count <= s.count && s[i] == a[0] && s[i..<(i + a.count)].elementsEqual(a) { out += b; i += a.count } else { out.append(s[i]); i += 1 }
        }
        return out
    }

    func encode(_ text: [UInt8], into out: inout [UInt32]) {
        if let modelNormalizer {
            // A .model file: normalize the whole text, then cut out the user-defined pieces.
            let normalized = modelNormalizer.normalize(text)
            for (range, id) in added.split(normalized) {
                if let id { out.append(id); continue }
                if !range.isEmpty { mergeWord(Array(normalized[range]), into: &out) }
            }
            return
        }
        if let metaspace {
            for (range, id) in added.split(text) {
                if let id { out.append(id); continue }
                if range.isEmpty { continue }
                let r = metaspace.replacement
                var piece = Self.replacing([0x20], with: r, in: Array(text[range]))
                let prepends = metaspace.scheme == .always || (metaspace.scheme == .first && range.lowerBound == 0)
                if prepends && !piece.starts(with: r) { piece = r + piece }
                guard metaspace.split else { mergeWord(piece, into: &out); continue }
                // Words begin at each replacement (tokenizers' MergedWithNext).
                var start = 0, i = 1
                while i < piece.count {
                    if piece[i] == r[0] && i + r.count <= piece.count && piece[i..<(i + r.count)].elementsEqual(r) {
                        mergeWord(Array(piece[start..<i]), into: &out)
                        start = i
                        i += r.count
                    } else {
                        i += 1
                    }
                }
                mergeWord(Array(piece[start...]), into: &out)
            }
            return
        }
        for (range, id) in added.split(text) {
            if let id { out.append(id); continue }
            var piece = Array(text[range])
            if piece.isEmpty { continue }
            for step in normalizerSteps {
                switch step {
                case .prepend(let p): piece = p + piece
                case .replace(let a, let b): piece = Self.replacing(a, with: b, in: piece)
                }
            }
            mergeWord(piece, into: &out)
        }
    }

    /// One word: its characters as symbols, then the merges.
    func mergeWord(_ w: [UInt8], into out: inout [UInt32]) {
        var ids: [UInt32] = []
        ids.reserveCapacity(w.count)
        // An unknown character's token waits (to fuse with the next unknown one) until a
        // character of the vocabulary comes, or the word ends. Byte-fallback tokens do not
        // wait for it: `tokenizers`' merge_word adds them straight away, so a pending unknown
        // token lands after them ("😀\n" -> ▁, <0x0A>, <unk>); this keeps that order.
        var pendingUnk = false
        var i = 0
        while i < w.count {
            let lead = w[i]
            let len = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
            let char = w[i..<min(w.count, i + len)]
            i += len
            if let id = charIDs[Self.pack(char)] {
                if pendingUnk, let unk { ids.append(unk); pendingUnk = false }
                ids.append(id)
                continue
            }
            let fallback = char.map { byteTokens[Int($0)] }
            if !fallback.contains(where: { $0 == nil }) {
                for id in fallback { ids.append(id!) }
                continue
            }
            guard let unk else { continue }   // no unknown token: the character is dropped
            if pendingUnk && !fuseUnk { ids.append(unk) }
            pendingUnk = true
        }
        if pendingUnk, let unk { ids.append(unk) }
        let n = ids.count
        if n < 2 { out += ids; return }
        // Linked symbols and a min-heap of (rank << 32 | position) in raw buffers: lowest
        // rank first, then leftmost, as tokenizers' merge_all orders its queue.
        let next = UnsafeMutablePointer<Int32>.allocate(capacity: n), prev = UnsafeMutablePointer<Int32>.allocate(capacity: n)
        let alive = UnsafeMutablePointer<Bool>.allocate(capacity: n)
        let heap = UnsafeMutablePointer<UInt64>.allocate(capacity: 2 * n + 2)
        defer { next.deallocate(); prev.deallocate(); alive.deallocate(); heap.deallocate() }
        for k in 0..<n { next[k] = Int32(k + 1); prev[k] = Int32(k - 1); alive[k] = true }
        next[n - 1] = -1
        var count = 0
        ids.withUnsafeMutableBufferPointer { ids in
            @inline(__always) func push(_ pos: Int) {
                let nx = Int(next[pos])
                guard nx >= 0, let m = merge(ids[pos], ids[nx]) else { return }
                var c = count
                heap[c] = (m >> 32) << 32 | UInt64(pos)
                count += 1
                while c > 0 {
                    let p = (c - 1) >> 1
                    if heap[p] <= heap[c] { break }
                    let t = heap[p]; heap[p] = heap[c]; heap[c] = t
                    c = p
                }
            }
            for p in 0..<(n - 1) { push(p) }
            while count > 0 {
                let top = heap[0]
                count -= 1
                if count > 0 {
                    heap[0] = heap[count]
                    var c = 0
                    while true {
                        let l = 2 * c + 1, r = l + 1
                        var m = c
                        if l < count && heap[l] < heap[m] { m = l }
                        if r < count && heap[r] < heap[m] { m = r }
                        if m == c { break }
                        let t = heap[m]; heap[m] = heap[c]; heap[c] = t
                        c = m
                    }
                }
                let rank = top >> 32, pos = Int(top & 0xFFFF_FFFF)
                guard alive[pos], next[pos] >= 0 else { continue }
                let right = Int(next[pos])
                // The pair may have changed since it was queued: it must still be this merge.
                guard let m = merge(ids[pos], ids[right]), m >> 32 == rank else { continue }
                ids[pos] = UInt32(truncatingIfNeeded: m)
                alive[right] = false
                next[pos] = next[right]
                if next[right] >= 0 { prev[Int(next[right])] = Int32(pos) }
                if prev[pos] >= 0 { push(Int(prev[pos])) }
                push(pos)
            }
        }
        var p = 0
        while p >= 0 && p < n { if alive[p] { out.append(ids[p]) }; p = Int(next[p]) }
    }
}
