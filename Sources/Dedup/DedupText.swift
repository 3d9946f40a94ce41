import TokenmillCore

/// Which text of a record dedup compares (`on` in the spec).
public enum DedupField: String, Sendable, CaseIterable {
    /// The user turns (instruction and input), or a text record's text.
    case prompt
    /// The assistant turns.
    case response
    /// System prompt and every turn, or the text.
    case all

    /// The compared text: the fields joined with "\n".
    public func text(of r: Record) -> [UInt8] {
        // A text record (most pre-training rows): its text, shared, with no list of parts
        // to allocate (this runs twice a record in a build: the exact key and MinHash).
        if r.kind == .text && r.turns.isEmpty && (self == .prompt || (self == .all && r.system.isEmpty)) { return r.text }
        var parts: [[UInt8]] = []
        switch self {
        case .prompt:
            if r.kind == .text { parts = [r.text] } else { parts = r.turns.filter { $0.role == .user }.map(\.content) }
        case .response:
            parts = r.turns.filter { $0.role == .assistant }.map(\.content)
        case .all:
            if !r.system.isEmpty { parts.append(r.system) }
            parts.append(contentsOf: r.turns.map(\.content))
            if !r.text.isEmpty { parts.append(r.text) }
        }
        if parts.count == 1 { return parts[0] }  // shared storage, no copy
        var out: [UInt8] = []
        for (k, p) in parts.enumerated() {
            if k > 0 { out.append(0x0A) }
            out.append(contentsOf: p)
        }
        return out
    }
}
