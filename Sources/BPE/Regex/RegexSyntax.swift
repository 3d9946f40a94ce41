import TokenmillCore

/// Parser for the regular expressions of tokenizer.json `Split` pre-tokenizers.
///
/// The `tokenizers` library compiles those with Oniguruma (the `onig` crate, default
/// syntax) on UTF-8 text, so this follows Oniguruma's reading wherever it differs from
/// Perl or the Rust regex crate (each checked against `tokenizers` in
/// python/tests/test_split_regex.py):
/// - `{n,m}+` is *not* possessive: it is `{n,m}` repeated greedily by `+`
///   (`X*+`, `X++`, `X?+` are possessive); `{,m}` means `{0,m}`.
/// - `^` and `$` are line anchors (after / before `\n`); `.` is anything but `\n`;
///   `\Z` matches at the end or before a final `\n`.
/// - An isolated `(?i)` applies to the rest of its group, alternatives included:
///   `a(?i)b|c` is `a(?i:b|c)`.
/// - Under `(?i)` literal characters and ranges match their simple case variants
///   (`k` matches U+212A KELVIN SIGN), property classes do not (`(?i)\p{Lu}` is still
///   upper case only).
/// - `\s` is White_Space, `\d` is Nd, `\w` is `CharSet.isWord`, `\h` is a hex digit.
///
/// What it cannot reproduce exactly it refuses with a `RegexError` naming the construct:
/// look-behind, backreferences, conditionals, POSIX brackets, flags other than `i`,
/// multi-scalar case folds under `(?i)` (`(?i)ß` also matches `ss`), and repeats of
/// subpatterns that can match the empty string.
public struct RegexError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// A character set: the predicate a single scalar is tested against.
indirect enum CharSet: Sendable {
    case ranges([ClosedRange<UInt32>])
    /// `ranges` under `(?i)`: a scalar matches when any of its case variants is inside.
    case caseless([ClosedRange<UInt32>])
    /// Bit n set: general category number n (`UnicodeData.Category`).
    case categories(UInt32)
    case space, word, hex
    case union([CharSet]), intersection([CharSet])
    case not(CharSet)

    func contains(_ c: UInt32) -> Bool {
        switch self {
        case .ranges(let r): return r.contains { $0.contains(c) }
        case .caseless(let r): return UnicodeData.caseVariants(c).contains { v in r.contains { $0.contains(v) } }
        case .categories(let m): return m & (1 << UInt32(UnicodeData.category(c))) != 0
        case .space: return UnicodeData.isSpace(c)
        case .word: return CharSet.isWord(c)
        case .hex: return (0x30...0x39).contains(c) || (0x41...0x46).contains(c) || (0x61...0x66).contains(c)
        case .union(let s): return s.contains { $0.contains(c) }
        case .intersection(let s): return s.allSatisfy { $0.contains(c) }
        case .not(let s): return !s.contains(c)
        }
    }

    static func category(_ names: UnicodeData.Category...) -> UInt32 {
        names.reduce(0) { $0 | 1 << UInt32($1.rawValue) }
    }
    static let wordCategories = category(.Lu, .Ll, .Lt, .Lm, .Lo, .Nl, .Mn, .Mc, .Me, .Nd, .Pc)

    /// Oniguruma's `\w` (and `\b`): letters, letter numbers, marks, decimal digits,
    /// connector punctuation, the Other_Alphabetic symbols (circled and squared letters),
    /// and — from its Latin-1 table — superscript digits and vulgar fractions. Measured on
    /// every code point against `tokenizers` (python/tests/test_split_regex.py).
    static func isWord(_ c: UInt32) -> Bool {
        if wordCategories & (1 << UInt32(UnicodeData.category(c))) != 0 { return true }
        switch c {
        case 0xB2...0xB3, 0xB9, 0xBC...0xBE, 0x24B6...0x24E9, 0x1F130...0x1F149, 0x1F150...0x1F169, 0x1F170...0x1F189: return true
        default: return false
        }
    }
}

