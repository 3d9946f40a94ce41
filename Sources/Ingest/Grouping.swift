import TokenmillCore

/// Row-per-turn sources (Empathetic Dialogues: one CSV row an utterance): `group_by`
/// names the conversation id, `order_by` the turn order, `content` the turn text; `role`
/// (a field) and `roles` name who speaks, or, without `role`, turns alternate user,
/// assistant, user, ... Leading system rows (a role that says so) are the system prompt,
/// joined by "\n"; else `system` is rendered from the conversation's first row (after
/// sorting by `order_by`).
///
/// Conversations come out in the order of their first row; rows of a conversation are
/// sorted by `order_by` (as numbers when every value is a number, else as text; ties
/// keep file order). The record's `line` is its first row's. Grouping is per file.
public struct TurnGroup: Sendable {
    public var by: FieldMapping.Value
    public var order: FieldMapping.Value?
    public var content: FieldMapping.Value
    public var system: FieldMapping.Value?
    public var roleField: FieldMapping.Value?
    public var roles: [String: FieldMapping.Chat.Role] = FieldMapping.Chat.defaultRoles

    public init(by: FieldMapping.Value, order: FieldMapping.Value?, content: FieldMapping.Value) {
        self.by = by; self.order = order; self.content = content
    }

    struct TurnRow {
        var key: [UInt8]
        var order: [UInt8]
        var role: FieldMapping.Chat.Role?
        var content: [UInt8]
        var system: [UInt8]
        var line: Int
    }

    func turnRow(from row: JSONValue, line: Int) throws -> TurnRow {
        guard case .object = row else { throw MappingError("row is \(row.kindName), expected an object") }
        let helper = FieldMapping()
        var role: FieldMapping.Chat.Role? = nil
        if let roleField {
            let name = String(decoding: try helper.render(roleField, row), as: UTF8.self)
            guard let r = roles[name] ?? roles[name.lowercased()] else { throw MappingError("unknown role '\(name)' (map it in \"roles\")") }
            role = r
        }
        return TurnRow(key: try helper.render(by, row), order: try order.map { try helper.render($0, row) } ?? [],
                       role: role, content: try helper.render(content, row),
                       system: try system.map { try helper.render($0, row) } ?? [], line: line)
    }

    func record(_ rows: [TurnRow], source: Int32, file: Int32) throws -> Record {
        var turns: [Record.Turn] = []
        // Leading system rows are joined by "\n", as a chat list's system messages are; the
        // map's `system` (rendered from the first row) is the default when there are none.
        var systemParts: [[UInt8]] = []
        for (k, r) in rows.enumerated() {
            let role = r.role ?? (k % 2 == 0 ? .user : .assistant)
            switch role {
            case .system:
                guard turns.isEmpty else { throw MappingError("a system row after the conversation started (row at line \(r.line))") }
                systemParts.append(r.content)
            case .user: turns.append(.init(role: .user, content: r.content))
            case .assistant: turns.append(.init(role: .assistant, content: r.content))
            }
        }
        guard turns.contains(where: { $0.role == .assistant }) else {
            throw MappingError("conversation '\(String(decoding: rows.first?.key ?? [], as: UTF8.self))' has no assistant turn (\(rows.count) row\(rows.count == 1 ? "" : "s"))")
        }
        var sys: [UInt8] = systemParts.isEmpty ? rows.first?.system ?? [] : []
        for (k, part) in systemParts.enumerated() {
            if k > 0 { sys.append(0x0A) }
            sys.append(contentsOf: part)
        }
        return Record(source: source, file: file, line: rows[0].line, kind: .conversation, system: sys, turns: turns)
    }
}

enum Grouping {
    /// Rows grouped by key in order of first appearance, each group sorted by `order`.
    static func conversations(_ rows: [TurnGroup.TurnRow]) -> [[TurnGroup.TurnRow]] {
        var index: [[UInt8]: Int] = [:]
        var groups: [[TurnGroup.TurnRow]] = []
        for r in rows {
            if let k = index[r.key] { groups[k].append(r) } else { index[r.key] = groups.count; groups.append([r]) }
        }
        return groups.map { g in
            let numbers = g.map { Double(String(decoding: $0.order, as: UTF8.self)) }
            if numbers.allSatisfy({ $0 != nil }) {
                return zip(g, numbers).enumerated().sorted { a, b in
                    a.element.1! != b.element.1! ? a.element.1! < b.element.1! : a.offset < b.offset
                }.map { $0.element.0 }
            }
            return g.enumerated().sorted { a, b in
                a.element.order != b.element.order ? a.element.order.lexicographicallyPrecedes(b.element.order) : a.offset < b.offset
            }.map(\.element)
        }
    }
}
