import CIntrinsics

/// Hand-written scanners equal to the pre-tokenization regexes of OpenAI's encodings.
///
/// Each scanner returns the end of the piece that starts at `i`; pieces tile the text
/// (every pattern has an alternative for every character class). The scanners follow
/// the regex engine's leftmost-first semantics alternative by alternative; the comment
/// on each case names the alternative and says how backtracking resolves. Input must be
/// valid UTF-8 (callers repair it first).
///
/// r50k/p50k: `'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s`
/// cl100k:    `'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s`
/// o200k:     `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?`
///            `|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?`
///            `|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`
/// llama3:    `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
/// qwen2:     the same with `\p{N}` for `\p{N}{1,3}`
public enum Pretokenizer: String, Sendable {
    case r50k, cl100k, o200k
    /// Llama 3's pattern (and Qwen2's, `qwen2`, with single digits): cl100k's letters and
    /// symbols, o200k's whitespace rules.
    case llama3, qwen2
    /// No splitting: the whole text is one piece (`ByteLevel` with `use_regex: false`).
    case whole

    /// Calls `piece(start, end)` for every pre-token of `b[0..<n]`, in order.
    @inline(__always)
    public func split(_ b: UnsafePointer<UInt8>, _ n: Int, _ piece: (Int, Int) -> Void) {
        let scan = Scan()
        var i = 0
        switch self {
        case .r50k: while i < n { let e = scan.r50k(b, i, n); piece(i, e); i = e }
        case .cl100k: while i < n { let e = scan.cl100k(b, i, n); piece(i, e); i = e }
        case .o200k: while i < n { let e = scan.o200k(b, i, n); piece(i, e); i = e }
        case .llama3: while i < n { let e = scan.llama3(b, i, n, digits: 3); piece(i, e); i = e }
        case .qwen2: while i < n { let e = scan.llama3(b, i, n, digits: 1); piece(i, e); i = e }
        case .whole: if n > 0 { piece(0, n) }
        }
    }

    /// The ends of o200k's pieces of `b`, through the 64-byte windows (`O200kWindowPieces`,
    /// the encoder's scanner) or the byte scanner alone: the two must agree
    /// (`O200kWindowTests` and `tokenmill-bench wincheck` compare them).
    public static func o200kPieceEnds(_ b: UnsafeBufferPointer<UInt8>, windows: Bool) -> [Int] {
        guard let base = b.baseAddress, b.count > 0 else { return [] }
        let n = b.count, scan = Scan()
        var ends: [Int] = []
        var i = 0
        if windows {
            let state = UnsafeMutablePointer<Int>.allocate(capacity: O200kWindowPieces.stateWords)
            defer { state.deallocate() }
            O200kWindowPieces.initialState(state)
            let pieces = O200kWindowPieces(scan: scan, b: base, n: n, state: state)
            while i < n { i = pieces.end(i); ends.append(i) }
        } else {
            while i < n { i = scan.o200k(base, i, n); ends.append(i) }
        }
        return ends
    }
}

/// The scanners. The class tables are held as plain pointers in this struct, so the hot
/// loop reads them from registers instead of re-checking a lazily initialised global on
/// every scalar; ASCII bytes take one table load and no UTF-8 decoding.
struct Scan {
    let ascii: UnsafePointer<UInt8>
    let index: UnsafePointer<UInt16>
    let blocks: UnsafePointer<UInt8>

    init() {
        let t = CharClass.tables
        index = t.index
        blocks = t.blocks
        ascii = blocks + Int(index[0]) &<< 8
    }

    // MARK: - helpers

