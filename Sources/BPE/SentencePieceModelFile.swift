import TokenmillCore

/// A SentencePiece model file (`tokenizer.model`, the `ModelProto` protobuf) of BPE type,
/// read into the same engine as SentencePiece-style tokenizer.json files, encoding as the
/// `sentencepiece` library's `encode` does (docs/BPE.md, "SentencePiece"):
///
/// - normalization: the model's `normalizer_spec` — `identity` only (no precompiled
///   character map or rules): leading and trailing spaces dropped and runs of spaces
///   collapsed (`remove_extra_whitespaces`), "▁" before the text (`add_dummy_prefix`),
///   spaces as "▁" (`escape_whitespaces`);
/// - the normalized text cut at `USER_DEFINED` pieces (leftmost-longest), which never merge;
/// - the rest merged from characters, the pair whose joined piece scores highest first,
///   leftmost on ties (`bpe_model.cc`'s agenda);
/// - a character that is no piece becomes its `<0xNN>` byte pieces (`byte_fallback`), else
///   the unknown piece.
///
/// What cannot be done exactly is refused naming the field: other model types (Unigram,
/// word, char), other normalizers, `treat_whitespace_as_suffix`, UNUSED pieces.
enum SentencePieceModelFile {
    enum PieceType: Int { case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6 }

    struct Piece {
        var text: [UInt8]
        var score: Float = 0
        var type: PieceType = .normal
    }

    struct Model {
        var pieces: [Piece] = []
        var modelType = 1          // UNIGRAM unless stated
        var byteFallback = false
        var treatWhitespaceAsSuffix = false
        var eosID = 2, bosID = 1   // TrainerSpec's defaults
        var normalizerName = ""
        var charsmap = 0           // bytes of precompiled_charsmap
        var rules = 0              // bytes of normalization_rule_tsv
        var addDummyPrefix = true
        var removeExtraWhitespaces = true
        var escapeWhitespaces = true
    }

