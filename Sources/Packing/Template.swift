import TokenmillCore

/// A piece of a rendered document: text to tokenize, or a special token by name; `loss`
/// says whether its tokens are training targets.
public enum Segment: Equatable, Sendable {
    case text([UInt8], loss: Bool)
    case special(String, loss: Bool)
}

/// Chat templates (docs/TEMPLATES.md): how a record becomes segments.
///
/// Adjacent text of the same loss flag within a turn is one segment, so the prompt side is
/// tokenized as one string; assistant content always starts its own segment, and so does
/// every user turn after the first, so the ids of an exchange never depend on the one
/// before it or on the loss scope.
public struct ChatTemplate: Sendable {
    public enum Kind: String, Sendable, CaseIterable { case plain, alpaca, chatml, llama3, alignAnything = "align-anything", custom }
    /// Which assistant turns are trained on: every one (with its end marker), or only the
    /// conversation's last (LLaMA-Factory's `mask_history`).
    public enum LossScope: String, Sendable { case allTurns = "all_turns", lastTurn = "last_turn" }
    public let kind: Kind
    public var lossScope: LossScope = .allTurns
    /// A user-defined template (`kind == .custom`).
    public var custom: CustomTemplate?
    public var name: String { custom?.name ?? kind.rawValue }

    public static let alpacaDefaultSystem = Array("Below is an instruction that describes a task. Write a response that appropriately completes the request.".utf8)

    public init(kind: Kind) { self.kind = kind }

    public init(custom: CustomTemplate) { kind = .custom; self.custom = custom }

    public static func builtin(_ name: String) -> ChatTemplate? {
        guard let k = Kind(rawValue: name), k != .custom else { return nil }
        return ChatTemplate(kind: k)
    }

    public static var builtinNames: [String] { Kind.allCases.filter { $0 != .custom }.map(\.rawValue) }

    /// Special tokens the template emits (besides EOS).
    public var specialTokens: [String] {
        switch kind {
        case .chatml: return ["<|im_start|>", "<|im_end|>"]
        case .llama3: return ChatTemplate.llama3Tokens
        case .custom: return custom?.specialTokens ?? []
        default: return []
        }
    }