indirect enum RegexNode {
    case empty
    case char(UInt32)
    case set(CharSet)
    /// `.`: anything but `\n`.
    case any
    case concat([RegexNode])
    case alt([RegexNode])
    /// max < 0: unbounded.
    case repeat_(RegexNode, min: Int, max: Int, lazy: Bool)
    case atomic(RegexNode)
    case look(RegexNode, negative: Bool)
    case assert(Anchor)

    enum Anchor: Int32 { case lineStart, lineEnd, textStart, textEnd, textEndOrFinalNewline, wordBoundary, notWordBoundary }

    /// Whether the node can match without consuming input.
    var nullable: Bool {
        switch self {
        case .empty, .look, .assert: return true
        case .char, .set, .any: return false
        case .concat(let n): return n.allSatisfy(\.nullable)
        case .alt(let n): return n.contains(where: \.nullable)
        case .repeat_(let n, let min, _, _): return min == 0 || n.nullable
        case .atomic(let n): return n.nullable
        }
    }
}

struct RegexParser {
    private let s: [UInt32]
    private var i = 0
    static let maxRepeat = 1000

    init(_ pattern: String) { s = pattern.unicodeScalars.map(\.value) }

    static func parse(_ pattern: String) throws(RegexError) -> RegexNode {
        var p = RegexParser(pattern)
        let node = try p.alternation(caseless: false)
        if p.i < p.s.count { throw RegexError(message: "unmatched ')' at position \(p.i)") }
        return node
    }

    private func peek(_ k: Int = 0) -> UInt32? { i + k < s.count ? s[i + k] : nil }
    private func at(_ ch: Character, _ k: Int = 0) -> Bool { peek(k) == ch.unicodeScalars.first!.value }

    private mutating func alternation(caseless: Bool) throws(RegexError) -> RegexNode {
        var branches = [try sequence(caseless: caseless)]
        while at("|") {
            i += 1
            branches.append(try sequence(caseless: caseless))
        }
        return branches.count == 1 ? branches[0] : .alt(branches)
    }

    private mutating func sequence(caseless: Bool) throws(RegexError) -> RegexNode {
        var items: [RegexNode] = []
        while let c = peek(), c != 0x7C /* | */, c != 0x29 /* ) */ {
            // An isolated flag group applies to the rest of the enclosing group.
            if at("("), at("?", 1), let flags = isolatedFlags() {
                i = flags.end
                items.append(try alternation(caseless: flags.caseless ?? caseless))
                break
            }
            var atom = try self.atom(caseless: caseless)
            atom = try quantifiers(atom)
            items.append(atom)
        }
        if caseless { try checkFolds(items) }
        return items.count == 1 ? items[0] : (items.isEmpty ? .empty : .concat(items))
    }

    /// `(?i)`, `(?-i)`, `(?i-i)`: the flags and where the pattern continues; nil for other groups.
    private func isolatedFlags() -> (caseless: Bool?, end: Int)? {
        var k = i + 2, on = true, result: Bool? = nil
        while k < s.count {
            switch s[k] {
            case 0x69: result = on; k += 1            // i
            case 0x2D: on = false; k += 1             // -
            case 0x29: return k > i + 2 ? (result, k + 1) : nil
            default: return nil
            }
        }
        return nil
    }