    static func load(path: String, threads: Int) throws -> Tokenizer {
        let bytes = try FileSystem.readFile(path)
        func refuse(_ m: String) -> TokenmillError { .unsupported("\(path): \(m)") }
        let model: Model
        switch Result(catching: { () throws(Damaged) -> Model in try parse(bytes) }) {
        case .success(let m): model = m
        case .failure(let e): throw TokenmillError.badInput(path: path, line: 0, message: "not a SentencePiece model (protobuf ModelProto): \(e.message)")
        }
        let types = [1: "UNIGRAM", 2: "BPE", 3: "WORD", 4: "CHAR"]
        guard model.modelType == 2 else { throw refuse("trainer_spec.model_type \(types[model.modelType] ?? String(model.modelType)): only BPE models are supported") }
        guard model.normalizerName == "identity" || (model.normalizerName.isEmpty && model.charsmap == 0), model.charsmap == 0, model.rules == 0 else {
            throw refuse("normalizer_spec \(model.normalizerName.isEmpty ? "(custom rules)" : model.normalizerName) with a precompiled character map: not supported (only identity normalizers are)")
        }
        if model.treatWhitespaceAsSuffix { throw refuse("trainer_spec.treat_whitespace_as_suffix: not supported") }
        if let u = model.pieces.firstIndex(where: { $0.type == .unused }) {
            throw refuse("pieces[\(u)] of type UNUSED: not supported")
        }
        guard !model.pieces.isEmpty else { throw refuse("no pieces") }

        // Pieces the merges may produce (NORMAL and USER_DEFINED), by text.
        var vocab: [[UInt8]: UInt32] = [:]
        var mergeable: [[UInt8]: UInt32] = [:]
        var unk: UInt32? = nil
        var special: [(String, UInt32)] = []
        var userDefined: [AddedTokens.Entry] = []
        for (i, p) in model.pieces.enumerated() {
            let id = UInt32(i)
            switch p.type {
            case .normal, .userDefined:
                guard mergeable[p.text] == nil else { throw refuse("pieces[\(i)] \(JSONWriter.quoted(String(decoding: p.text, as: UTF8.self))) appears twice") }
                mergeable[p.text] = id
                if p.type == .userDefined { userDefined.append(AddedTokens.Entry(bytes: p.text, id: id, lstrip: false, rstrip: false)) }
            case .unknown: unk = id
            case .control: special.append((String(decoding: p.text, as: UTF8.self), id))
            case .byte, .unused: break
            }
            if vocab[p.text] == nil { vocab[p.text] = id }
        }
        // A merge is a split of a mergeable piece into two mergeable pieces at a character
        // boundary; its priority is the joined piece's score (higher first), equal scores
        // equal (then the leftmost pair goes first).
        let distinct = Set(model.pieces.map(\.score)).sorted(by: >)
        var rankOf: [Float: UInt32] = [:]
        for (r, s) in distinct.enumerated() { rankOf[s] = UInt32(r) }
        var merges: [UInt64: (rank: UInt32, id: UInt32)] = [:]
        for (text, id) in mergeable where model.pieces[Int(id)].type == .normal {
            var k = 0
            while k < text.count {
                let lead = text[k]
                k += lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
                guard k < text.count else { break }
                guard let a = mergeable[Array(text[..<k])], let b = mergeable[Array(text[k...])] else { continue }
                merges[UInt64(a) << 32 | UInt64(b)] = (rankOf[model.pieces[Int(id)].score]!, id)
            }
        }
        if model.byteFallback {
            let hex = Array("0123456789ABCDEF".utf8)
            for b in 0..<256 {
                let name = Array("<0x".utf8) + [hex[b >> 4], hex[b & 15]] + [UInt8(ascii: ">")]
                guard let id = vocab[name], model.pieces[Int(id)].type == .byte else { throw refuse("byte_fallback without a BYTE piece \(String(decoding: name, as: UTF8.self))") }
            }
        }
        let normalizer = SentencePieceBPE.ModelNormalizer(addDummyPrefix: model.addDummyPrefix, removeExtraWhitespaces: model.removeExtraWhitespaces,
                                                          escapeWhitespaces: model.escapeWhitespaces)
        // Byte pieces only count with byte_fallback (without it, an unknown character is
        // the unknown piece even if the model happens to hold <0xNN> pieces).
        var engineVocab = vocab
        if !model.byteFallback { engineVocab = engineVocab.filter { model.pieces[Int($0.value)].type != .byte } }
        // Consecutive unknown pieces are one (sentencepiece merges the run after encoding).
        let sp = SentencePieceBPE(vocab: engineVocab, merges: merges, unk: unk, fuseUnk: true,
                                  added: AddedTokens(userDefined), modelNormalizer: normalizer)
        let table = try RankTable(tokens: (0..<256).map { [UInt8($0)] }, threads: 1)
        guard model.eosID >= 0, model.eosID < model.pieces.count else {
            throw refuse("trainer_spec.eos_id \(model.eosID) names no piece; set \"tokenizer\": {\"path\": ..., \"eos\": \"...\"} in the spec")
        }
        let eos = UInt32(model.eosID)
        if !special.contains(where: { $0.1 == eos }) { special.append((String(decoding: model.pieces[model.eosID].text, as: UTF8.self), eos)) }
        var name = FileSystem.basename(of: path)
        if name.hasSuffix(".model") { name.removeLast(".model".count) }
        return Tokenizer(name: name, ranks: table, pretokenizer: .whole, special: special, eos: eos,
                         vocabSize: model.pieces.count, vocabHash: XXH3.hash64(bytes), sentencePiece: sp)
    }

    struct Damaged: Error { var message: String }

