import Dedup
import Pipeline
import TokenmillCore

/// `tokenmill build SPEC.json [--threads N] [--out DIR] [--quiet]`
enum BuildCommand {
    static func run(_ args: ArraySlice<String>) throws {
        let a = try Arguments(args, valued: ["--threads", "--out", "--task", "--tasks"], flags: ["--quiet"])
        guard a.positionals.count == 1 else { throw TokenmillError.usage("tokenmill build SPEC.json [--threads N] [--out DIR] [--quiet]") }
        if a.options["--task"] != nil || a.options["--tasks"] != nil {
            throw TokenmillError.usage("--task/--tasks (distributed builds) are not supported yet")
        }
        let threads = try a.int("--threads", default: activeProcessorCount, min: 1)
        let spec = try BuildSpec.load(a.positionals[0])
        let build = Build(spec: spec, options: BuildOptions(threads: threads, outDir: a.options["--out"], quiet: a.flags.contains("--quiet")))
        let summary = try build.run()
        var line = "built \(summary.outDir) in \(Double(Int(summary.seconds * 100)) / 100) s:"
        for s in summary.splits { line += " \(s.name) \(s.records) sequences, \(s.tokens) tokens in \(s.shards) shard\(s.shards == 1 ? "" : "s");" }
        line.removeLast()
        FileSystem.writeStderr(line)
    }
}

/// `tokenmill plan SPEC.json`: validates the spec and prints the stages it will run.
enum PlanCommand {
    static func run(_ args: ArraySlice<String>) throws {
        let a = try Arguments(args, valued: [], flags: ["--slurm", "--k8s"])
        guard a.positionals.count == 1 else { throw TokenmillError.usage("tokenmill plan SPEC.json") }
        if a.flags.contains("--slurm") || a.flags.contains("--k8s") { throw TokenmillError.usage("--slurm/--k8s job scripts are not supported yet") }
        let spec = try BuildSpec.load(a.positionals[0])
        var out = "spec \(spec.path): \(spec.name)\n"
        for s in spec.sources { out += "  source \(s.name): \(s.files.count) file\(s.files.count == 1 ? "" : "s") (\(s.pattern))\(s.skipBadRows ? ", bad rows skipped" : "")\n" }
        out += "stages: ingest -> normalize\(spec.normalize ? "" : " (off)") -> filter -> exact dedup\(spec.exactDedup.map { " (\($0.rawValue))" } ?? " (off)")"
        if let n = spec.nearDedup {
            let lsh = LSHParameters.optimal(threshold: n.threshold, permutations: n.permutations)
            out += " -> near dedup (\(n.on.rawValue), threshold \(n.threshold), \(n.permutations) permutations = \(lsh.bands) bands x \(lsh.rows) rows, \(n.ngram)-gram shingles)"
        }
        if let d = spec.decontaminate { out += " -> decontaminate (\(d.against.count) eval file\(d.against.count == 1 ? "" : "s"), \(d.ngram)-grams)" }
        out += " -> split (validation \(spec.validationFraction)) -> render (\(spec.template.name)) -> tokenize (\(spec.tokenizer))"
        out += " -> pack (\(spec.strategy.rawValue), seq_len \(spec.seqLen), overflow \(spec.overflow.rawValue)) -> shards (zstd \(spec.zstdLevel)) -> \(spec.outputDir)\n"
        var b = Array(out.utf8)
        b.withUnsafeMutableBytes { FileSystem.writeStdout(UnsafeRawBufferPointer($0)) }
    }
}
