import BPE
import Packing
import TokenmillCore

/// A rendered, tokenized document: tokens and per-token loss flags (0/1).
public struct TokenizedDocument: Sendable {
    public var tokens: [UInt32]
    public var lossMask: [UInt8]
}

/// Renders records through the template and tokenizes them on all cores. Special tokens
/// come only from the template's segments; data text is always encoded as ordinary text.
struct DocumentTokenizer {
    let tokenizer: Tokenizer
    let template: ChatTemplate
    let eosName: String
    let eosID: UInt32
    let specialIDs: [String: UInt32]

    init(tokenizer: Tokenizer, template: ChatTemplate) throws {
        self.tokenizer = tokenizer
        self.template = template
        guard let eos = tokenizer.specialTokens.first(where: { $0.id == tokenizer.eosID }) else {
            throw TokenmillError.unsupported("tokenizer \(tokenizer.name) has no EOS token")
        }
        eosName = eos.text
        var ids: [String: UInt32] = [:]
        for s in tokenizer.specialTokens { ids[s.text] = s.id }
        for name in template.specialTokens where ids[name] == nil {
            throw TokenmillError.unsupported("template \(template.name) needs \(name), which tokenizer \(tokenizer.name) lacks")
        }
        specialIDs = ids
        eosID = ids[eos.text]!
    }

    /// Renders one record and appends its tokens and loss flags; returns true, appending
    /// no flag, when every segment has loss (pre-training text: its flags are all 1).
    @discardableResult
    func tokenize(_ record: Record, encoder enc: inout Tokenizer.Encoder, tokens: inout [UInt32], mask: inout [UInt8]) -> Bool {
        if record.kind == .text {
            // What every template renders of a text record (`ChatTemplate.render`): its
            // text, then EOS, all trained; without the segment list a record allocated.
            tokens.reserveCapacity(tokens.count + record.text.count / 3 + 8)
            enc.encode(record.text, into: &tokens)
            tokens.append(eosID)
            return true
        }
        let segments = template.render(record, eos: eosName)
        let allLoss = segments.allSatisfy {
            switch $0 {
            case .text(_, let loss), .special(_, let loss): return loss
            }
        }
        // Room for most documents at once (a token a third of a byte: English takes ~4
        // bytes a token, Chinese ~2): growing by doubling copied each array ~8 times. More
        // room would hold a piece's worth of unused capacity until its tokens are written.
        var bytes = 0
        for seg in segments { if case .text(let t, _) = seg { bytes += t.count } }
        tokens.reserveCapacity(tokens.count + bytes / 3 + segments.count + 8)
        if !allLoss { mask.reserveCapacity(mask.count + bytes / 3 + segments.count + 8) }
        for seg in segments {
            switch seg {
            case .text(let t, let loss):
                let before = tokens.count
                enc.encode(t, into: &tokens)
                if !allLoss { mask.append(contentsOf: repeatElement(loss ? 1 : 0, count: tokens.count - before)) }
            case .special(let name, let loss):
                tokens.append(specialIDs[name]!)
                if !allLoss { mask.append(loss ? 1 : 0) }
            }
        }
        return allLoss
    }
}
