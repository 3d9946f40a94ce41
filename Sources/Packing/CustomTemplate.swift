import TokenmillCore

/// A template defined in the spec (docs/TEMPLATES.md, "Custom templates"): text before and
/// after the system prompt, each user turn and each assistant turn, an optional BOS, where
/// EOS goes, and which parts carry loss. Names listed in `specialTokens` are emitted as
/// those tokens wherever they appear in a part's text, never as text.
public struct CustomTemplate: Sendable {
    /// Text around a turn, and whether its tokens are training targets.
    public struct Part: Sendable, Equatable {
        public var text: [UInt8]
        public var loss: Bool
        public init(_ text: String = "", loss: Bool = false) { self.text = Array(text.utf8); self.loss = loss }
    }

    /// Where the tokenizer's EOS goes: after every assistant turn (after its `after`), once
    /// at the end of the document, or nowhere (the template's own end marker ends a turn).
    public enum EOSPlacement: String, Sendable { case assistant, end, none }

    public var name: String
    public var bos: String?
    /// `"bos": true`: the tokenizer's own BOS (which must be one of its special tokens).
    public var bosFromTokenizer = false
    public var eos: EOSPlacement = .assistant
    public var systemBefore = Part(), systemAfter = Part()
    public var userBefore = Part(), userAfter = Part()
    public var assistantBefore = Part(), assistantAfter = Part(loss: true)
    /// The system prompt of a record that has none (nil: no system block then).
    public var defaultSystem: [UInt8]?
    public var specialTokens: [String] = []

    public init(name: String) { self.name = name }

    /// Appends `part` (split at the special tokens it names); `trained` false clears its loss.
    func emit(_ part: Part, trained: Bool = true, into b: inout SegmentBuilder) {
        let loss = part.loss && trained
        var rest = part.text[...]
        while !rest.isEmpty {
            // The earliest special token in what is left (the longest on a tie).
            var best: (at: Int, name: String, length: Int)? = nil
            for name in specialTokens {
                let n = Array(name.utf8)
                guard !n.isEmpty, let at = Self.find(n, in: rest) else { continue }
                if best == nil || at < best!.at || (at == best!.at && n.count > best!.length) { best = (at, name, n.count) }
            }
            guard let hit = best else { b.text(Array(rest), loss: loss); return }
            if hit.at > rest.startIndex { b.text(Array(rest[rest.startIndex..<hit.at]), loss: loss) }
            b.special(hit.name, loss: loss)
            rest = rest[(hit.at + hit.length)...]
        }
    }

    static func find(_ needle: [UInt8], in hay: ArraySlice<UInt8>) -> Int? {
        guard needle.count <= hay.count else { return nil }
        var i = hay.startIndex
        while i + needle.count <= hay.endIndex {
            if hay[i] == needle[0] && hay[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }

    func render(_ r: Record, eos: String, trained: (Int) -> Bool, into b: inout SegmentBuilder) {
        if let bos { b.special(bos, loss: false) }
        let system = r.system.isEmpty ? defaultSystem : r.system
        if let system {
            emit(systemBefore, into: &b)
            b.text(system, loss: false)
            emit(systemAfter, into: &b)
        }
        for (i, t) in r.turns.enumerated() {
            if i > 0 && t.role == .user { b.breakText() }   // a new exchange starts a new segment
            if t.role == .user {
                emit(userBefore, into: &b)
                b.text(t.content, loss: false)
                emit(userAfter, into: &b)
            } else {
                emit(assistantBefore, into: &b)
                b.breakText()   // the response is tokenized on its own
                b.text(t.content, loss: trained(i))
                emit(assistantAfter, trained: trained(i), into: &b)
                if self.eos == .assistant { b.special(eos, loss: trained(i)) }
            }
        }
        if self.eos == .end { b.special(eos, loss: true) }
    }
}
