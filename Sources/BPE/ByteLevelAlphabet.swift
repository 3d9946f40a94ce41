/// GPT-2's byte-level alphabet (`bytes_to_unicode`): every byte is shown as a printable
/// character so BPE vocabularies can be stored as JSON strings. Printable Latin-1 bytes
/// (`!`..`~`, `¡`..`¬`, `®`..`ÿ`) stand for themselves; the other 68 bytes map, in byte
/// order, to U+0100, U+0101, … (so the space 0x20 is `Ġ` U+0120).
enum ByteLevelAlphabet {
    /// Character (scalar value) for each byte.
    static let scalars: [UInt32] = {
        var out = [UInt32](repeating: 0, count: 256)
        var extra: UInt32 = 0
        for b in 0..<256 {
            let printable = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
            if printable { out[b] = UInt32(b) } else { out[b] = 256 + extra; extra += 1 }
        }
        return out
    }()

    /// Byte for each alphabet character.
    static let bytes: [UInt32: UInt8] = {
        var m: [UInt32: UInt8] = [:]
        for (b, s) in scalars.enumerated() { m[s] = UInt8(b) }
        return m
    }()

    /// The alphabet's text (UTF-8) for raw bytes: what pre-tokenizer steps after `ByteLevel`
    /// see in `tokenizers`.
    static func encode(_ raw: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(raw.count * 2)
        for b in raw {
            let s = scalars[Int(b)]
            if s < 0x80 { out.append(UInt8(s)) } else { out.append(UInt8(0xC0 | s >> 6)); out.append(UInt8(0x80 | s & 0x3F)) }
        }
        return out
    }

    /// The raw bytes a vocabulary string stands for, or nil when it has a character outside
    /// the alphabet.
    static func decode(_ s: [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(s.count)
        for scalar in String(decoding: s, as: UTF8.self).unicodeScalars {
            guard let b = bytes[scalar.value] else { return nil }
            out.append(b)
        }
        return out
    }
}