    /// Decodes the scalar at `i` (valid UTF-8) and returns it with its byte length.
    @inline(__always)
    static func decode(_ b: UnsafePointer<UInt8>, _ i: Int) -> (UInt32, Int) {
        let c0 = UInt32(b[i])
        if c0 < 0x80 { return (c0, 1) }
        if c0 < 0xE0 { return ((c0 & 0x1F) &<< 6 | UInt32(b[i &+ 1] & 0x3F), 2) }
        if c0 < 0xF0 { return ((c0 & 0x0F) &<< 12 | UInt32(b[i &+ 1] & 0x3F) &<< 6 | UInt32(b[i &+ 2] & 0x3F), 3) }
        return ((c0 & 0x07) &<< 18 | UInt32(b[i &+ 1] & 0x3F) &<< 12 | UInt32(b[i &+ 2] & 0x3F) &<< 6 | UInt32(b[i &+ 3] & 0x3F), 4)
    }

    @inline(__always)
    func classAt(_ b: UnsafePointer<UInt8>, _ i: Int) -> (UInt8, Int) {
        let c = b[i]
        if c < 0x80 { return (ascii[Int(c)], 1) }
        let (s, l) = Scan.decode(b, i)
        return (blocks[Int(index[Int(s &>> 8)]) &<< 8 | Int(s & 0xFF)], l)
    }

    /// End of the run of scalars from `i` whose class intersects `mask`.
    @inline(__always)
    func run(_ b: UnsafePointer<UInt8>, _ i: Int, _ n: Int, _ mask: UInt8) -> Int {
        var j = i
        while j < n {
            let (k, l) = classAt(b, j)
            if k & mask == 0 { break }
            j &+= l
        }
        return j
    }

    /// End of the run of "other" scalars (`[^\s\p{L}\p{N}]`) from `i`.
    @inline(__always)
    func otherRun(_ b: UnsafePointer<UInt8>, _ i: Int, _ n: Int) -> Int {
        var j = i
        while j < n {
            let (k, l) = classAt(b, j)
            if !isOther(k) { break }
            j &+= l
        }
        return j
    }

    @inline(__always) func isOther(_ k: UInt8) -> Bool { k & (CharClass.space | CharClass.letter | CharClass.number) == 0 }

    /// `\p{N}{1,3}` after a first number scalar ending at `j`: the end of up to two more.
    @inline(__always)
    func upToThreeNumbers(_ b: UnsafePointer<UInt8>, _ j0: Int, _ n: Int) -> Int {
        var j = j0, count = 1
        while count < 3 && j < n {
            let (k2, l2) = classAt(b, j)
            if k2 & CharClass.number == 0 { break }
            j &+= l2; count &+= 1
        }
        return j
    }

    /// ` ?[^\s\p{L}\p{N}]`: where the run of "other" scalars continues (after the first
    /// one, optionally preceded by one space) when the text at `i` starts one, else -1.
    /// `k`, `l`: class and length of the scalar at `i`.
    @inline(__always)
    func spaceThenOther(_ b: UnsafePointer<UInt8>, _ i: Int, _ k: UInt8, _ l: Int, _ n: Int) -> Int {
        if isOther(k) { return i &+ l }
        if b[i] == 0x20 && i &+ 1 < n {
            let (k2, l2) = classAt(b, i &+ 1)
            if isOther(k2) { return i &+ 1 &+ l2 }
        }
        return -1
    }

    /// Start of the last scalar in `[i, j)`.
    @inline(__always)
    func lastScalarStart(_ b: UnsafePointer<UInt8>, _ i: Int, _ j: Int) -> Int {
        var p = j &- 1
        while p > i && b[p] & 0xC0 == 0x80 { p &-= 1 }
        return p
    }

