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
    /// `<0xNN>` token of each byte (nil: none).
    let byteTokens: [UInt32?]
    let unk: UInt32?
    let fuseUnk: Bool
    /// `Prepend`'s text (nil: none) and `Replace(" ", x)`'s replacement (nil: none).
    let prepend: [UInt8]?
    let spaceReplacement: [UInt8]?
    let added: AddedTokens
    /// Each id's bytes when decoded: `▁` as a space, `<0xNN>` as its byte.
    let decoded: [UInt32: [UInt8]]

    init(vocab: [[UInt8]: UInt32], merges: [UInt64: (rank: UInt32, id: UInt32)], unk: UInt32?, fuseUnk: Bool,
         prepend: [UInt8]?, spaceReplacement: [UInt8]?, added: AddedTokens) {
        self.vocab = vocab; self.merges = merges; self.unk = unk; self.fuseUnk = fuseUnk
        self.prepend = prepend; self.spaceReplacement = spaceReplacement; self.added = added
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
        for (range, id) in added.split(text) {
            if let id { out.append(id); continue }
            var piece = Array(text[range])
            if piece.isEmpty { continue }
            if let r = spaceReplacement { piece = Self.replacing([0x20], with: r, in: piece) }
            if let p = prepend { piece = p + piece }
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
            let char = Array(w[i..<min(w.count, i + len)])
            i += len
            if let id = vocab[char] {
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
        var next = [Int](0..<n).map { $0 + 1 }, prev = [Int](0..<n).map { $0 - 1 }
        next[n - 1] = -1
        var alive = [Bool](repeating: true, count: n)
        // A min-heap of (rank << 32 | position): lowest rank first, then leftmost.
        var heap: [UInt64] = []
        func push(_ pos: Int) {
            let nx = next[pos]
            guard nx >= 0, let m = merges[UInt64(ids[pos]) << 32 | UInt64(ids[nx])] else { return }
            heap.append(UInt64(m.rank) << 32 | UInt64(pos))
            var c = heap.count - 1
            while c > 0 { let p = (c - 1) / 2; if heap[p] <= heap[c] { break }; heap.swapAt(p, c); c = p }
        }
        func pop() -> UInt64 {
            let top = heap[0]
            let last = heap.removeLast()
            if !heap.isEmpty {
                heap[0] = last
                var c = 0
                while true {
                    let l = 2 * c + 1, r = l + 1
                    var m = c
                    if l < heap.count && heap[l] < heap[m] { m = l }
                    if r < heap.count && heap[r] < heap[m] { m = r }
                    if m == c { break }
                    heap.swapAt(m, c); c = m
                }
            }
            return top
        }
        for p in 0..<(n - 1) { push(p) }
        while !heap.isEmpty {
            let top = pop()
            let rank = UInt32(top >> 32), pos = Int(top & 0xFFFF_FFFF)
            guard alive[pos], next[pos] >= 0 else { continue }
            let right = next[pos]
            // The pair may have changed since it was queued: it must still be this merge.
            guard let m = merges[UInt64(ids[pos]) << 32 | UInt64(ids[right])], m.rank == rank else { continue }
            ids[pos] = m.id
            alive[right] = false
            next[pos] = next[right]
            if next[right] >= 0 { prev[next[right]] = pos }
            if prev[pos] >= 0 { push(prev[pos]) }
            push(pos)
        }
        var p = 0
        while p >= 0 && p < n { if alive[p] { out.append(ids[p]) }; p = next[p] }
    }
}
