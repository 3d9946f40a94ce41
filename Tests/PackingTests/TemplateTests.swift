import Packing
import TokenmillCore
import XCTest

/// The rendered text of each template, written out by hand from docs/TEMPLATES.md.
final class TemplateTests: XCTestCase {
    let rec = Record.instruction(source: 0, file: 0, line: 1, system: [], prompt: Array("Hi?".utf8), response: Array("Hello!".utf8))

    func flatten(_ segs: [Segment]) -> (String, String) {
        var all = "", trained = ""
        for s in segs {
            let (text, loss): (String, Bool)
            switch s {
            case .text(let b, let l): (text, loss) = (String(decoding: b, as: UTF8.self), l)
            case .special(let n, let l): (text, loss) = (n, l)
            }
            all += text
            if loss { trained += text }
        }
        return (all, trained)
    }

    func testChatML() {
        let (all, trained) = flatten(ChatTemplate(kind: .chatml).render(rec, eos: "<|endoftext|>"))
        XCTAssertEqual(all, "<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n")
        XCTAssertEqual(trained, "Hello!<|im_end|>")
        var sys = rec; sys.system = Array("Be brief.".utf8)
        XCTAssertEqual(flatten(ChatTemplate(kind: .chatml).render(sys, eos: "<|endoftext|>")).0,
                       "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n")
    }

    func testAlpaca() {
        let (all, trained) = flatten(ChatTemplate(kind: .alpaca).render(rec, eos: "</s>"))
        XCTAssertEqual(all, "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nHi?\n\n### Response:\nHello!</s>")
        XCTAssertEqual(trained, "Hello!</s>")
    }

    func testPlain() {
        let (all, trained) = flatten(ChatTemplate(kind: .plain).render(rec, eos: "<|endoftext|>"))
        XCTAssertEqual(all, "Hi?\nHello!<|endoftext|>")
        XCTAssertEqual(trained, "Hello!<|endoftext|>")
    }

    func testTextRecordsAreTrainedEverywhereAndEndWithEOS() {
        let t = Record(source: 0, file: 0, line: 1, kind: .text, text: Array("Some text.".utf8))
        for kind in ChatTemplate.Kind.allCases {
            let (all, trained) = flatten(ChatTemplate(kind: kind).render(t, eos: "<|endoftext|>"))
            XCTAssertEqual(all, "Some text.<|endoftext|>")
            XCTAssertEqual(trained, all)
        }
    }

    func testResponseIsItsOwnSegment() {
        let segs = ChatTemplate(kind: .chatml).render(rec, eos: "<|endoftext|>")
        XCTAssertTrue(segs.contains(.text(Array("Hello!".utf8), loss: true)))
        XCTAssertTrue(segs.contains(.text(Array("assistant\n".utf8), loss: false)))
    }

    /// Two turns: loss on each assistant turn and its end marker, nothing else.
    var twoTurns: Record {
        Record(source: 0, file: 0, line: 1, kind: .conversation, system: Array("Be brief.".utf8),
               turns: [.init(role: .user, content: Array("Hi?".utf8)), .init(role: .assistant, content: Array("Hello!".utf8)),
                       .init(role: .user, content: Array("Bye?".utf8)), .init(role: .assistant, content: Array("Bye.".utf8))])
    }