    /// Length of a contraction (`'s`, `'t`, `'re`, `'ve`, `'m`, `'ll`, `'d`) at `i`, or 0.
    @inline(__always)
    func contraction(_ b: UnsafePointer<UInt8>, _ i: Int, _ n: Int, caseless: Bool) -> Int {
        guard i &+ 1 < n, b[i] == UInt8(ascii: "'") else { return 0 }
        func fold(_ c: UInt8) -> UInt8 {
            caseless && c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z") ? c | 0x20 : c
        }
        let d = fold(b[i &+ 1])
        if d == UInt8(ascii: "s") || d == UInt8(ascii: "d") || d == UInt8(ascii: "m") || d == UInt8(ascii: "t") { return 2 }
        guard i &+ 2 < n else { return 0 }
        // Unicode case folding (the regex crate's `(?i)`) makes U+017F LATIN SMALL LETTER
        // LONG S equal to `s`: `'ſ` is a contraction too.
        if caseless && b[i &+ 1] == 0xC5 && b[i &+ 2] == 0xBF { return 3 }
        let e = fold(b[i &+ 2])
        if (d == UInt8(ascii: "l") && e == UInt8(ascii: "l")) || (d == UInt8(ascii: "v") && e == UInt8(ascii: "e"))
            || (d == UInt8(ascii: "r") && e == UInt8(ascii: "e")) { return 3 }
        return 0
    }

    /// Whitespace tail shared by all patterns. `j` is the end of the whitespace run
    /// starting at `i` (whose first scalar is `l` bytes long).
    /// `\s+(?!\S)`: the greedy run backtracks one scalar so the next piece can take the
    /// last space as its prefix; at the end of text the whole run matches.
    @inline(__always)
    func spaceTail(_ b: UnsafePointer<UInt8>, _ i: Int, _ j: Int, _ n: Int, _ l: Int) -> Int {
        if j == n { return n }
        let p = lastScalarStart(b, i, j)
        return p > i ? p : i &+ l
    }

    /// Last `\r` or `\n` in `[i, j)`, or -1 (they are single bytes, never continuation bytes).
    @inline(__always)
    func lastNewline(_ b: UnsafePointer<UInt8>, _ i: Int, _ j: Int) -> Int {
        var q = j &- 1
        while q >= i {
            if b[q] == 0x0A || b[q] == 0x0D { return q }
            q &-= 1
        }
        return -1
    }

    // MARK: - r50k / p50k (GPT-2)

    func r50k(_ b: UnsafePointer<UInt8>, _ i: Int, _ n: Int) -> Int {
        // '(?:[sdmt]|ll|ve|re)  (case-sensitive)
        let c = contraction(b, i, n, caseless: false)
        if c > 0 { return i &+ c }
        let (k, l) = classAt(b, i)
        // ` ?\p{L}++`, ` ?\p{N}++`, ` ?[^\s\p{L}\p{N}]++`: a single space joins the run after it.
        if b[i] == 0x20 && i &+ 1 < n {
            let (k2, l2) = classAt(b, i &+ 1)
            if k2 & CharClass.letter != 0 { return run(b, i &+ 1 &+ l2, n, CharClass.letter) }
            if k2 & CharClass.number != 0 { return run(b, i &+ 1 &+ l2, n, CharClass.number) }
            if isOther(k2) { return otherRun(b, i &+ 1 &+ l2, n) }
        }
        if k & CharClass.letter != 0 { return run(b, i &+ l, n, CharClass.letter) }
        if k & CharClass.number != 0 { return run(b, i &+ l, n, CharClass.number) }
        if isOther(k) { return otherRun(b, i &+ l, n) }
        // `\s++$` | `\s+(?!\S)` | `\s`
        let j = run(b, i &+ l, n, CharClass.space)
        return spaceTail(b, i, j, n, l)
    }

    // MARK: - cl100k

