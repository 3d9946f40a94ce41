import TokenmillCore

/// Record filters (DESIGN.md `filter`). A filter keeps a record or drops it with a reason
/// that is counted per source as `filtered` (datatrove's `dropped_<reason>`).
public struct RecordFilter: Sendable {
    public var minChars: Int
    public var maxChars: Int
    /// Instruction/chat records whose last assistant turn is empty teach nothing.
    public var dropEmptyResponse: Bool
    /// An empty assistant turn before the last would train on its end marker alone: such
    /// a conversation is dropped (`empty_assistant_turn`) unless the spec allows it.
    public var allowEmptyTurns = false
    /// Fewest words (maximal runs of non-White_Space scalars) over all text fields.
    public var minWords = 0
    /// Largest share of scalars that are not text: symbols (S*), controls, format,
    /// private-use and unassigned characters (C*) — over all non-space scalars. Catches
    /// rows of emoji, box drawing, base64 junk with symbols, mojibake. 1 = off.
    public var maxNonTextRatio = 1.0

    public init(minChars: Int = 1, maxChars: Int = Int.max, dropEmptyResponse: Bool = true) {
        self.minChars = minChars; self.maxChars = maxChars; self.dropEmptyResponse = dropEmptyResponse
    }

    /// nil to keep, or the reason to drop.
    public func reject(_ r: Record) -> String? {
        if dropEmptyResponse && r.kind == .conversation {
            guard let last = r.turns.last(where: { $0.role == .assistant }), !last.content.isEmpty else { return "empty_response" }
        }
        if !allowEmptyTurns && r.kind == .conversation && r.turns.contains(where: { $0.role == .assistant && $0.content.isEmpty }) {
            return "empty_assistant_turn"
        }
        let n = r.scalarCount
        if n < minChars { return "min_chars" }
        if n > maxChars { return "max_chars" }
        if minWords > 0 || maxNonTextRatio < 1 {
            var words = 0, nonSpace = 0, nonText = 0
            func scan(_ b: [UInt8]) {
                var inWord = false
                var i = 0
                while i < b.count {
                    var c = UInt32(b[i]), len = 1
                    if c >= 0x80 {
                        if c < 0xE0 { c = (c & 0x1F) << 6 | UInt32(b[i + 1] & 0x3F); len = 2 }
                        else if c < 0xF0 { c = (c & 0x0F) << 12 | UInt32(b[i + 1] & 0x3F) << 6 | UInt32(b[i + 2] & 0x3F); len = 3 }
                        else { c = (c & 0x07) << 18 | UInt32(b[i + 1] & 0x3F) << 12 | UInt32(b[i + 2] & 0x3F) << 6 | UInt32(b[i + 3] & 0x3F); len = 4 }
                    }
                    i += len
                    if UnicodeData.isSpace(c) { inWord = false; continue }
                    if !inWord { words += 1; inWord = true }
                    nonSpace += 1
                    let cat = UnicodeData.category(c)
                    // S* (19...22) and C* (0 = Cn, 26...29).
                    if (19...22).contains(cat) || cat == 0 || cat >= 26 { nonText += 1 }
                }
            }
            scan(r.system); scan(r.text)
            for t in r.turns { scan(t.content) }
            if words < minWords { return "min_words" }
            if nonSpace > 0 && Double(nonText) / Double(nonSpace) > maxNonTextRatio { return "non_text_ratio" }
        }
        return nil
    }
}