    private mutating func quantifiers(_ node: RegexNode) throws(RegexError) -> RegexNode {
        var node = node
        while let c = peek() {
            var min = 0, max = -1
            var isInterval = false
            switch c {
            case 0x2A: i += 1                              // *
            case 0x2B: min = 1; i += 1                     // +
            case 0x3F: max = 1; i += 1                     // ?
            case 0x7B:                                     // {
                guard let (lo, hi, end) = interval(at: i) else { return node }
                min = lo; max = hi; i = end; isInterval = true
            default: return node
            }
            if min > RegexParser.maxRepeat || max > RegexParser.maxRepeat {
                throw RegexError(message: "repeat count over \(RegexParser.maxRepeat)")
            }
            if (max < 0 || max > 1) && node.nullable {
                throw RegexError(message: "a repeated subpattern can match the empty string")
            }
            var lazy = false, possessive = false
            if at("?") { lazy = true; i += 1 } else if at("+"), !isInterval { possessive = true; i += 1 }
            node = .repeat_(node, min: min, max: max, lazy: lazy)
            if possessive { node = .atomic(node) }
        }
        return node
    }

    /// `{n}`, `{n,}`, `{,m}`, `{n,m}` at `k`: (min, max or -1, index after); nil when the
    /// brace is a literal (Oniguruma reads an invalid interval as text).
    private func interval(at k: Int) -> (Int, Int, Int)? {
        var j = k + 1
        func number() -> Int? {
            var v: Int? = nil
            while j < s.count, (0x30...0x39).contains(s[j]) {
                v = min((v ?? 0) * 10 + Int(s[j] - 0x30), 1_000_000); j += 1
            }
            return v
        }
        let lo = number()
        var hi = lo
        if j < s.count, s[j] == 0x2C { j += 1; hi = number() ?? -1; if lo == nil && hi == -1 { return nil } }
        guard j < s.count, s[j] == 0x7D, lo != nil || hi != nil else { return nil }
        let a = lo ?? 0, b = hi ?? a
        if b >= 0 && b < a { return nil }
        return (a, b, j + 1)
    }

    private mutating func atom(caseless: Bool) throws(RegexError) -> RegexNode {
        let c = s[i]
        switch c {
        case 0x28: return try group(caseless: caseless)
        case 0x5B: i += 1; return .set(try charClass(caseless: caseless))
        case 0x2E: i += 1; return .any
        case 0x5E: i += 1; return .assert(.lineStart)
        case 0x24: i += 1; return .assert(.lineEnd)
        case 0x2A, 0x2B, 0x3F: throw RegexError(message: "quantifier without a target at position \(i)")
        case 0x5C: return try escape(caseless: caseless)
        default:
            i += 1
            return literal(c, caseless: caseless)
        }
    }

    private func literal(_ c: UInt32, caseless: Bool) -> RegexNode {
        if caseless && UnicodeData.caseVariants(c).count > 1 { return .set(.caseless([c...c])) }
        return .char(c)
    }

    private mutating func group(caseless: Bool) throws(RegexError) -> RegexNode {
        i += 1
        var flags = caseless
        enum Kind { case plain, atomic, lookahead, negativeLookahead }
        var kind = Kind.plain
        if at("?") {
            i += 1
            guard let c = peek() else { throw RegexError(message: "unterminated group") }
            switch c {
            case 0x3A: i += 1                                            // (?:
            case 0x3E: i += 1; kind = .atomic                            // (?>
            case 0x3D: i += 1; kind = .lookahead                         // (?=
            case 0x21: i += 1; kind = .negativeLookahead                 // (?!
            case 0x23:                                                   // (?# comment )
                while let d = peek(), d != 0x29 { i += 1 }
                guard at(")") else { throw RegexError(message: "unterminated comment") }
                i += 1
                return .empty
            case 0x3C where at("=", 1) || at("!", 1):
                throw RegexError(message: "pattern uses look-behind")
            case 0x3C, 0x27, 0x50:                                       // (?<name> (?'name' (?P<name>
                if c == 0x50 { i += 1 }
                let close: UInt32 = s[i] == 0x27 ? 0x27 : 0x3E
                i += 1
                while let d = peek(), d != close { i += 1 }
                guard peek() == close else { throw RegexError(message: "unterminated group name") }
                i += 1
            case 0x69, 0x2D:                                             // (?i: (?-i:
                var on = true
                while let d = peek(), d != 0x3A {
                    if d == 0x69 { flags = on } else if d == 0x2D { on = false } else {
                        throw RegexError(message: "flag '\(Character(Unicode.Scalar(d)!))' is not supported (only i)")
                    }
                    i += 1
                }
                i += 1
            default:
                let ch = Character(Unicode.Scalar(c) ?? "?")
                if ch.isLetter { throw RegexError(message: "flag '\(ch)' is not supported (only i)") }
                throw RegexError(message: "group (?\(ch) is not supported")
            }
        }
        let body = try alternation(caseless: flags)
        guard at(")") else { throw RegexError(message: "missing ')'") }
        i += 1
        switch kind {
        case .plain: return body
        case .atomic: return .atomic(body)
        case .lookahead: return .look(body, negative: false)
        case .negativeLookahead: return .look(body, negative: true)
        }
    }