    /// The alternatives cl100k shares with Llama 3 / Qwen2 (all but the whitespace ones):
    /// the piece's end, or -1 when the text at `i` is whitespace; and the byte length of
    /// the scalar at `i`.
    @inline(__always)
    func cl100kFront(_ b: UnsafePointer<UInt8>, _ i: Int, _ n: Int, digits: Int) -> (Int, Int) {
        // '(?i:[sdmt]|ll|ve|re)
        let c = contraction(b, i, n, caseless: true)
        if c > 0 { return (i &+ c, c) }
        let (k, l) = classAt(b, i)
        // `[^\r\n\p{L}\p{N}]?+\p{L}++`: the possessive prefix takes any one non-letter,
        // non-number scalar except CR/LF; then letters must follow.
        if k & CharClass.letter != 0 { return (run(b, i &+ l, n, CharClass.letter), l) }
        let ch = b[i]
        if k & CharClass.number == 0 && ch != 0x0A && ch != 0x0D && i &+ l < n {
            let (k2, l2) = classAt(b, i &+ l)
            if k2 & CharClass.letter != 0 { return (run(b, i &+ l &+ l2, n, CharClass.letter), l) }
        }
        // `\p{N}{1,3}+` (Qwen2: `\p{N}`)
        if k & CharClass.number != 0 { return (digits == 3 ? upToThreeNumbers(b, i &+ l, n) : i &+ l, l) }
        // ` ?[^\s\p{L}\p{N}]++[\r\n]*+`
        let start = spaceThenOther(b, i, k, l, n)
        if start >= 0 {
            var j = otherRun(b, start, n)
            while j < n && (b[j] == 0x0A || b[j] == 0x0D) { j &+= 1 }
            return (j, l)
        }
        return (-1, l)
    }

    /// cl100k for the common ASCII pieces, decided by byte tests alone: a word with an
    /// optional one-byte prefix (` hello`, `(foo`), up to three digits, a punctuation run
    /// (`asciiOther`), a space before a digit. -1 hands the piece to the general scanner:
    /// an apostrophe first (the contraction alternative), whitespace runs, newlines, and any
    /// piece whose end depends on a non-ASCII scalar (a letter, number or "other" scalar
    /// could continue the run). The general path classified every byte through the class
    /// table, one at a time.
    @inline(__always)
    func cl100kASCII(_ b: UnsafePointer<UInt8>, _ i: Int, _ n: Int) -> Int {
        let ch = b[i]
        var s = i
        if ch &- 0x30 < 10 { return Scan.asciiDigitsEnd(b, i, n) }   // `\p{N}{1,3}+`
        if (ch | 0x20) &- 0x61 >= 26 {
            // `[^\r\n\p{L}\p{N}]?+\p{L}++`: a prefix only if an ASCII letter follows.
            guard ch != 0x27 && ch != 0x0A && ch != 0x0D && i &+ 1 < n else { return -1 }
            if (b[i &+ 1] | 0x20) &- 0x61 >= 26 { return asciiOther(b, i, n, slash: false) }
            s = i &+ 1
        }
        let e = Scan.asciiRunEnd(b, s, n, anyCase: true)
        return e < n && b[e] >= 0x80 ? -1 : e
    }

    /// Inlined into the piece loop like `o200k`.
    @inline(__always)
    func cl100k(_ b: UnsafePointer<UInt8>, _ i: Int, _ n: Int) -> Int {
        if b[i] < 0x80 {
            let e = cl100kASCII(b, i, n)
            if e >= 0 { return e }
        }
        return cl100kGeneral(b, i, n)
    }

    @inline(never)
    func cl100kGeneral(_ b: UnsafePointer<UInt8>, _ i: Int, _ n: Int) -> Int {
        let (e, l) = cl100kFront(b, i, n, digits: 3)
        if e >= 0 { return e }
        // Whitespace. `\s++$`: the whole run when it reaches the end of the text.
        let j = run(b, i &+ l, n, CharClass.space)
        if j == n { return n }
        // `\s*[\r\n]`: up to and including the run's last CR/LF.
        let q = lastNewline(b, i, j)
        if q >= 0 { return q &+ 1 }
        // `\s+(?!\S)` | `\s`
        return spaceTail(b, i, j, n, l)
    }

    // MARK: - o200k

