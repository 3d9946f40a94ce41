import Dedup
import Pipeline
import TokenmillCore

#if canImport(Glibc)
import Glibc
#endif

/// `tokenmill build SPEC.json [--threads N] [--out DIR] [--stage S --task I --tasks N] [--force] [--keep-work] [--quiet]`
enum BuildCommand {
    static let usage = "tokenmill build SPEC.json [--threads N] [--out DIR] [--stage S [--task I] [--tasks N]] [--force] [--keep-work] [--quiet]"

    nonisolated(unsafe) static var current: Build?

    static func run(_ args: ArraySlice<String>) throws {
        let a = try Arguments(args, valued: ["--threads", "--out", "--task", "--tasks", "--stage"], flags: ["--quiet", "--force", "--keep-work"])
        guard a.positionals.count == 1 else { throw TokenmillError.usage(usage) }
        let threads = try a.int("--threads", default: activeProcessorCount, min: 1)
        var stage: StageName? = nil
        if let s = a.options["--stage"] {
            guard let st = StageName(rawValue: s) else {
                throw TokenmillError.usage("unknown stage '\(s)'; the stages are: \(StageName.allCases.map(\.rawValue).joined(separator: ", ")) ('tokenmill plan SPEC' lists a spec's)")
            }
            stage = st
        }
        let (task, tasks) = try taskIndex(a)
        let spec = try BuildSpec.load(a.positionals[0])
        let options = BuildOptions(threads: threads, outDir: a.options["--out"], quiet: a.flags.contains("--quiet"), stage: stage,
                                   task: task, tasks: tasks, force: a.flags.contains("--force"), keepWork: a.flags.contains("--keep-work"))
        let build = try Build(spec: spec, options: options)
        // Never freed: the process ends after the build, and freeing its tables (the scan's
        // ~150,000 contents met, each entry with an optional string) one by one took 15-20 ms
        // of a 228 MB build's serial end.
        BuildCommand.current = build
        let summary = try build.run()
        if options.quiet { return }
        if !summary.finished {
            FileSystem.writeStderr("stage \(stage?.rawValue ?? "?") task \(task) of \(tasks) done in \(Double(Int(summary.seconds * 100)) / 100) s")
            return
        }
        var line = "built \(summary.outDir) in \(Double(Int(summary.seconds * 100)) / 100) s:"
        for s in summary.splits { line += " \(s.name) \(s.records) sequences, \(s.tokens) tokens in \(s.shards) shard\(s.shards == 1 ? "" : "s");" }
        line.removeLast()
        FileSystem.writeStderr(line)
    }

    /// Task I of N: `--task`/`--tasks`, else Slurm's array variables, else Kubernetes'
    /// `JOB_COMPLETION_INDEX` (with `--tasks`, as an Indexed Job's completions are not in
    /// its environment). Default: task 0 of 1.
    static func taskIndex(_ a: Arguments) throws -> (Int, Int) {
        func env(_ k: String) -> Int? { getenv(k).flatMap { Int(String(cString: $0)) } }
        var tasks = try a.options["--tasks"].map { _ in try a.int("--tasks", default: 1, min: 1) }
        var task = try a.options["--task"].map { _ in try a.int("--task", default: 0, min: 0) }
        if task == nil, let id = env("SLURM_ARRAY_TASK_ID") {
            task = id - (env("SLURM_ARRAY_TASK_MIN") ?? 0)
            if tasks == nil { tasks = env("SLURM_ARRAY_TASK_COUNT") }
        }
        if task == nil, let id = env("JOB_COMPLETION_INDEX") {
            guard tasks != nil else { throw TokenmillError.usage("JOB_COMPLETION_INDEX is set: give --tasks N (the Job's completions)") }
            task = id
        }
        let n = tasks ?? 1, i = task ?? 0
        guard i < n else { throw TokenmillError.usage("task \(i) is not below the task count \(n)") }
        return (i, n)
    }
}