    /// A backslash escape outside a class.
    private mutating func escape(caseless: Bool) throws(RegexError) -> RegexNode {
        i += 1
        guard let c = peek() else { throw RegexError(message: "trailing backslash") }
        switch c {
        case 0x41: i += 1; return .assert(.textStart)                  // \A
        case 0x7A: i += 1; return .assert(.textEnd)                    // \z
        case 0x5A: i += 1; return .assert(.textEndOrFinalNewline)      // \Z
        case 0x62: i += 1; return .assert(.wordBoundary)               // \b
        case 0x42: i += 1; return .assert(.notWordBoundary)            // \B
        default:
            if let set = try classEscape() { return .set(set) }
            return literal(try charEscape(), caseless: caseless)
        }
    }

    /// `\d \s \w \h \p{..}` and their negations, at `s[i]` (after the backslash); nil otherwise.
    private mutating func classEscape() throws(RegexError) -> CharSet? {
        let c = s[i]
        switch c {
        case 0x64: i += 1; return .categories(CharSet.category(.Nd))
        case 0x44: i += 1; return .not(.categories(CharSet.category(.Nd)))
        case 0x73: i += 1; return .space
        case 0x53: i += 1; return .not(.space)
        case 0x77: i += 1; return .word
        case 0x57: i += 1; return .not(.word)
        case 0x68: i += 1; return .hex
        case 0x48: i += 1; return .not(.hex)
        case 0x70, 0x50:
            i += 1
            guard at("{") else { throw RegexError(message: "\\p without {name}") }
            i += 1
            var name = ""
            while let d = peek(), d != 0x7D { name.unicodeScalars.append(Unicode.Scalar(d)!); i += 1 }
            guard at("}") else { throw RegexError(message: "unterminated \\p{") }
            i += 1
            var negate = c == 0x50
            if name.hasPrefix("^") { negate.toggle(); name.removeFirst() }
            guard let mask = RegexParser.property(name) else { throw RegexError(message: "property \\p{\(name)} is not supported") }
            return negate ? .not(.categories(mask)) : .categories(mask)
        default: return nil
        }
    }

    /// A single-scalar escape at `s[i]` (after the backslash).
    private mutating func charEscape() throws(RegexError) -> UInt32 {
        let c = s[i]
        i += 1
        switch c {
        case 0x74: return 0x09   // \t
        case 0x6E: return 0x0A   // \n
        case 0x72: return 0x0D   // \r
        case 0x66: return 0x0C   // \f
        case 0x76: return 0x0B   // \v
        case 0x61: return 0x07   // \a
        case 0x65: return 0x1B   // \e
        case 0x78:               // \xHH or \x{H...}
            if at("{") {
                i += 1
                let v = hex(maxDigits: 8)
                guard let v, at("}") else { throw RegexError(message: "bad \\x{...} escape") }
                i += 1
                return v
            }
            guard let v = hex(maxDigits: 2) else { throw RegexError(message: "bad \\x escape") }
            return v
        case 0x75:               // \uHHHH
            guard let v = hex(maxDigits: 4, exactly: true) else { throw RegexError(message: "bad \\u escape") }
            return v
        case 0x30:               // \0, \0oo: octal
            var v: UInt32 = 0, k = 0
            while k < 2, let d = peek(), (0x30...0x37).contains(d) { v = v * 8 + d - 0x30; i += 1; k += 1 }
            return v
        default:
            if (0x31...0x39).contains(c) { throw RegexError(message: "pattern uses a backreference (\\\(Character(Unicode.Scalar(c)!)))") }
            let isAlnum = (0x30...0x39).contains(c) || (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c)
            if isAlnum { throw RegexError(message: "escape \\\(Character(Unicode.Scalar(c)!)) is not supported") }
            return c
        }
    }