    /// `U*Lw+` from `s` (U = upperish, Lw = lowerish). Greedy `U*` takes the whole
    /// upperish run; if a lowerish scalar follows (necessarily Ll) `Lw+` takes the
    /// lowerish run. Otherwise `U*` backtracks to the last scalar of its run that is also
    /// lowerish (Lm, Lo, M) and `Lw+` matches exactly up to its end. -1 when nothing matches.
    @inline(__always)
    func o200kWord1(_ b: UnsafePointer<UInt8>, _ s: Int, _ n: Int) -> Int {
        var a = s
        var lastLowerishEnd = -1
        while a < n {
            let (k, l) = classAt(b, a)
            if k & CharClass.upperish == 0 { break }
            a &+= l
            if k & CharClass.lowerish != 0 { lastLowerishEnd = a }
        }
        if a < n {
            let (k, l) = classAt(b, a)
            if k & CharClass.lowerish != 0 { return run(b, a &+ l, n, CharClass.lowerish) }
        }
        return lastLowerishEnd
    }

    /// `U+Lw*` from `s`, or -1.
    @inline(__always)
    func o200kWord2(_ b: UnsafePointer<UInt8>, _ s: Int, _ n: Int) -> Int {
        let a = run(b, s, n, CharClass.upperish)
        if a == s { return -1 }
        return run(b, a, n, CharClass.lowerish)
    }

    /// o200k for the common ASCII pieces — a word with an optional one-byte prefix
    /// (` hello`, `World`, `(foo`), up to three digits — decided by byte tests alone. -1
    /// hands the piece to the general scanner: anything else, and any piece whose end
    /// depends on a non-ASCII scalar (a letter, mark or number could continue the run).
    @inline(__always)
    func o200kASCII(_ b: UnsafePointer<UInt8>, _ i: Int, _ n: Int) -> Int {
        let ch = b[i]
        if ch &- 0x30 < 10 { return Scan.asciiDigitsEnd(b, i, n) }   // `\p{N}{1,3}`
        if i &+ 16 <= n { return o200kWord16(b, i, n, ch) }
        return o200kASCIIBytes(b, i, n, ch)
    }

    /// `o200kASCII` byte by byte (near the text's end, and for words of 15 letters or more).
    @inline(__always)
    func o200kASCIIBytes(_ b: UnsafePointer<UInt8>, _ i: Int, _ n: Int, _ ch: UInt8) -> Int {
        var s = i
        if (ch | 0x20) &- 0x61 >= 26 {
            // Not a letter: a prefix `[^\r\n\p{L}\p{N}]` only if an ASCII letter follows.
            guard ch != 0x0A && ch != 0x0D && i &+ 1 < n else { return -1 }
            if (b[i &+ 1] | 0x20) &- 0x61 >= 26 { return asciiOther(b, i, n, slash: true) }
            s = i &+ 1
        }
        // A-Z run, then a-z run. With lower-case letters after the capitals the first
        // alternative matches the lot; with none, the second takes the capitals.
        var e = s
        while e < n && b[e] &- 0x41 < 26 { e &+= 1 }
        e = Scan.asciiRunEnd(b, e, n, anyCase: false)
        if e < n && b[e] >= 0x80 { return -1 }
        return e &+ contraction(b, e, n, caseless: true)
    }

