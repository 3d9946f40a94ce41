/// The kind of instruction a prompt gives, as the Align-Anything card compares prompt
/// types with Alpaca-52K's: its leading verb and that verb's object ("write" + "poem" for
/// "Write a short poem about rain"). A cheap stand-in for a dependency parse, on bytes:
/// the first word, lowercased, when it is a common imperative verb; the next word that
/// is not a determiner, pronoun or number as its object. Prompts that open with a
/// question word are "(question)", other English openings "(other)", and prompts that do
/// not start with an ASCII letter (Chinese, code, quotes) "(non-English)".
/// docs/REPORT.md lists the rule.
enum InstructionType {
    static let verbs: Set<String> = [
        "add", "analyze", "analyse", "answer", "arrange", "ask", "assess", "assign", "brainstorm", "build", "calculate",
        "categorize", "categorise", "change", "check", "choose", "cite", "classify", "combine", "come", "compare",
        "compile", "complete", "compose", "compute", "condense", "construct", "convert", "correct", "count", "craft",
        "create", "debug", "decide", "define", "delete", "describe", "design", "detect", "determine", "develop",
        "devise", "discuss", "draft", "draw", "edit", "elaborate", "estimate", "evaluate", "explain", "express",
        "extract", "fill", "find", "fix", "format", "formulate", "generate", "give", "guess", "help", "highlight",
        "identify", "illustrate", "imagine", "implement", "improve", "infer", "insert", "interpret", "invent", "judge",
        "label", "list", "locate", "make", "match", "name", "note", "offer", "organize", "organise", "outline",
        "paraphrase", "pick", "plan", "predict", "prepare", "present", "produce", "propose", "provide", "rank", "rate",
        "read", "recommend", "reformulate", "remove", "rephrase", "replace", "report", "research", "restate", "reverse",
        "review", "revise", "rewrite", "say", "select", "separate", "share", "shorten", "show", "simplify", "solve",
        "sort", "spell", "state", "structure", "suggest", "summarize", "summarise", "take", "teach", "tell", "transform",
        "translate", "turn", "use", "verify", "write",
    ]
    static let questionWords: Set<String> = [
        "what", "how", "why", "who", "whom", "whose", "when", "where", "which", "can", "could", "would", "should",
        "is", "are", "was", "were", "do", "does", "did", "will", "may", "might", "have", "has",
    ]
    static let skipped: Set<String> = [
        "a", "an", "the", "some", "any", "this", "that", "these", "those", "me", "us", "him", "her", "them", "it", "my",
        "your", "our", "their", "its", "his", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "few", "several", "more", "up", "out", "down", "all", "each", "every", "another", "new", "short", "brief", "simple",
        "detailed", "list", "of", "following", "given", "to", "for", "with", "about", "in", "on", "and", "or",
        // Adjectives that open an object ("a creative story"): the noun after them is the object.
        "creative", "random", "unique", "good", "interesting", "catchy", "funny", "possible", "different", "single",
        "complete", "appropriate", "suitable", "real", "hypothetical", "concise", "similar", "common", "popular",
        "famous", "specific", "relevant", "original", "informative", "persuasive", "descriptive", "step-by-step",
    ]

    static let question = "(question)", other = "(other)", nonEnglish = "(non-English)"

    /// The lowercased ASCII words at the start of `text` (at most `limit`).
    static func words(_ text: [UInt8], limit: Int) -> [String] {
        var out: [String] = []
        var current: [UInt8] = []
        var i = 0
        while i < text.count && i < 400 && out.count < limit {
            let c = text[i]
            let lower = c | 0x20
            if (lower >= 0x61 && lower <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x27 || c == 0x2D {
                current.append(c >= 0x41 && c <= 0x5A ? lower : c)
            } else {
                if !current.isEmpty { out.append(String(decoding: current, as: UTF8.self)); current.removeAll(keepingCapacity: true) }
                if c >= 0x80 { break }   // non-ASCII: the English opening has ended
            }
            i += 1
        }
        if !current.isEmpty && out.count < limit { out.append(String(decoding: current, as: UTF8.self)) }
        return out
    }

    /// (verb, object) of a prompt; the object is "" when none is found.
    static func of(_ prompt: [UInt8]) -> (verb: String, object: String) {
        var start = 0
        while start < prompt.count && (prompt[start] == 0x20 || prompt[start] == 0x0A || prompt[start] == 0x09 || prompt[start] == 0x0D) { start += 1 }
        guard start < prompt.count else { return (other, "") }
        let first = prompt[start] | 0x20
        guard first >= 0x61 && first <= 0x7A else { return (nonEnglish, "") }
        let w = words(Array(prompt[start..<min(prompt.count, start + 400)]), limit: 8)
        guard let verb = w.first else { return (other, "") }
        if questionWords.contains(verb) { return (question, "") }
        guard verbs.contains(verb) else { return (other, "") }
        for word in w.dropFirst() where !skipped.contains(word) && !(word.first?.isNumber ?? false) {
            return (verb, word)
        }
        return (verb, "")
    }
}
