#if canImport(Glibc)
import Glibc
#endif
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
    /// The same as an open-addressing table (key + 1, 0 = empty), read per character.
    let charKeys: UnsafeMutableBufferPointer<UInt32>
    let charValues: UnsafeMutableBufferPointer<UInt32>
    let charShift: UInt32

    /// ASCII characters' ids (UInt32.max: none), read without hashing.
    let asciiIDs: [UInt32]

    @inline(__always) func charID(_ key: UInt32) -> UInt32? {
        if key < 0x80 {
            let id = asciiIDs[Int(key)]
            return id == UInt32.max ? nil : id
        }
        let k = key &+ 1
        var i = Int(truncatingIfNeeded: (k &* 0x9E37_79B1) >> charShift)
        while true {
            let s = charKeys[i]
            if s == k { return charValues[i] }
            if s == 0 { return nil }
            i = (i + 1) & (charKeys.count - 1)
        }
    }

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
        // The marker spaces become: the Replace's or Metaspace's, or "▁" for a .model that
        // escapes spaces (without escaping, words are not cut).
        let marker: [UInt8]? = replacement ?? (modelNormalizer.map { $0.escapeWhitespaces ? [0xE2, 0x96, 0x81] : nil } ?? nil)
        wordSplits = marker.flatMap { Self.wordSplits(marker: $0, vocab: vocab, merges: merges) }
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
        asciiIDs = (0..<128).map { chars[UInt32($0)] ?? UInt32.max }
        var charBits = 4
        while (1 << charBits) < chars.count * 2 + 2 { charBits += 1 }
        charKeys = .allocate(capacity: 1 << charBits); charKeys.initialize(repeating: 0)
        charValues = .allocate(capacity: 1 << charBits); charValues.initialize(repeating: 0)
        charShift = UInt32(32 - charBits)
        for (key, id) in chars {
            let k = key &+ 1
            var i = Int(truncatingIfNeeded: (k &* 0x9E37_79B1) >> charShift)
            while charKeys[i] != 0 { i = (i + 1) & (charKeys.count - 1) }
            charKeys[i] = k
            charValues[i] = id
        }
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

    deinit { pairKeys.deallocate(); pairValues.deallocate(); charKeys.deallocate(); charValues.deallocate() }

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

    func encode(_ text: [UInt8], state: State, into out: inout [UInt32]) {
        if let modelNormalizer {
            // A .model file: normalize the whole text, then cut out the user-defined pieces.
            let normalized = modelNormalizer.normalize(text)
            for (range, id) in added.split(normalized) {
                if let id { out.append(id); continue }
                if !range.isEmpty { mergeText(normalized[range], state, into: &out) }
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
                guard metaspace.split else { mergeText(piece[...], state, into: &out); continue }
                // Words begin at each replacement (tokenizers' MergedWithNext).
                var start = 0, i = 1
                while i < piece.count {
                    if piece[i] == r[0] && i + r.count <= piece.count && piece[i..<(i + r.count)].elementsEqual(r) {
                        mergeText(piece[start..<i], state, into: &out)
                        start = i
                        i += r.count
                    } else {
                        i += 1
                    }
                }
                mergeText(piece[start...], state, into: &out)
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
            mergeText(piece[...], state, into: &out)
        }
    }

    /// A stretch of normalized text: cut into words where no merge can join across (see
    /// `wordSplits`), each merged once and then taken from the thread's cache.
    func mergeText(_ t: ArraySlice<UInt8>, _ state: State, into out: inout [UInt32]) {
        guard let r = wordSplits, t.count > r.count else { mergeWord(t, state, into: &out); return }
        let base = t.startIndex
        var start = base
        // A word starts at a marker that follows a character other than the marker.
        t.withUnsafeBufferPointer { b in
            r.withUnsafeBufferPointer { m in
                let n = b.count, k = m.count
                @inline(__always) func marker(at i: Int) -> Bool {
                    if b[i] != m[0] { return false }
                    for j in 1..<k where b[i + j] != m[j] { return false }
                    return true
                }
                var i = 1
                while i + k <= n {
                    if marker(at: i) && !(i >= k && marker(at: i - k)) {
                        cachedWord(t[start..<(base + i)], state, into: &out)
                        start = base + i
                    }
                    i += 1
                }
            }
        }
        cachedWord(t[start...], state, into: &out)
    }

    func cachedWord(_ w: ArraySlice<UInt8>, _ state: State, into out: inout [UInt32]) {
        if w.count > State.maxWordBytes { mergeWord(w, state, into: &out); return }
        if state.lookup(w, into: &out) { return }
        let before = out.count
        mergeWord(w, state, into: &out)
        state.insert(w, out[before...])
    }

    /// One word: its characters as symbols, then the merges.
    func mergeWord(_ w: ArraySlice<UInt8>, _ state: State, into out: inout [UInt32]) {
        var ids = state.takeIDs()
        defer { state.giveIDs(ids) }
        // An unknown character's token waits (to fuse with the next unknown one) until a
        // character of the vocabulary comes, or the word ends. Byte-fallback tokens do not
        // wait for it: `tokenizers`' merge_word adds them straight away, so a pending unknown
        // token lands after them ("😀\n" -> ▁, <0x0A>, <unk>); this keeps that order.
        var pendingUnk = false
        w.withUnsafeBufferPointer { w in
            var i = 0
            let n = w.count
            while i < n {
                let lead = w[i]
                let len = min(n - i, lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4)
                var key: UInt32 = 0
                for j in 0..<len { key = key << 8 | UInt32(w[i + j]) }
                let char = i..<(i + len)
                i += len
                if let id = charID(key) {
                    if pendingUnk, let unk { ids.append(unk); pendingUnk = false }
                    ids.append(id)
                    continue
                }
                if char.allSatisfy({ byteTokens[Int(w[$0])] != nil }) {
                    for j in char { ids.append(byteTokens[Int(w[j])]!) }
                    continue
                }
                guard let unk else { continue }   // no unknown token: the character is dropped
                if pendingUnk && !fuseUnk { ids.append(unk) }
                pendingUnk = true
            }
        }
        if pendingUnk, let unk { ids.append(unk) }
        let n = ids.count
        if n < 2 { out += ids; return }
        if n <= State.smallWord { mergeSmall(&ids, state, into: &out); return }
        // Linked symbols and a min-heap of (rank << 32 | position) in raw buffers: lowest
        // rank first, then leftmost, as tokenizers' merge_all orders its queue.
        state.reserveHeap(n)
        let next = state.next, prev = state.prev, alive = state.alive, heap = state.heap
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

    /// A short word's merges by scanning: each step takes the pair of lowest rank, the
    /// leftmost on ties — the order the heap gives long words (and `tokenizers`' queue).
    /// Pair values are kept per position and only the merged symbol's two pairs change.
    func mergeSmall(_ ids: inout [UInt32], _ state: State, into out: inout [UInt32]) {
        var n = ids.count
        let pairs = state.pairs
        ids.withUnsafeMutableBufferPointer { ids in
            for k in 0..<(n - 1) { pairs[k] = merge(ids[k], ids[k + 1]) ?? UInt64.max }
            while n > 1 {
                var best = 0
                // By rank alone (equal-score merges of a .model share a rank): leftmost wins.
                for k in 1..<(n - 1) where pairs[k] >> 32 < pairs[best] >> 32 { best = k }
                let m = pairs[best]
                if m == UInt64.max { break }
                ids[best] = UInt32(truncatingIfNeeded: m)
                // Drop symbol best + 1 and its pair.
                var k = best + 1
                while k < n - 1 { ids[k] = ids[k + 1]; pairs[k] = pairs[k + 1]; k += 1 }
                n -= 1
                if best + 1 < n { pairs[best] = merge(ids[best], ids[best + 1]) ?? UInt64.max }
                if best > 0 { pairs[best - 1] = merge(ids[best - 1], ids[best]) ?? UInt64.max }
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: ids[0..<n]))
        }
    }

    /// Where words may be cut: the space marker when no merge joins a token ending in
    /// another character with one starting with the marker (true of Llama 2, Mistral,
    /// Phi-3 and ChatGLM): then a word (markers, then other characters) merges alone and
    /// equal words merge alike, so each thread caches them. nil when a merge crosses.
    let wordSplits: [UInt8]?

    static func wordSplits(marker: [UInt8], vocab: [[UInt8]: UInt32], merges: [UInt64: (rank: UInt32, id: UInt32)]) -> [UInt8]? {
        if marker.isEmpty { return nil }
        var bytesOf: [UInt32: [UInt8]] = [:]
        bytesOf.reserveCapacity(vocab.count)
        for (t, id) in vocab { bytesOf[id] = t }
        for key in merges.keys {
            guard let a = bytesOf[UInt32(truncatingIfNeeded: key >> 32)], let b = bytesOf[UInt32(truncatingIfNeeded: key)] else { return nil }
            if b.starts(with: marker) && !(a.count >= marker.count && a[(a.count - marker.count)...].elementsEqual(marker)) { return nil }
        }
        return marker
    }

    /// One thread's scratch memory and cache of merged words (an `Encoder` owns one).
    final class State {
        static let maxWordBytes = 48
        static let smallWord = 16
        let pairs = UnsafeMutablePointer<UInt64>.allocate(capacity: State.smallWord)
        @exclusivity(unchecked) private var spareIDs: [UInt32] = []

        /// The heap path's links, flags and queue, grown to the longest word seen.
        private(set) var next = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
        private(set) var prev = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
        private(set) var alive = UnsafeMutablePointer<Bool>.allocate(capacity: 1)
        private(set) var heap = UnsafeMutablePointer<UInt64>.allocate(capacity: 4)
        @exclusivity(unchecked) private var heapCapacity = 1

        func reserveHeap(_ n: Int) {
            if n <= heapCapacity { return }
            next.deallocate(); prev.deallocate(); alive.deallocate(); heap.deallocate()
            heapCapacity = max(n, 2 * heapCapacity)
            next = .allocate(capacity: heapCapacity); prev = .allocate(capacity: heapCapacity)
            alive = .allocate(capacity: heapCapacity); heap = .allocate(capacity: 2 * heapCapacity + 2)
        }

        // The cache: open addressing over word hashes; words and ids in two arenas, all
        // dropped together when full (a text's words repeat; the cache need not be exact
        // about which to keep).
        private static let slotBits = 17
        @exclusivity(unchecked) private var hashes = [UInt64](repeating: 0, count: 1 << State.slotBits)
        @exclusivity(unchecked) private var spans = [(word: Int32, wordLen: Int32, ids: Int32, idsLen: Int32)](repeating: (0, 0, 0, 0), count: 1 << State.slotBits)
        @exclusivity(unchecked) private var words: [UInt8] = []
        @exclusivity(unchecked) private var idArena: [UInt32] = []
        @exclusivity(unchecked) private var used = 0

        init() {
            words.reserveCapacity(1 << 20)
            idArena.reserveCapacity(1 << 18)
        }
        deinit { pairs.deallocate(); next.deallocate(); prev.deallocate(); alive.deallocate(); heap.deallocate() }

        func takeIDs() -> [UInt32] {
            var a = spareIDs
            spareIDs = []
            a.removeAll(keepingCapacity: true)
            return a
        }
        func giveIDs(_ a: [UInt32]) { spareIDs = a }

        @inline(__always)
        static func hash(_ w: ArraySlice<UInt8>) -> UInt64 {
            w.withUnsafeBufferPointer { b in
                var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(b.count)
                let raw = UnsafeRawPointer(b.baseAddress!)
                var i = 0
                while i + 8 <= b.count {
                    h = (h ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xFF51_AFD7_ED55_8CCD
                    h ^= h >> 32
                    i += 8
                }
                var tail: UInt64 = 0
                var shift: UInt64 = 0
                while i < b.count { tail |= UInt64(b[i]) << shift; shift += 8; i += 1 }
                h = (h ^ tail) &* 0xC4CE_B9FE_1A85_EC53
                h ^= h >> 29
                return h | 1   // 0 marks an empty slot
            }
        }

        func lookup(_ w: ArraySlice<UInt8>, into out: inout [UInt32]) -> Bool {
            let h = Self.hash(w)
            let mask = hashes.count - 1
            var i = Int(truncatingIfNeeded: h) & mask
            while hashes[i] != 0 {
                if hashes[i] == h {
                    let s = spans[i]
                    if Int(s.wordLen) == w.count && words.withUnsafeBufferPointer({ a in
                        w.withUnsafeBufferPointer { b in memcmp(a.baseAddress! + Int(s.word), b.baseAddress!, b.count) == 0 }
                    }) {
                        idArena.withUnsafeBufferPointer { a in
                            out.append(contentsOf: UnsafeBufferPointer(start: a.baseAddress! + Int(s.ids), count: Int(s.idsLen)))
                        }
                        return true
                    }
                }
                i = (i + 1) & mask
            }
            return false
        }

        func insert(_ w: ArraySlice<UInt8>, _ ids: ArraySlice<UInt32>) {
            if used >= hashes.count / 2 || words.count + w.count > Int(Int32.max) / 2 {
                for k in hashes.indices { hashes[k] = 0 }
                words.removeAll(keepingCapacity: true)
                idArena.removeAll(keepingCapacity: true)
                used = 0
            }
            let h = Self.hash(w)
            let mask = hashes.count - 1
            var i = Int(truncatingIfNeeded: h) & mask
            while hashes[i] != 0 { i = (i + 1) & mask }
            hashes[i] = h
            spans[i] = (Int32(words.count), Int32(w.count), Int32(idArena.count), Int32(ids.count))
            words.append(contentsOf: w)
            idArena.append(contentsOf: ids)
            used += 1
        }
    }
}