    /// `o200kASCII` where 16 bytes can be read at `i` (not a digit at `i`): the letters of
    /// the 16 bytes as two bit masks (A-Z, a-z), and the word's end from them with counts
    /// of trailing zeros: the optional one-byte prefix, the capitals, then the small
    /// letters. The byte loop this replaces branched on every letter of the capitals' run
    /// and on whether the word fit in eight bytes — whether a word is capitalised and how
    /// long it is are coin tosses on text. A word that reaches the window's end (15 letters
    /// or more) goes through the byte loop.
    @inline(__always)
    func o200kWord16(_ b: UnsafePointer<UInt8>, _ i: Int, _ n: Int, _ ch: UInt8) -> Int {
        let m = tm_letters16(b + i)
        let upper = m & 0xFFFF, lower = m &>> 16
        var s = 0
        if (upper | lower) & 1 == 0 {
            // Not a letter: a prefix `[^\r\n\p{L}\p{N}]` only if an ASCII letter follows.
            guard ch != 0x0A && ch != 0x0D else { return -1 }
            if (upper | lower) & 2 == 0 { return asciiOther(b, i, n, slash: true) }
            s = 1
        }
        // A-Z run, then a-z run (bit 16 stops both counts at the window's end). With small
        // letters after the capitals the first alternative matches the lot; with none, the
        // second takes the capitals.
        let a = s &+ ((~upper | 0x10000) &>> UInt32(s)).trailingZeroBitCount
        let w = a &+ ((~lower | 0x10000) &>> UInt32(a)).trailingZeroBitCount
        if w == 16 { return o200kASCIIBytes(b, i, n, ch) }
        let e = i &+ w
        if b[e] >= 0x80 { return -1 }
        return e &+ contraction(b, e, n, caseless: true)
    }

    /// ` ?[^\s\p{L}\p{N}]+` followed by `[\r\n/]*` (o200k, `slash`) or `[\r\n]*` (cl100k)
    /// over ASCII bytes, for a piece at `i` that starts with no letter or digit and is not
    /// followed by an ASCII letter (so no word alternative matches): punctuation (`.`, `,`,
    /// ` (`, `?\n`), a seventh of the pieces of chat lines, which the general scanner took
    /// through its failed word attempts first. Also a space before a digit (`\s+` of one
    /// space: `(?!\S)` fails on the digit). -1 for anything else (whitespace runs,
    /// newlines, a byte after the space that is neither) and when the run reaches a
    /// non-ASCII scalar, which might continue it; the general scanner decides those.
    @inline(__always)
    func asciiOther(_ b: UnsafePointer<UInt8>, _ i: Int, _ n: Int, slash: Bool) -> Int {
        var j = i
        if b[i] == 0x20 {
            let c = b[i &+ 1]
            if c &- 0x30 < 10 { return i &+ 1 }
            j = i &+ 1
        }
        guard b[j] < 0x80 && isOther(ascii[Int(b[j])]) else { return -1 }
        j &+= 1
        while j < n && b[j] < 0x80 && isOther(ascii[Int(b[j])]) { j &+= 1 }
        if j < n && b[j] >= 0x80 { return -1 }
        while j < n && (b[j] == 0x0A || b[j] == 0x0D || (slash && b[j] == 0x2F)) { j &+= 1 }
        return j
    }

    /// The end of the run of a-z (with `anyCase`, of A-Z and a-z) from `e`: sixteen bytes a
    /// step where sixteen remain (one compare and a count of trailing zeros for a whole
    /// word of text, where the byte loop took four instructions a letter: 4% of o200k's
    /// encode), then byte by byte.
    @inline(__always)
    static func asciiRunEnd(_ b: UnsafePointer<UInt8>, _ e0: Int, _ n: Int, anyCase: Bool) -> Int {
        var e = e0
        // OR-ing 0x20 folds A-Z onto a-z (and no byte outside them into a-z).
        let fold: UInt8 = anyCase ? 0x20 : 0
        let a = SIMD16<UInt8>(repeating: 0x61), z = SIMD16<UInt8>(repeating: 25), folds = SIMD16<UInt8>(repeating: fold)
        while e &+ 16 <= n {
            let v = UnsafeRawPointer(b + e).loadUnaligned(as: SIMD16<UInt8>.self)
            let other = ((v | folds) &- a) .> z   // lanes 0xFF where the byte is not in the run
            let m = unsafeBitCast(other, to: (UInt64, UInt64).self)
            if m.0 != 0 { return e &+ m.0.trailingZeroBitCount &>> 3 }
            if m.1 != 0 { return e &+ 8 &+ m.1.trailingZeroBitCount &>> 3 }
            e &+= 16
        }
        while e < n && (b[e] | fold) &- 0x61 < 26 { e &+= 1 }
        return e
    }

