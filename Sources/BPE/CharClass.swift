/// Unicode character classes the pre-tokenizer patterns test, one byte a scalar.
///
/// Bits: `upper` Lu/Lt, `lower` Ll, `otherLetter` Lm/Lo, `mark` Mn/Mc/Me, `number`
/// Nd/Nl/No, `space` White_Space (what `\s` means in the Rust `regex` crate tiktoken
/// uses). The table covers U+0000..U+3FFFF (planes 0-3: every assigned letter, number
/// and CJK ideograph) and is filled once from the Swift standard library's Unicode
/// data; scalars above go to the standard library directly (rare: tags, private use).
/// Unicode version: the standard library's (Unicode 16 in Swift 6.x); the Rust regex
/// crate behind tiktoken follows the same version, so classes agree except on scalars
/// assigned after it.
enum CharClass {
    static let upper: UInt8 = 1
    static let lower: UInt8 = 2
    static let otherLetter: UInt8 = 4
    static let mark: UInt8 = 8
    static let number: UInt8 = 16
    static let space: UInt8 = 32

    static let letter: UInt8 = upper | lower | otherLetter
    /// o200k's `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]`
    static let upperish: UInt8 = upper | otherLetter | mark
    /// o200k's `[\p{Ll}\p{Lm}\p{Lo}\p{M}]`
    static let lowerish: UInt8 = lower | otherLetter | mark

    static let tableLimit: UInt32 = 0x40000

    static let table: UnsafeMutableBufferPointer<UInt8> = {
        let t = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: Int(tableLimit))
        for v in 0..<tableLimit { t[Int(v)] = compute(v) }
        return t
    }()

    @inline(__always)
    static func of(_ scalar: UInt32) -> UInt8 {
        scalar < tableLimit ? table[Int(scalar)] : compute(scalar)
    }

    static func compute(_ v: UInt32) -> UInt8 {
        guard let s = Unicode.Scalar(v) else { return 0 }
        let p = s.properties
        var c: UInt8 = p.isWhitespace ? space : 0
        switch p.generalCategory {
        case .uppercaseLetter, .titlecaseLetter: c |= upper
        case .lowercaseLetter: c |= lower
        case .modifierLetter, .otherLetter: c |= otherLetter
        case .nonspacingMark, .spacingMark, .enclosingMark: c |= mark
        case .decimalNumber, .letterNumber, .otherNumber: c |= number
        default: break
        }
        return c
    }
}