    func testLlama3() {
        let (all, trained) = flatten(ChatTemplate(kind: .llama3).render(twoTurns, eos: "<|end_of_text|>"))
        XCTAssertEqual(all, "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                       + "<|start_header_id|>user<|end_header_id|>\n\nHi?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
                       + "<|start_header_id|>user<|end_header_id|>\n\nBye?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nBye.<|eot_id|>")
        XCTAssertEqual(trained, "Hello!<|eot_id|>Bye.<|eot_id|>")
        XCTAssertEqual(ChatTemplate(kind: .llama3).specialTokens, ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"])
    }

    func testAlignAnything() {
        let (all, trained) = flatten(ChatTemplate(kind: .alignAnything).render(rec, eos: "</s>"))
        XCTAssertEqual(all, "BEGINNING OF CONVERSATION: USER: Hi? ASSISTANT:Hello!</s>")
        XCTAssertEqual(trained, "Hello!</s>")
        let (multi, multiTrained) = flatten(ChatTemplate(kind: .alignAnything).render(twoTurns, eos: "</s>"))
        XCTAssertEqual(multi, "BEGINNING OF CONVERSATION: Be brief. USER: Hi? ASSISTANT:Hello!</s>USER: Bye? ASSISTANT:Bye.</s>")
        XCTAssertEqual(multiTrained, "Hello!</s>Bye.</s>")
        XCTAssertEqual(ChatTemplate.builtin("align-anything")?.kind, .alignAnything)
    }

    /// `loss: last_turn`: only the last assistant turn and its marker are trained; the
    /// segments (so the ids) are the same as with every turn trained.
    func testLastTurnLossKeepsTheSegmentsAndTrainsOnlyTheLastTurn() {
        for kind in [ChatTemplate.Kind.chatml, .llama3, .alpaca, .plain, .alignAnything] {
            var last = ChatTemplate(kind: kind)
            last.lossScope = .lastTurn
            let all = ChatTemplate(kind: kind).render(twoTurns, eos: "</s>"), lastSegs = last.render(twoTurns, eos: "</s>")
            XCTAssertEqual(all.count, lastSegs.count, "\(kind)")
            XCTAssertEqual(flatten(all).0, flatten(lastSegs).0, "\(kind)")
            let marker = kind == .chatml ? "<|im_end|>" : kind == .llama3 ? "<|eot_id|>" : "</s>"
            XCTAssertEqual(flatten(lastSegs).1, "Bye." + marker, "\(kind)")
            XCTAssertEqual(flatten(all).1, "Hello!" + marker + "Bye." + marker, "\(kind)")
        }
    }

    /// A custom template whose turn ends are plain text: the ids of an exchange do not
    /// depend on whether the turn before it is trained.
    func testCustomTurnsKeepTheirSegmentsUnderEitherLossScope() {
        var c = CustomTemplate(name: "t")
        c.eos = .none
        c.userBefore = .init("\nUser: "); c.userAfter = .init("\n")
        c.assistantBefore = .init("Bot:"); c.assistantAfter = .init("\n", loss: true)
        var last = ChatTemplate(custom: c)
        last.lossScope = .lastTurn
        func texts(_ segs: [Segment]) -> [String] {
            segs.map { if case .text(let b, _) = $0 { return String(decoding: b, as: UTF8.self) } else { return "<special>" } }
        }
        let all = ChatTemplate(custom: c).render(twoTurns, eos: "E"), lastSegs = last.render(twoTurns, eos: "E")
        XCTAssertEqual(texts(all), texts(lastSegs))
        XCTAssertEqual(texts(all), ["Be brief.\nUser: Hi?\nBot:", "Hello!\n", "\nUser: Bye?\nBot:", "Bye.\n"])
    }

    var instChat: CustomTemplate {
        var c = CustomTemplate(name: "inst-chat")
        c.bos = "<s>"; c.eos = .none; c.specialTokens = ["<s>", "</s>"]
        c.systemBefore = .init("<<SYS>>\n"); c.systemAfter = .init("\n<</SYS>>\n\n")
        c.userBefore = .init("[INST] "); c.userAfter = .init(" [/INST]")
        c.assistantBefore = .init(" "); c.assistantAfter = .init(" </s>", loss: true)
        return c
    }

    /// docs/TEMPLATES.md's custom example, segment by segment.
    func testCustomTemplateAsDocumented() {
        var r = rec; r.system = Array("Be brief.".utf8)
        let segs = ChatTemplate(custom: instChat).render(r, eos: "<|endoftext|>")
        XCTAssertEqual(segs, [.special("<s>", loss: false), .text(Array("<<SYS>>\nBe brief.\n<</SYS>>\n\n[INST] Hi? [/INST] ".utf8), loss: false),
                              .text(Array("Hello! ".utf8), loss: true), .special("</s>", loss: true)])
        XCTAssertEqual(ChatTemplate(custom: instChat).name, "inst-chat")
        XCTAssertEqual(ChatTemplate(custom: instChat).specialTokens, ["<s>", "</s>"])
        // Two turns, EOS after each assistant turn, a default system, and part losses.
        var c = instChat
        c.eos = .assistant; c.defaultSystem = Array("Default.".utf8); c.userAfter = .init(" [/INST]", loss: true)
        let (all, trained) = flatten(ChatTemplate(custom: c).render(twoTurns, eos: "<|endoftext|>"))
        XCTAssertEqual(all, "<s><<SYS>>\nBe brief.\n<</SYS>>\n\n[INST] Hi? [/INST] Hello! </s><|endoftext|>[INST] Bye? [/INST] Bye. </s><|endoftext|>")
        XCTAssertEqual(trained, " [/INST]Hello! </s><|endoftext|> [/INST]Bye. </s><|endoftext|>")
        let noSystem = flatten(ChatTemplate(custom: c).render(rec, eos: "E")).0
        XCTAssertEqual(noSystem, "<s><<SYS>>\nDefault.\n<</SYS>>\n\n[INST] Hi? [/INST] Hello! </s>E")
        // last_turn on a custom template; EOS once at the end.
        var last = ChatTemplate(custom: c)
        last.lossScope = .lastTurn
        c.eos = .end
        XCTAssertEqual(flatten(last.render(twoTurns, eos: "E")).1, " [/INST] [/INST]Bye. </s>E")
        XCTAssertEqual(flatten(ChatTemplate(custom: c).render(twoTurns, eos: "E")).0,
                       "<s><<SYS>>\nBe brief.\n<</SYS>>\n\n[INST] Hi? [/INST] Hello! </s>[INST] Bye? [/INST] Bye. </s>E")
    }

    /// Special token names are split out of part texts (earliest first, longest on a tie),
    /// never out of data text.
    func testCustomSpecialTokensComeOnlyFromParts() {
        var c = CustomTemplate(name: "t")
        c.specialTokens = ["<a>", "<ab>", "<b>"]
        c.userBefore = .init("x<ab>y<b>")
        let r = Record.instruction(source: 0, file: 0, line: 1, system: [], prompt: Array("<b> data".utf8), response: Array("<a>".utf8))
        let segs = ChatTemplate(custom: c).render(r, eos: "E")
        XCTAssertEqual(segs, [.text(Array("x".utf8), loss: false), .special("<ab>", loss: false), .text(Array("y".utf8), loss: false),
                              .special("<b>", loss: false), .text(Array("<b> data".utf8), loss: false), .text(Array("<a>".utf8), loss: true),
                              .special("E", loss: true)])
    }
}