    /// `\p{N}{1,3}` from an ASCII digit at `i`: the end of up to three ASCII digits, or -1
    /// when the run stops early at a non-ASCII byte (a number scalar could continue it).
    @inline(__always)
    static func asciiDigitsEnd(_ b: UnsafePointer<UInt8>, _ i: Int, _ n: Int) -> Int {
        var j = i &+ 1
        while j < n && j < i &+ 3 && b[j] &- 0x30 < 10 { j &+= 1 }
        return j < n && j < i &+ 3 && b[j] >= 0x80 ? -1 : j
    }

    /// Inlined into the piece loop: the ASCII fast path without a call, the rest out of
    /// line (a call a piece, with its saved registers, was 2.5% of `encode`'s instructions).
    @inline(__always)
    func o200k(_ b: UnsafePointer<UInt8>, _ i: Int, _ n: Int) -> Int {
        if b[i] < 0x80 {
            let e = o200kASCII(b, i, n)
            if e >= 0 { return e }
        }
        return o200kGeneral(b, i, n)
    }

    @inline(never)
    func o200kGeneral(_ b: UnsafePointer<UInt8>, _ i: Int, _ n: Int) -> Int {
        let (k, l) = classAt(b, i)
        let ch = b[i]
        // The optional prefix `[^\r\n\p{L}\p{N}]?` is tried first with, then without.
        let prefixOK = k & (CharClass.letter | CharClass.number) == 0 && ch != 0x0A && ch != 0x0D
        if prefixOK || k & (CharClass.letter | CharClass.mark) != 0 {
            var e = prefixOK && i &+ l < n ? o200kWord1(b, i &+ l, n) : -1
            if e < 0 { e = o200kWord1(b, i, n) }
            if e < 0 && prefixOK && i &+ l < n { e = o200kWord2(b, i &+ l, n) }
            if e < 0 { e = o200kWord2(b, i, n) }
            if e >= 0 { return e &+ contraction(b, e, n, caseless: true) }
        }
        // `\p{N}{1,3}`
        if k & CharClass.number != 0 { return upToThreeNumbers(b, i &+ l, n) }
        // ` ?[^\s\p{L}\p{N}]+[\r\n/]*`
        let start = spaceThenOther(b, i, k, l, n)
        if start >= 0 {
            var j = otherRun(b, start, n)
            while j < n && (b[j] == 0x0A || b[j] == 0x0D || b[j] == UInt8(ascii: "/")) { j &+= 1 }
            return j
        }
        // Whitespace. `\s*[\r\n]+`: up to and including the run's last CR/LF.
        let j = run(b, i &+ l, n, CharClass.space)
        let q = lastNewline(b, i, j)
        if q >= 0 { return q &+ 1 }
        // `\s+(?!\S)` | `\s+`
        return spaceTail(b, i, j, n, l)
    }

    // MARK: - Llama 3 / Qwen2

    /// Alternatives 1-4 behave as cl100k's (the possessive quantifiers there change nothing
    /// for these classes); the whitespace alternatives are o200k's: no `\s++$`, and
    /// `\s*[\r\n]+` takes the run up to its last CR/LF.
    func llama3(_ b: UnsafePointer<UInt8>, _ i: Int, _ n: Int, digits: Int) -> Int {
        let (e, l) = cl100kFront(b, i, n, digits: digits)
        if e >= 0 { return e }
        let j = run(b, i &+ l, n, CharClass.space)
        let q = lastNewline(b, i, j)
        if q >= 0 { return q &+ 1 }
        return spaceTail(b, i, j, n, l)
    }
}