    /// The fields of `ModelProto` this reader needs (sentencepiece_model.proto): pieces
    /// (1: piece 1, score 2, type 3), trainer_spec (2: model_type 3,
    /// treat_whitespace_as_suffix 24, byte_fallback 35, bos_id 41, eos_id 42),
    /// normalizer_spec (3: name 1, precompiled_charsmap 2, add_dummy_prefix 3,
    /// remove_extra_whitespaces 4, escape_whitespaces 5, normalization_rule_tsv 6). Other
    /// fields are skipped by their wire type.
    static func parse(_ b: [UInt8]) throws(Damaged) -> Model {
        var m = Model()
        var r = ProtoReader(b, 0..<b.count)
        while let (field, wire) = try r.key() {
            switch (field, wire) {
            case (1, 2):
                var p = try r.message()
                var piece = Piece(text: [])
                while let (f, w) = try p.key() {
                    switch (f, w) {
                    case (1, 2): piece.text = Array(b[try p.bytes()])
                    case (2, 5): piece.score = Float(bitPattern: try p.fixed32())
                    case (3, 0):
                        let t = Int(truncatingIfNeeded: try p.varint())
                        guard let type = PieceType(rawValue: t) else { throw Damaged(message: "piece \(m.pieces.count) has type \(t)") }
                        piece.type = type
                    default: try p.skip(w)
                    }
                }
                m.pieces.append(piece)
            case (2, 2):
                var t = try r.message()
                while let (f, w) = try t.key() {
                    switch (f, w) {
                    case (3, 0): m.modelType = Int(truncatingIfNeeded: try t.varint())
                    case (24, 0): m.treatWhitespaceAsSuffix = try t.varint() != 0
                    case (35, 0): m.byteFallback = try t.varint() != 0
                    case (41, 0): m.bosID = Int(Int32(truncatingIfNeeded: try t.varint()))
                    case (42, 0): m.eosID = Int(Int32(truncatingIfNeeded: try t.varint()))
                    default: try t.skip(w)
                    }
                }
            case (3, 2):
                var n = try r.message()
                while let (f, w) = try n.key() {
                    switch (f, w) {
                    case (1, 2): m.normalizerName = String(decoding: b[try n.bytes()], as: UTF8.self)
                    case (2, 2): m.charsmap = try n.bytes().count
                    case (3, 0): m.addDummyPrefix = try n.varint() != 0
                    case (4, 0): m.removeExtraWhitespaces = try n.varint() != 0
                    case (5, 0): m.escapeWhitespaces = try n.varint() != 0
                    case (6, 2): m.rules = try n.bytes().count
                    default: try n.skip(w)
                    }
                }
            default: try r.skip(wire)
            }
        }
        return m
    }
}

/// Protobuf wire format over a byte range: every length checked against the range.
struct ProtoReader {
    let b: [UInt8]
    var p: Int
    let end: Int

    init(_ b: [UInt8], _ range: Range<Int>) { self.b = b; p = range.lowerBound; end = range.upperBound }

    /// The next field number and wire type; nil at the end.
    mutating func key() throws(SentencePieceModelFile.Damaged) -> (Int, Int)? {
        if p >= end { return nil }
        let k = try varint()
        guard k >> 3 > 0 else { throw .init(message: "field number 0 at byte \(p)") }
        return (Int(truncatingIfNeeded: k >> 3), Int(k & 7))
    }

    mutating func varint() throws(SentencePieceModelFile.Damaged) -> UInt64 {
        var v: UInt64 = 0, shift: UInt64 = 0
        while true {
            guard p < end else { throw .init(message: "a number runs past the end at byte \(p)") }
            let c = b[p]; p += 1
            v |= UInt64(c & 0x7F) << shift
            if c & 0x80 == 0 { return v }
            shift += 7
            guard shift < 64 else { throw .init(message: "a number longer than 10 bytes at byte \(p)") }
        }
    }

    mutating func fixed32() throws(SentencePieceModelFile.Damaged) -> UInt32 {
        guard end - p >= 4 else { throw .init(message: "a 4-byte value runs past the end at byte \(p)") }
        defer { p += 4 }
        return UInt32(b[p]) | UInt32(b[p + 1]) << 8 | UInt32(b[p + 2]) << 16 | UInt32(b[p + 3]) << 24
    }

    /// A length-delimited field's byte range.
    mutating func bytes() throws(SentencePieceModelFile.Damaged) -> Range<Int> {
        let n = try varint()
        guard n <= UInt64(end - p) else { throw .init(message: "a field of \(n) bytes runs past the end at byte \(p)") }
        defer { p += Int(n) }
        return p..<(p + Int(n))
    }

    mutating func message() throws(SentencePieceModelFile.Damaged) -> ProtoReader { ProtoReader(b, try bytes()) }

    mutating func skip(_ wire: Int) throws(SentencePieceModelFile.Damaged) {
        switch wire {
        case 0: _ = try varint()
        case 1: guard end - p >= 8 else { throw .init(message: "an 8-byte value runs past the end") }; p += 8
        case 2: _ = try bytes()
        case 5: _ = try fixed32()
        default: throw .init(message: "wire type \(wire) at byte \(p)")
        }
    }
}
