import TokenmillCore

/// The non-special `added_tokens` of a tokenizer.json, found in text as the `tokenizers`
/// library finds them: leftmost-longest over all token contents (its Aho-Corasick
/// `LeftmostLongest`), searching on from the end of each match; `lstrip` takes the
/// whitespace before the match into it, `rstrip` the whitespace after. Tokens marked
/// `normalized` are matched in the normalized text, the others in the raw text.
/// Special added tokens are never matched in data (they come only from templates).
struct AddedTokens: Sendable {
    struct Entry: Sendable {
        var bytes: [UInt8]
        var id: UInt32
        var lstrip: Bool
        var rstrip: Bool
        /// Matched only where no word character (`\w`) touches it on either side.
        var singleWord = false
    }

    /// `tokenizers`' single_word rule: the match at `start..<stop` of `text` counts only
    /// when the character before it and the one after it (where there are any) are not
    /// word characters (`isWord`).
    static func isSingleWord(_ text: UnsafeBufferPointer<UInt8>, _ start: Int, _ stop: Int) -> Bool {
        if start > 0 {
            var k = start - 1
            while k > 0 && text[k] & 0xC0 == 0x80 { k -= 1 }
            if isWord(PreTokenization.scalar(text, k).0) { return false }
        }
        if stop < text.count && isWord(PreTokenization.scalar(text, stop).0) { return false }
        return true
    }

    /// Rust's regex `\w`, which `tokenizers` checks single_word with: Alphabetic (letters,
    /// letter numbers, Other_Alphabetic such as circled letters), marks, decimal digits,
    /// connector punctuation and the join controls. (Oniguruma's `\w`, `CharSet.isWord`,
    /// also takes superscript digits and vulgar fractions, and not the join controls.)
    static func isWord(_ c: UInt32) -> Bool {
        switch c {
        case 0xB2...0xB3, 0xB9, 0xBC...0xBE: return false
        case 0x200C...0x200D: return true
        default: return CharSet.isWord(c)
        }
    }

    /// Entries by their first byte, longest first.
    private var byFirstByte: [[Entry]] = Array(repeating: [], count: 256)
    var isEmpty = true

    init(_ entries: [Entry]) {
        for e in entries where !e.bytes.isEmpty {
            byFirstByte[Int(e.bytes[0])].append(e)
            isEmpty = false
        }
        for k in 0..<256 { byFirstByte[k].sort { $0.bytes.count > $1.bytes.count } }
    }

    /// The text cut into pieces: (range, id of the added token or nil for plain text).
    func split(_ text: [UInt8]) -> [(Range<Int>, UInt32?)] {
        if isEmpty || text.isEmpty { return [(0..<text.count, nil)] }
        var pieces: [(Range<Int>, UInt32?)] = []
        var startOffset = 0
        var searchFrom = 0
        let n = text.count
        while searchFrom < n {
            guard let (at, e) = leftmostLongest(text, from: searchFrom) else { break }
            var start = at, stop = at + e.bytes.count
            searchFrom = stop
            // A single_word token inside a word is passed over (and the search goes on
            // after it, as the automaton's non-overlapping matches do).
            if e.singleWord && !text.withUnsafeBufferPointer({ Self.isSingleWord($0, start, stop) }) { continue }
            if e.lstrip {
                var s = start
                while s > 0, let (c, len) = lastScalar(text, before: s), UnicodeData.isSpace(c) { s -= len }
                start = max(s, startOffset)
            }
            if e.rstrip {
                while stop < n {
                    let (c, len) = PreTokenization.scalar(text, stop)
                    guard UnicodeData.isSpace(c) else { break }
                    stop += len
                }
            }
            if startOffset < start { pieces.append((startOffset..<start, nil)) }
            pieces.append((start..<stop, e.id))
            startOffset = stop
        }
        if startOffset < n { pieces.append((startOffset..<n, nil)) }
        return pieces
    }

    private func leftmostLongest(_ t: [UInt8], from: Int) -> (Int, Entry)? {
        var i = from
        while i < t.count {
            for e in byFirstByte[Int(t[i])] where e.bytes.count <= t.count - i {
                var k = 1
                while k < e.bytes.count && e.bytes[k] == t[i + k] { k += 1 }
                if k == e.bytes.count { return (i, e) }
            }
            i += 1
        }
        return nil
    }

    private func lastScalar(_ t: [UInt8], before s: Int) -> (UInt32, Int)? {
        var k = s - 1
        while k > 0 && t[k] & 0xC0 == 0x80 { k -= 1 }
        return (PreTokenization.scalar(t, k).0, s - k)
    }
}
