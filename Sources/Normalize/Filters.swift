import TokenmillCore

/// Record filters (DESIGN.md `filter`). A filter keeps a record or drops it with a reason
/// that is counted per source as `filtered` (datatrove's `dropped_<reason>`).
public struct RecordFilter: Sendable {
    public var minChars: Int
    public var maxChars: Int
    /// Instruction/chat records whose last assistant turn is empty teach nothing.
    public var dropEmptyResponse: Bool

    public init(minChars: Int = 1, maxChars: Int = Int.max, dropEmptyResponse: Bool = true) {
        self.minChars = minChars; self.maxChars = maxChars; self.dropEmptyResponse = dropEmptyResponse
    }

    /// nil to keep, or the reason to drop.
    public func reject(_ r: Record) -> String? {
        if dropEmptyResponse && r.kind == .conversation {
            guard let last = r.turns.last(where: { $0.role == .assistant }), !last.content.isEmpty else { return "empty_response" }
        }
        let n = r.scalarCount
        if n < minChars { return "min_chars" }
        if n > maxChars { return "max_chars" }
        return nil
    }
}