    private mutating func hex(maxDigits: Int, exactly: Bool = false) -> UInt32? {
        var v: UInt32 = 0, k = 0
        while k < maxDigits, let d = peek() {
            let x: UInt32
            switch d {
            case 0x30...0x39: x = d - 0x30
            case 0x41...0x46: x = d - 0x41 + 10
            case 0x61...0x66: x = d - 0x61 + 10
            default: x = 99
            }
            if x == 99 { break }
            v = v * 16 + x; i += 1; k += 1
        }
        if k == 0 || (exactly && k != maxDigits) || v > 0x10FFFF { return nil }
        return v
    }

    /// A bracket class, `s[i]` just after `[`.
    private mutating func charClass(caseless: Bool) throws(RegexError) -> CharSet {
        var negate = false
        if at("^") { negate = true; i += 1 }
        var ranges: [ClosedRange<UInt32>] = []
        var parts: [CharSet] = []
        var first = true
        func collect() -> CharSet {
            var all = parts
            if !ranges.isEmpty { all.append(caseless ? .caseless(ranges) : .ranges(ranges)) }
            return all.count == 1 ? all[0] : .union(all)
        }
        while true {
            guard let c = peek() else { throw RegexError(message: "missing ']'") }
            if c == 0x5D && !first { i += 1; break }
            first = false
            if c == 0x26 && at("&", 1) {       // && intersection with the rest of the class
                i += 2
                let left = collect()
                let right = try charClassBody(caseless: caseless)
                let set = CharSet.intersection([left, right])
                return negate ? .not(set) : set
            }
            if c == 0x5B {
                if at(":", 1) { throw RegexError(message: "POSIX bracket classes ([:name:]) are not supported") }
                i += 1
                parts.append(try charClass(caseless: caseless))
                continue
            }
            var lo: UInt32
            if c == 0x5C {
                i += 1
                guard peek() != nil else { throw RegexError(message: "trailing backslash") }
                if let set = try classEscape() { parts.append(set); continue }
                if at("b") { i += 1; lo = 0x08 } else { lo = try charEscape() }
            } else {
                lo = c; i += 1
            }
            // A range `lo-hi`, unless the '-' ends the class.
            if at("-"), let next = peek(1), next != 0x5D {
                i += 1
                var hi: UInt32
                if next == 0x5C {
                    i += 1
                    if let d = peek(), [0x64, 0x44, 0x73, 0x53, 0x77, 0x57, 0x68, 0x48, 0x70, 0x50].contains(d) {
                        throw RegexError(message: "a class range ends in a class escape")
                    }
                    hi = try charEscape()
                } else if next == 0x5B {
                    throw RegexError(message: "a class range ends in a nested class")
                } else {
                    hi = next; i += 1
                }
                guard lo <= hi else { throw RegexError(message: "empty range in class") }
                ranges.append(lo...hi)
            } else {
                ranges.append(lo...lo)
            }
        }
        if caseless {
            for r in ranges where r.count < 0x30000 {
                for c in r where UnicodeData.hasMultiScalarFold(c) {
                    throw RegexError(message: "(?i) class holds U+\(String(c, radix: 16, uppercase: true)), whose case folding is several characters")
                }
            }
        }
        let set = collect()
        return negate ? .not(set) : set
    }