/// Where the piece starting at `i` ends: the piece loop's scanner
/// (`Tokenizer.Encoder.encodePieces`), generic so each pattern's loop is specialized and
/// its `end` inlined.
///
/// The two tiktoken patterns' `end` are `@_transparent`, not `@inline(__always)`: with the
/// latter, whether the specialized loop inlined `end` depended on the build folder's
/// history. Built with `-enable-testing` (as `swift test -c release` builds every module)
/// the loop called o200k's `end` out of line, a call a piece with the loop's state
/// spilled around it (~7% more instructions, 5-7% slower), and an incremental release
/// build sometimes did the same. Transparent functions are inlined by the mandatory
/// inliner once the call is direct, whatever the optimizer's budget for the caller.
protocol PieceEnds {
    func end(_ i: Int) -> Int
}

struct CL100kPieces: PieceEnds {
    let scan: Scan
    let b: UnsafePointer<UInt8>
    let n: Int
    @_transparent func end(_ i: Int) -> Int { scan.cl100k(b, i, n) }
}

/// o200k through 64-byte windows of ASCII text: `tm_o200k_starts64` finds every piece
/// start of a window at once (bit operations on the bytes' classes, no branch on what a
/// piece is), and `end` hands them out one by one. A window is taken where a piece starts
/// with ASCII ahead (a text's last bytes padded, a window cut short before a byte >= 0x80
/// from its 32nd byte on); anything else goes through `Scan.o200k`. `state` holds the
/// window's offset, its starts, and the offset before which no window is tried (the byte
/// after the last non-ASCII byte seen).
struct O200kWindowPieces: PieceEnds {
    let scan: Scan
    let b: UnsafePointer<UInt8>
    let n: Int
    let state: UnsafeMutablePointer<Int>

    @_transparent func end(_ i: Int) -> Int {
        let r = i &- state[0]
        if UInt(bitPattern: r) < 64 {
            let later = UInt64(bitPattern: Int64(state[1])) & ((UInt64.max &<< UInt64(truncatingIfNeeded: r)) &<< 1)
            if later != 0 { return state[0] &+ later.trailingZeroBitCount }
        }
        return refill(i)
    }

    @inline(never)
    func refill(_ i: Int) -> Int {
        // No window from a byte >= 0x80 (a piece of another script) or before one just seen.
        if i >= state[2] && b[i] < 0x80 {
            var nonASCII: Int32 = 64
            let left = n &- i
            let starts: UInt64
            if left >= 64 {
                starts = tm_o200k_starts64(b + i, 64, &nonASCII) & ~1
            } else {
                // The text's last bytes, copied and padded with spaces (`state[3...]`).
                let pad = UnsafeMutableRawPointer(state + 3)
                pad.storeBytes(of: SIMD32<UInt8>(repeating: 0x20), as: SIMD32<UInt8>.self)
                pad.storeBytes(of: SIMD32<UInt8>(repeating: 0x20), toByteOffset: 32, as: SIMD32<UInt8>.self)
                pad.copyMemory(from: b + i, byteCount: left)
                starts = tm_o200k_starts64(pad.assumingMemoryBound(to: UInt8.self), Int32(left), &nonASCII) & ~1
            }
            if starts != 0 {
                state[0] = i
                state[1] = Int(Int64(bitPattern: starts | 1))
                return i &+ starts.trailingZeroBitCount
            }
            // Nothing known before a byte >= 0x80 close ahead: the byte scanner takes the
            // pieces up to and past it.
            if nonASCII < 64 { state[2] = i &+ Int(nonASCII) &+ 1 }
        }
        return scan.o200k(b, i, n)
    }

    /// Words of state: the window's offset and starts, the offset before which no window
    /// is tried, then 64 bytes for a padded copy of a text's end.
    static let stateWords = 3 + 8

    /// A state with no window.
    static func initialState(_ p: UnsafeMutablePointer<Int>) { p[0] = Int.min / 2; p[1] = 0; p[2] = 0 }
}

/// The other patterns, whose scanners are one call a piece anyway.
struct ClosurePieces: PieceEnds {
    let next: (Int) -> Int
    @inline(__always) func end(_ i: Int) -> Int { next(i) }
}
