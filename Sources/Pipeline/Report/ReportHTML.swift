import TokenmillCore

/// report.html: one self-contained page (inline SVG and CSS; no script, font or image
/// from anywhere) drawn from report.json's figures: per-source funnels, token-length
/// histograms, near-duplicate cluster sizes, packing efficiency, instruction types, the
/// mix and the stages. docs/REPORT.md describes each chart.
enum ReportHTML {
    static let colors = ["#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#EECA3B", "#B279A2", "#FF9DA6", "#9D755D", "#BAB0AC"]

    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    static func number(_ n: Int) -> String {
        let s = String(n.magnitude)
        var out = ""
        for (i, c) in s.enumerated() {
            if i > 0 && (s.count - i) % 3 == 0 { out += "," }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + out
    }

    /// `x` with `digits` decimals (no Foundation formatting).
    static func fixed(_ x: Double, digits: Int = 2) -> String {
        var scale = 1
        for _ in 0..<digits { scale *= 10 }
        let r = Int((abs(x) * Double(scale)).rounded())
        let frac = String(r % scale)
        return (x < 0 ? "-" : "") + "\(r / scale)" + (digits > 0 ? "." + String(repeating: "0", count: digits - frac.count) + frac : "")
    }

    static func percent(_ x: Double) -> String {
        let v = Int((x * 1000).rounded())
        return "\(v / 10).\(v % 10)%"
    }

    /// Horizontal bars: one row a (label, value), scaled to `max`; `note` beside each bar.
    static func bars(_ rows: [(label: String, value: Int, note: String)], max top: Int? = nil, color: String = colors[0], title: String) -> String {
        let width = 880, labelWidth = 170, barMax = 360, rowHeight = 22
        let top = max(1, top ?? rows.map(\.value).max() ?? 1)
        var svg = "<svg class=\"chart\" role=\"img\" aria-label=\"\(escape(title))\" width=\"\(width)\" height=\"\(rows.count * rowHeight + 8)\" viewBox=\"0 0 \(width) \(rows.count * rowHeight + 8)\">"
        for (i, r) in rows.enumerated() {
            let y = 4 + i * rowHeight
            let w = r.value > 0 ? max(1, Int(Double(barMax) * Double(r.value) / Double(top))) : 0
            svg += "<text x=\"\(labelWidth - 6)\" y=\"\(y + 15)\" text-anchor=\"end\">\(escape(r.label))</text>"
            svg += "<rect x=\"\(labelWidth)\" y=\"\(y + 3)\" width=\"\(w)\" height=\"\(rowHeight - 6)\" fill=\"\(color)\"><title>\(escape(r.label)): \(number(r.value))</title></rect>"
            svg += "<text x=\"\(labelWidth + w + 6)\" y=\"\(y + 15)\" class=\"note\">\(escape(r.note))</text>"
        }
        return svg + "</svg>"
    }

    /// Vertical grouped bars over power-of-two buckets: one series a (name, counts).
    static func histogram(_ series: [(name: String, counts: [Int])], title: String) -> String {
        let buckets = max(1, series.map(\.counts.count).max() ?? 1)
        let height = 180, left = 50, bottom = 40, groupWidth = max(14, min(40, 700 / buckets))
        let width = left + buckets * groupWidth + 20
        let top = max(1, series.flatMap(\.counts).max() ?? 1)
        let barWidth = max(3, (groupWidth - 4) / max(1, series.count))
        var svg = "<svg class=\"chart\" role=\"img\" aria-label=\"\(escape(title))\" width=\"\(width)\" height=\"\(height + bottom + 24)\" viewBox=\"0 0 \(width) \(height + bottom + 24)\">"
        svg += "<line x1=\"\(left)\" y1=\"\(height + 10)\" x2=\"\(width - 10)\" y2=\"\(height + 10)\" stroke=\"#888\"/>"
        svg += "<text x=\"\(left - 4)\" y=\"18\" text-anchor=\"end\" class=\"note\">\(number(top))</text>"
        for b in 0..<buckets {
            let x = left + b * groupWidth
            for (k, s) in series.enumerated() where b < s.counts.count && s.counts[b] > 0 {
                let h = max(1, Int(Double(height) * Double(s.counts[b]) / Double(top)))
                svg += "<rect x=\"\(x + 2 + k * barWidth)\" y=\"\(height + 10 - h)\" width=\"\(barWidth)\" height=\"\(h)\" fill=\"\(colors[k % colors.count])\"><title>\(escape(s.name)) \(bucketLabel(b)) tokens: \(number(s.counts[b]))</title></rect>"
            }
            if b % max(1, buckets / 12) == 0 {
                svg += "<text x=\"\(x + groupWidth / 2)\" y=\"\(height + 26)\" text-anchor=\"middle\" class=\"note\">\(bucketLabel(b))</text>"
            }
        }
        for (k, s) in series.enumerated() {
            svg += "<rect x=\"\(left + k * 130)\" y=\"\(height + bottom + 6)\" width=\"12\" height=\"12\" fill=\"\(colors[k % colors.count])\"/>"
            svg += "<text x=\"\(left + k * 130 + 16)\" y=\"\(height + bottom + 16)\" class=\"note\">\(escape(s.name))</text>"
        }
        return svg + "</svg>"
    }

    static func bucketLabel(_ b: Int) -> String {
        if b == 0 { return "0" }
        if b == 1 { return "1" }
        let lo = 1 << (b - 1)
        return lo >= 1024 ? "\(lo >> 10)k+" : "\(lo)+"
    }

    static func ints(_ v: JSONValue?) -> [Int] { (v?.arrayValue ?? []).map { $0.intValue ?? 0 } }

    static func render(_ report: JSONValue) -> String {
        var body = ""
        let name = report["name"]?.stringValue ?? ""
        body += "<h1>\(escape(name))</h1><p class=\"meta\">Tokenmill \(escape(report["tool_version"]?.stringValue ?? "")), \(report["threads"]?.intValue ?? 0) threads, "
        body += "\(fixed(report["seconds"]?.doubleValue ?? 0)) s</p>"

        // Funnels.
        let buckets = ["rejected", "filtered", "exact_dup", "near_dup", "decontaminated", "over_take", "subsampled", "overflow_dropped", "truncated", "kept"]
        body += "<h2>Records by source</h2><p>Every row the readers met ends in exactly one bucket; tokens are what the shards hold.</p>"
        let sources = report["sources"]?.objectValue ?? []
        for m in sources {
            let s = m.value
            let read = (s["read"]?.intValue ?? 0) + (s["rejected"]?.intValue ?? 0)
            var rows: [(String, Int, String)] = [("read", read, number(read))]
            for b in buckets {
                let n = s[b]?.intValue ?? 0
                if n == 0 && b != "kept" { continue }
                rows.append((b, n, "\(number(n)) (\(percent(read > 0 ? Double(n) / Double(read) : 0)))"))
            }
            rows.append(("documents", s["documents"]?.intValue ?? 0, "\(number(s["documents"]?.intValue ?? 0)) documents, \(number(s["tokens"]?.intValue ?? 0)) tokens"))
            body += "<h3>\(escape(m.keyString))</h3>" + bars(rows, max: max(read, s["documents"]?.intValue ?? 0), title: "funnel of \(m.keyString)")
        }

        // Lengths and instruction types.
        let analysis = report["analysis"]
        if let per = analysis?["sources"]?.objectValue, !per.isEmpty {
            body += "<h2>Token lengths</h2><p>Kept records, each once, in powers of two: a conversation's prompt (its tokens before the first trained one) and response (the rest); text records whole.</p>"
            for m in per {
                let a = m.value
                var series: [(String, [Int])] = []
                if ints(a["prompt_tokens_log2"]).contains(where: { $0 > 0 }) || ints(a["response_tokens_log2"]).contains(where: { $0 > 0 }) {
                    series += [("prompt", ints(a["prompt_tokens_log2"])), ("response", ints(a["response_tokens_log2"]))]
                }
                if ints(a["text_tokens_log2"]).contains(where: { $0 > 0 }) { series.append(("text", ints(a["text_tokens_log2"]))) }
                if series.isEmpty { continue }
                body += "<h3>\(escape(m.keyString))</h3>" + histogram(series, title: "token lengths of \(m.keyString)")
            }
            body += "<h2>Instruction types</h2><p>The leading verb of each kept conversation's first prompt and its object (docs/REPORT.md), by source; the top \(SourceAnalysis.topVerbs) verbs with their top \(SourceAnalysis.topObjects) objects.</p>"
            for m in per {
                let types = m.value["instruction_types"]?.arrayValue ?? []
                if types.isEmpty { continue }
                let total = types.reduce(0) { $0 + ($1["records"]?.intValue ?? 0) }
                var rows: [(String, Int, String)] = []
                for t in types {
                    let n = t["records"]?.intValue ?? 0
                    let objects = (t["objects"]?.arrayValue ?? []).compactMap { o -> String? in
                        guard let pair = o.arrayValue, pair.count == 2 else { return nil }
                        let word = pair[0].stringValue ?? ""
                        return "\(word.isEmpty ? "–" : word) \(pair[1].intValue ?? 0)"
                    }
                    rows.append((t["verb"]?.stringValue ?? "", n, "\(percent(total > 0 ? Double(n) / Double(total) : 0))  \(objects.joined(separator: ", "))"))
                }
                body += "<h3>\(escape(m.keyString))</h3>" + bars(rows, color: colors[2], title: "instruction types of \(m.keyString)")
            }
        }

        // Near-duplicate clusters.
        if let sizes = analysis?["near_dup_cluster_sizes"]?.arrayValue, !sizes.isEmpty {
            body += "<h2>Near-duplicate clusters</h2><p>Clusters by size (records in the cluster, the kept one included).</p>"
            let rows = sizes.compactMap { p -> (String, Int, String)? in
                guard let pair = p.arrayValue, pair.count == 2 else { return nil }
                return ("size \(pair[0].intValue ?? 0)", pair[1].intValue ?? 0, number(pair[1].intValue ?? 0))
            }
            body += bars(rows, color: colors[3], title: "near-duplicate cluster sizes")
        }

        // Packing.
        if let packing = report["packing"]?.objectValue, !packing.isEmpty {
            body += "<h2>Packing</h2><p>Non-padding tokens against the sequences' capacity, and the share of tokens trained on.</p>"
            var rows: [(String, Int, String)] = []
            for m in packing {
                let p = m.value
                let e = p["efficiency"]?.doubleValue ?? 0, t = p["trained_share"]?.doubleValue ?? 0
                rows.append(("\(m.keyString) efficiency", Int(e * 10000), "\(percent(e)) of \(number(p["capacity"]?.intValue ?? 0)) tokens, \(number(p["sequences"]?.intValue ?? 0)) sequences"))
                rows.append(("\(m.keyString) trained", Int(t * 10000), "\(percent(t)) (\(number(p["trained_tokens"]?.intValue ?? 0)) tokens)"))
            }
            body += bars(rows, max: 10000, color: colors[4], title: "packing efficiency")
        }

        // Mix.
        if let mix = report["mix"], let per = mix["sources"]?.objectValue {
            body += "<h2>Mix</h2><p>Each source's target share against what the output holds (by \(escape(mix["by"]?.stringValue ?? "")), after packing).</p>"
            var rows: [(String, Int, String)] = []
            for m in per {
                let target = m.value["target"]?.doubleValue ?? 0, got = m.value["achieved"]?.doubleValue ?? 0
                rows.append(("\(m.keyString) target", Int(target * 10000), percent(target)))
                rows.append(("\(m.keyString) achieved", Int(got * 10000), percent(got)))
            }
            body += bars(rows, max: 10000, color: colors[1], title: "mix")
        }

        // Stages.
        if let stages = report["stages"]?.arrayValue, !stages.isEmpty {
            body += "<h2>Stages</h2><table><tr><th>stage</th><th>units</th><th>wall s</th><th>CPU s</th><th>MB/s</th><th>peak RSS MiB</th></tr>"
            for s in stages {
                func f(_ k: String) -> String { fixed(s[k]?.doubleValue ?? 0, digits: 3) }
                body += "<tr><td>\(escape(s["stage"]?.stringValue ?? ""))</td><td>\(s["units"]?.intValue ?? 0)</td><td>\(f("wall_seconds"))</td><td>\(f("cpu_seconds"))</td>"
                body += "<td>\(Int(s["mb_per_second"]?.doubleValue ?? 0))</td><td>\((s["peak_rss_bytes"]?.intValue ?? 0) >> 20)</td></tr>"
            }
            body += "</table>"
        }

        let style = """
        body{font:14px/1.4 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px auto;max-width:900px;color:#222}
        h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}h3{font-size:15px;margin:16px 0 4px}
        .meta,.note{color:#666}svg text{font-size:12px;fill:#333}svg .note{fill:#666}
        table{border-collapse:collapse}td,th{padding:3px 10px;text-align:right;border-bottom:1px solid #eee}td:first-child,th:first-child{text-align:left}
        """
        return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>\(escape(name)) — Tokenmill report</title><style>\(style)</style></head><body>\(body)</body></html>\n"
    }
}