    /// The right side of `&&`: class items up to the closing `]`, consumed.
    private mutating func charClassBody(caseless: Bool) throws(RegexError) -> CharSet {
        // Reuse the bracket parser by pretending a '[' was read; `first` handling aside,
        // a leading ']' here would be odd and is read as the end, as Oniguruma does.
        if at("]") { i += 1; return .ranges([]) }
        return try charClass(caseless: caseless)
    }

    /// Refuses literal scalars whose full case folding is several scalars under `(?i)`.
    private func checkFolds(_ items: [RegexNode]) throws(RegexError) {
        for item in items {
            if case .set(.caseless(let r)) = item, r.count == 1, r[0].count == 1, UnicodeData.hasMultiScalarFold(r[0].lowerBound) {
                throw RegexError(message: "(?i) literal U+\(String(r[0].lowerBound, radix: 16, uppercase: true)) folds to several characters")
            }
            if case .char(let c) = item, UnicodeData.hasMultiScalarFold(c) {
                throw RegexError(message: "(?i) literal U+\(String(c, radix: 16, uppercase: true)) folds to several characters")
            }
        }
    }

    /// General-category property names (`L`, `Lu`, `Letter`, `Uppercase_Letter`, ...);
    /// Oniguruma ignores case, spaces, '_' and '-' in them.
    static func property(_ name: String) -> UInt32? {
        let key = String(name.lowercased().filter { $0 != "_" && $0 != " " && $0 != "-" })
        typealias C = UnicodeData.Category
        let table: [(String, String, [C])] = [
            ("l", "letter", [.Lu, .Ll, .Lt, .Lm, .Lo]), ("lu", "uppercaseletter", [.Lu]), ("ll", "lowercaseletter", [.Ll]),
            ("lt", "titlecaseletter", [.Lt]), ("lm", "modifierletter", [.Lm]), ("lo", "otherletter", [.Lo]),
            ("lc", "casedletter", [.Lu, .Ll, .Lt]),
            ("m", "mark", [.Mn, .Mc, .Me]), ("mn", "nonspacingmark", [.Mn]), ("mc", "spacingmark", [.Mc]), ("me", "enclosingmark", [.Me]),
            ("n", "number", [.Nd, .Nl, .No]), ("nd", "decimalnumber", [.Nd]), ("nl", "letternumber", [.Nl]), ("no", "othernumber", [.No]),
            ("p", "punctuation", [.Pc, .Pd, .Ps, .Pe, .Pi, .Pf, .Po]), ("pc", "connectorpunctuation", [.Pc]), ("pd", "dashpunctuation", [.Pd]),
            ("ps", "openpunctuation", [.Ps]), ("pe", "closepunctuation", [.Pe]), ("pi", "initialpunctuation", [.Pi]),
            ("pf", "finalpunctuation", [.Pf]), ("po", "otherpunctuation", [.Po]),
            ("s", "symbol", [.Sm, .Sc, .Sk, .So]), ("sm", "mathsymbol", [.Sm]), ("sc", "currencysymbol", [.Sc]),
            ("sk", "modifiersymbol", [.Sk]), ("so", "othersymbol", [.So]),
            ("z", "separator", [.Zs, .Zl, .Zp]), ("zs", "spaceseparator", [.Zs]), ("zl", "lineseparator", [.Zl]), ("zp", "paragraphseparator", [.Zp]),
            ("c", "other", [.Cc, .Cf, .Cs, .Co, .Cn]), ("cc", "control", [.Cc]), ("cf", "format", [.Cf]), ("cs", "surrogate", [.Cs]),
            ("co", "privateuse", [.Co]), ("cn", "unassigned", [.Cn]),
        ]
        for (short, long, cats) in table where key == short || key == long {
            return cats.reduce(0) { $0 | 1 << UInt32($1.rawValue) }
        }
        return nil
    }
}