    /// Meta's Llama 3 chat tokens, in the order they are added to a vocabulary that lacks them.
    public static let llama3Tokens = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]

    /// The conversation format of PKU-Alignment's safe-rlhf and align-anything.
    static let alignBegin = "BEGINNING OF CONVERSATION: ", alignUser = "USER: ", alignAssistant = "ASSISTANT:"

    public func render(_ r: Record, eos: String) -> [Segment] {
        var b = SegmentBuilder()
        // Every template: a text record is its text, then EOS, all trained (the build's
        // DocumentTokenizer encodes it so without segments; keep the two in step).
        if r.kind == .text {
            b.text(r.text, loss: true)
            b.special(eos, loss: true)
            return b.segments
        }
        // Whether assistant turn i carries loss (its content and end marker).
        let lastAssistant = r.turns.lastIndex { $0.role == .assistant } ?? -1
        func trained(_ i: Int) -> Bool { lossScope == .allTurns || i == lastAssistant }
        switch kind {
        case .custom:
            custom!.render(r, eos: eos, trained: trained, into: &b)
        case .plain:
            if !r.system.isEmpty { b.text(r.system, loss: false); b.text("\n", loss: false) }
            for (i, t) in r.turns.enumerated() {
                if i > 0 && t.role == .user { b.breakText() }   // a new exchange starts a new segment
                if t.role == .user {
                    if i > 0 { b.text("\n", loss: false) }
                    b.text(t.content, loss: false); b.text("\n", loss: false)
                } else {
                    b.breakText()
                    b.text(t.content, loss: trained(i)); b.special(eos, loss: trained(i))
                }
            }
        case .alpaca:
            b.text(r.system.isEmpty ? ChatTemplate.alpacaDefaultSystem : r.system, loss: false)
            b.text("\n\n", loss: false)
            for (i, t) in r.turns.enumerated() {
                if i > 0 && t.role == .user { b.breakText() }   // a new exchange starts a new segment
                if t.role == .user {
                    if i > 0 { b.text("\n\n", loss: false) }
                    b.text("### Instruction:\n", loss: false); b.text(t.content, loss: false)
                    b.text("\n\n### Response:\n", loss: false)
                } else {
                    b.breakText()
                    b.text(t.content, loss: trained(i)); b.special(eos, loss: trained(i))
                }
            }
        case .llama3:
            // <|begin_of_text|>, then each turn as header, blank line, content, <|eot_id|>;
            // the assistant's content and its <|eot_id|> carry loss (LLaMA-Factory's llama3).
            b.special("<|begin_of_text|>", loss: false)
            func header(_ role: String) {
                b.special("<|start_header_id|>", loss: false); b.text(role, loss: false)
                b.special("<|end_header_id|>", loss: false); b.text("\n\n", loss: false)
            }
            if !r.system.isEmpty {
                header("system"); b.text(r.system, loss: false); b.special("<|eot_id|>", loss: false)
            }
            for (i, t) in r.turns.enumerated() {
                if i > 0 && t.role == .user { b.breakText() }   // a new exchange starts a new segment
                if t.role == .user {
                    header("user"); b.text(t.content, loss: false); b.special("<|eot_id|>", loss: false)
                } else {
                    header("assistant")
                    b.breakText()
                    b.text(t.content, loss: trained(i)); b.special("<|eot_id|>", loss: trained(i))
                }
            }
        case .alignAnything:
            // BEGINNING OF CONVERSATION: [system ]USER: {prompt} ASSISTANT:[{response}EOS]₁
            // and on for each turn, as safe-rlhf's PROMPT_BEGIN/USER/ASSISTANT join them.
            b.text(ChatTemplate.alignBegin, loss: false)
            if !r.system.isEmpty { b.text(r.system, loss: false); b.text(" ", loss: false) }
            for (i, t) in r.turns.enumerated() {
                if i > 0 && t.role == .user { b.breakText() }   // a new exchange starts a new segment
                if t.role == .user {
                    b.text(ChatTemplate.alignUser, loss: false); b.text(t.content, loss: false); b.text(" ", loss: false)
                    b.text(ChatTemplate.alignAssistant, loss: false)
                } else {
                    b.breakText()
                    b.text(t.content, loss: trained(i)); b.special(eos, loss: trained(i))
                }
            }
        case .chatml:
            if !r.system.isEmpty {
                b.special("<|im_start|>", loss: false); b.text("system\n", loss: false); b.text(r.system, loss: false)
                b.special("<|im_end|>", loss: false); b.text("\n", loss: false)
            }
            for (i, t) in r.turns.enumerated() {
                if i > 0 && t.role == .user { b.breakText() }   // a new exchange starts a new segment
                b.special("<|im_start|>", loss: false)
                if t.role == .user {
                    b.text("user\n", loss: false); b.text(t.content, loss: false)
                    b.special("<|im_end|>", loss: false)
                } else {
                    b.text("assistant\n", loss: false)
                    b.breakText()
                    b.text(t.content, loss: trained(i)); b.special("<|im_end|>", loss: trained(i))
                }
                b.text("\n", loss: false)
            }
        }
        return b.segments
    }
}

/// Accumulates segments, merging adjacent text of equal loss unless told to break.
struct SegmentBuilder {
    var segments: [Segment] = []
    var mayMerge = true

    mutating func text(_ s: String, loss: Bool) { text(Array(s.utf8), loss: loss) }

    mutating func text(_ s: [UInt8], loss: Bool) {
        if s.isEmpty { return }
        if mayMerge, case .text(let prev, let l)? = segments.last, l == loss {
            segments[segments.count - 1] = .text(prev + s, loss: loss)
        } else {
            segments.append(.text(s, loss: loss))
        }
        mayMerge = true
    }

    mutating func special(_ name: String, loss: Bool) { segments.append(.special(name, loss: loss)); mayMerge = true }
    mutating func breakText() { mayMerge = false }
}
