import Dispatch
import Ingest
import ShardFormat
import TokenmillCore

#if canImport(Glibc)
import Glibc
#endif

/// Options of `tokenmill build` that are not part of the spec (they never change bytes).
public struct BuildOptions {
    public var threads: Int
    public var outDir: String?
    public var quiet: Bool
    /// Run only this stage (nil: every stage, in order).
    public var stage: StageName?
    /// This process is task `task` of `tasks` (units u with u % tasks == task).
    public var task: Int
    public var tasks: Int
    /// Discard a work folder made for another spec or other inputs.
    public var force: Bool
    /// Keep OUT/.work after a finished build (it is removed by default: the shards hold
    /// everything a trainer needs).
    public var keepWork: Bool
    public init(threads: Int = activeProcessorCount, outDir: String? = nil, quiet: Bool = false, stage: StageName? = nil,
                task: Int = 0, tasks: Int = 1, force: Bool = false, keepWork: Bool = false) {
        self.threads = threads; self.outDir = outDir; self.quiet = quiet; self.stage = stage
        self.task = task; self.tasks = tasks; self.force = force; self.keepWork = keepWork
    }
}

/// What a build produced (for the command line's summary).
public struct BuildSummary {
    public var outDir: String
    /// Empty when this run did not finish the build (one stage of a distributed build).
    public var splits: [(name: String, records: Int, tokens: Int, shards: Int)]
    public var seconds: Double
    public var finished: Bool
}

/// Compiles a spec as a pipeline of stages over units of work with state on disk
/// (docs/PIPELINE.md): scan (every block-local step), exact, near-bands, near-merge,
/// shape, pack, write, finish. One process runs them all in order; a cluster runs each
/// stage as a job array of `--task I --tasks N`. Units commit atomically with a marker,
/// so a killed build resumes where it stopped, and the bytes depend only on the spec,
/// the inputs and the tool version.
public final class Build {
    let spec: BuildSpec
    let options: BuildOptions
    let ctx: BuildContext
    let progress: Progress

    public init(spec: BuildSpec, options: BuildOptions) throws {
        self.spec = spec
        self.options = options
        ctx = try BuildContext(spec: spec, threads: options.threads, outDir: options.outDir ?? spec.outputDir)
        progress = Progress(quiet: options.quiet)
    }

    public static func stageNames(_ spec: BuildSpec) -> [StageName] {
        StageName.allCases.filter { s in
            switch s {
            case .exact: return spec.exactDedup != nil
            case .nearBands, .nearMerge: return spec.nearDedup != nil
            default: return true
            }
        }
    }

    public func run() throws -> BuildSummary {
        let t0 = ContinuousClock.now
        guard options.tasks >= 1, options.task >= 0, options.task < options.tasks else {
            throw TokenmillError.usage("--task must be in 0..<\(options.tasks) (got \(options.task))")
        }
        if options.tasks > 1 && options.stage == nil {
            throw TokenmillError.usage("--tasks \(options.tasks) needs --stage: each stage's tasks must all finish before the next stage starts ('tokenmill plan SPEC --slurm' prints a script that chains them)")
        }
        // A task with no share of a stage exits having done nothing — before it looks at the
        // work folder, which the finish stage's task 0 may already have removed.
        if let stage = options.stage, stage != .write, Self.stageNames(spec).contains(stage),
           try ctx.unitCount(stage) <= options.task {
            return BuildSummary(outDir: ctx.outDir, splits: [], seconds: 0, finished: false)
        }
        try prepare()
        let stages = options.stage.map { [$0] } ?? Self.stageNames(spec)
        for stage in stages {
            guard Self.stageNames(spec).contains(stage) else {
                throw TokenmillError.usage("stage '\(stage.rawValue)' does not run for this spec; its stages are: \(Self.stageNames(spec).map(\.rawValue).joined(separator: ", "))")
            }
            try runStage(stage)
        }
        let seconds = seconds(since: t0)
        guard stages.contains(.finish), options.task == 0 else {
            return BuildSummary(outDir: ctx.outDir, splits: [], seconds: seconds, finished: false)
        }
        var splits: [(String, Int, Int, Int)] = []
        let table = try WriteStep.shardTable(ctx)
        for name in splitNames(spec) {
            let shards = try table.indices.filter { table[$0].split == name }.map { try ctx.work.requireMarker(.write, $0) }
            if name != "train" && shards.isEmpty { continue }
            splits.append((name, shards.reduce(0) { $0 + ($1["records"]?.intValue ?? 0) }, shards.reduce(0) { $0 + ($1["tokens"]?.intValue ?? 0) }, shards.count))
        }
        if !options.keepWork { removeWorkFolder() }
        return BuildSummary(outDir: ctx.outDir, splits: splits, seconds: seconds, finished: true)
    }

    // MARK: the work folder

    var manifestPath: String { FileSystem.join(ctx.work.root, "manifest.json") }

    /// Opens or creates the work folder. A fresh build first removes what an earlier build
    /// left under our names (index.json first, so the folder never looks complete while it
    /// is rebuilt); a work folder made for another spec or other inputs is refused.
    func prepare() throws {
        let out = ctx.outDir
        try FileSystem.makeDirectories(out)
        for name in (try? FileSystem.listDirectory(out)) ?? [] where name.hasPrefix(".work.trash") {
            FileSystem.removeTree(FileSystem.join(out, name))
        }
        if FileSystem.fileExists(manifestPath) {
            let existing = try FileSystem.readFile(manifestPath)
            if existing == ctx.manifest.bytes { try ctx.work.makeDirectories(); return }
            let why = manifestDifference(existing)
            guard options.force else {
                throw TokenmillError.usage("\(ctx.work.root) holds a build of \(why); rerun with --force to discard it and start over (nothing was changed)")
            }
            progress.note("discarding \(ctx.work.root): it holds a build of \(why)")
            removeWorkFolder()
        } else if options.stage != nil && options.stage != .scan {
            throw TokenmillError.usage("\(ctx.work.root) has no build of this spec yet: run stage 'scan' first (see 'tokenmill plan')")
        }
        // A fresh build.
        FileSystem.remove(FileSystem.join(out, DatasetDirectory.indexFile))
        for name in (try? FileSystem.listDirectory(out)) ?? [] {
            let ours = name.hasSuffix(DatasetDirectory.shardSuffix) || name.hasSuffix(".tmp") || DatasetDirectory.tokenizerFiles.contains(name)
                || ["report.json", "report.html", "rejects.jsonl", "dedup-clusters.jsonl", "decontaminated.jsonl"].contains(name)
            if ours { FileSystem.remove(FileSystem.join(out, name)) }
        }
        try checkSpace()
        try ctx.work.makeDirectories()
        try FileSystem.writeAtomically(manifestPath, ctx.manifest.bytes)
    }

    func manifestDifference(_ existing: [UInt8]) -> String {
        guard let old = try? JSONParser.parse(existing), let new = try? JSONParser.parse(ctx.manifest.bytes) else { return "an unreadable manifest" }
        if old["spec_hash"] != new["spec_hash"] { return "another spec (its spec_hash differs)" }
        if old["tool_version"] != new["tool_version"] { return "tool version \(old["tool_version"]?.stringValue ?? "?")" }
        if old["work_format"] != new["work_format"] { return "an earlier build of this tool (work format \(old["work_format"]?.intValue ?? 1), now \(workFormat))" }
        if old["inputs"] != new["inputs"] { return "other inputs (a file was added, removed or changed since)" }
        if old["unit_bytes"] != new["unit_bytes"] {
            return "another unit plan (blocks of \(old["unit_bytes"]?.intValue ?? 0) bytes, now \(new["unit_bytes"]?.intValue ?? 0): TOKENMILL_UNIT_BYTES differs)"
        }
        return "another unit plan"
    }

    /// Refuses to start when the output filesystem obviously lacks room: the work folder
    /// holds ~1.5 bytes of tokens, masks and summaries per input byte (compressed inputs
    /// count 4x), the shards ~0.5.
    func checkSpace() throws {
        var input = 0
        for u in ctx.units where u.block == 0 {
            let size = (try? FileSystem.fileSize(u.path)) ?? 0
            input += u.path.hasSuffix(".gz") || u.path.hasSuffix(".zst") ? size * 4 : size
        }
        let need = input * 2
        if let free = FileSystem.freeBytes(ctx.outDir), free < need {
            throw TokenmillError.io(path: ctx.outDir, message: "only \(free >> 20) MiB free; this build needs about \(need >> 20) MiB (2 bytes per input byte for the work folder and shards): free space or choose another --out")
        }
    }

    func removeWorkFolder() {
        let trash = FileSystem.join(ctx.outDir, ".work.trash.\(getpid())")
        if (try? FileSystem.rename(ctx.work.root, trash)) != nil { FileSystem.removeTree(trash, threads: ctx.threads) }
    }

    // MARK: stages

    func runPath(_ stage: StageName) -> String { ctx.work.path(stage, "run-\(options.task)-of-\(options.tasks).json") }

    func runStage(_ stage: StageName) throws {
        for p in ctx.prerequisites(stage) where Self.stageNames(spec).contains(p) {
            let n = try ctx.unitCount(p)
            for u in 0..<n where !ctx.work.isDone(p, u) {
                throw TokenmillError.usage("stage '\(stage.rawValue)' needs stage '\(p.rawValue)' finished, but its unit \(u) of \(n) is not; run 'tokenmill build SPEC --stage \(p.rawValue)' (every task) first")
            }
        }
        let count = try ctx.unitCount(stage)
        let mine = (0..<count).filter { $0 % options.tasks == options.task }
        let pending = mine.filter { !ctx.work.isDone(stage, $0) }
        let start = ContinuousClock.now
        let cpu0 = cpuSeconds()
        resetPeakRSS()
        progress.begin(stage, units: pending.count, of: mine.count, bytes: stage == .scan ? pending.reduce(0) { $0 + approximateBytes(ctx.units[$1]) } : 0)
        var totals = (records: 0, bytes: 0)
        let lock = NSLockLite()
        func done(_ u: Int, _ result: JSONOut, records: Int, bytes: Int) throws {
            try ctx.work.markDone(stage, u, result: result)
            lock.lock(); totals.records += records; totals.bytes += bytes; lock.unlock()
            progress.unitDone(records: records, bytes: bytes)
        }
        switch stage {
        case .scan:
            let scan = try ScanStage(ctx)
            let workers = min(ctx.threads, max(1, pending.count))
            let inner = max(1, ctx.threads / workers)
            try parallelUnits(pending, workers: workers) { u in
                // The last unit runs on every thread: when it is taken no other unit is
                // left, and the workers that finish theirs would otherwise idle while it
                // runs alone on one core (its pieces' batches are ordered, so the output
                // is the same bytes).
                let r = try scan.run(unit: u, threads: u == pending.last && workers > 1 ? ctx.threads : inner)
                try done(u, r.json, records: r.records + r.rejected, bytes: r.bytesIn)
            }
        case .exact:
            try parallelUnits(pending, workers: ctx.threads) { p in
                let r = try ExactDedupStep.run(ctx, partition: p)
                try done(p, r, records: 0, bytes: 0)
            }
        case .nearBands:
            // The candidates every band reads, computed on all workers before the bands
            // start (inside the first band, the others would wait for it on one core).
            if !pending.isEmpty { _ = try NearDedupStep.candidates(ctx) }
            try parallelUnits(pending, workers: ctx.threads) { b in
                try done(b, try NearDedupStep.runBand(ctx, band: b), records: 0, bytes: 0)
            }
        case .nearMerge:
            for u in pending { try done(u, try NearDedupStep.runMerge(ctx), records: 0, bytes: 0) }
        case .shape:
            if options.stage == nil && !pending.isEmpty { ctx.startRenderingClusters() }
            for u in pending { try done(u, try ShapeStep.run(ctx), records: 0, bytes: 0) }
        case .pack:
            for u in pending { try done(u, try PackStep.run(ctx, splitIndex: u), records: 0, bytes: 0) }
        case .write:
            let table = try WriteStep.shardTable(ctx)
            let writer = WriteStep(ctx)
            for u in pending {
                let r = try writer.run(table[u], threads: ctx.threads)
                let v = try JSONParser.parse(Array(r.renderCompact().utf8))
                try done(u, r, records: v["records"]?.intValue ?? 0, bytes: v["bytes"]?.intValue ?? 0)
            }
        case .finish:
            // The scan's token, mask, signature and band files (most of the work folder's
            // bytes) are read by no stage after write. In a whole build that will remove
            // the work folder, they go beside the finish stage, on another thread, so that
            // tearing down their page cache is not on the build's serial tail (~15 ms of a
            // 228 MB build). With one thread the build keeps to one.
            var bulk: [String] = []
            if !options.keepWork && options.stage == nil && ctx.threads > 1 {
                for u in ctx.units.indices {
                    bulk += [ScanStage.dataPath(ctx.work, u), ScanStage.maskPath(ctx.work, u), ScanStage.sigPath(ctx.work, u)]
                }
            }
            let early: Eventually<Void>? = bulk.isEmpty ? nil : Eventually(background: { [bulk] in for path in bulk { FileSystem.remove(path) } })
            defer { _ = try? early?.get() }
            for u in pending {
                let runs = try stageRuns()
                let (report, _) = try FinishStep.run(ctx, stageRuns: runs)
                if case .object(let members) = report, let d = members.first(where: { $0.0 == "dropped_bytes" })?.1, case .object(let per) = d {
                    let total = per.reduce(0) { if case .int(let n) = $1.1 { return $0 + n }; return $0 }
                    progress.note("note: the tokenizer has no token for \(total) byte\(total == 1 ? "" : "s") of the text and dropped them, as the tokenizers library does (report.json: dropped_bytes)")
                }
                try done(u, .object([]), records: 0, bytes: 0)
            }
        }
        let wall = seconds(since: start)
        let run: JSONOut = .object([
            ("task", .int(options.task)), ("tasks", .int(options.tasks)), ("units", .int(mine.count)), ("units_run", .int(pending.count)),
            ("wall_seconds", .double(wall)), ("cpu_seconds", .double(cpuSeconds() - cpu0)),
            ("records_in", .int(totals.records)), ("bytes_in", .int(stage == .scan ? totals.bytes : 0)),
            ("bytes_out", .int(stage == .write ? totals.bytes : 0)),
            ("mb_per_second", .double(wall > 0 ? Double(totals.bytes) / 1e6 / wall : 0)),
            ("peak_rss_bytes", .int(peakRSS())),
        ])
        if FileSystem.isDirectory(ctx.work.dir(stage)) { try? WorkFile.write(runPath(stage), Array(run.renderCompact().utf8)) }
        progress.end(stage, seconds: wall)
    }

    /// Runs units on `workers` threads; on failure, no unit after the failed one starts,
    /// and the error of the earliest failed unit is thrown (so the message never depends
    /// on timing).
    func parallelUnits(_ units: [Int], workers: Int, _ body: (Int) throws -> Void) throws {
        if units.isEmpty { return }
        if workers <= 1 || units.count == 1 {
            for u in units { try body(u) }
            return
        }
        let lock = NSLockLite()
        var next = 0
        var failed: [(Int, Error)] = []
        withoutActuallyEscaping(body) { body in
            DispatchQueue.concurrentPerform(iterations: min(workers, units.count)) { _ in
                while true {
                    lock.lock()
                    let k = next
                    next += 1
                    let stop = failed.contains { $0.0 < k }
                    lock.unlock()
                    if k >= units.count || stop { break }
                    do { try body(units[k]) } catch {
                        lock.lock(); failed.append((k, error)); lock.unlock()
                    }
                }
            }
        }
        if let first = failed.min(by: { $0.0 < $1.0 }) { throw first.1 }
    }

    /// Every stage's latest run record (report.json's `stages`).
    func stageRuns() throws -> [(StageName, JSONValue)] {
        var out: [(StageName, JSONValue)] = []
        for s in Self.stageNames(spec) where s != .finish {
            var merged: [(String, JSONOut)] = []
            var wall = 0.0, cpu = 0.0, records = 0, bytesIn = 0, bytesOut = 0, rss = 0, tasks = 0
            for name in (try? FileSystem.listDirectory(ctx.work.dir(s))) ?? [] where name.hasPrefix("run-") {
                guard let b = try? WorkFile.read(ctx.work.path(s, name)), let v = try? JSONParser.parse(b) else { continue }
                tasks += 1
                wall = max(wall, v["wall_seconds"]?.doubleValue ?? 0)
                cpu += v["cpu_seconds"]?.doubleValue ?? 0
                records += v["records_in"]?.intValue ?? 0
                bytesIn += v["bytes_in"]?.intValue ?? 0
                bytesOut += v["bytes_out"]?.intValue ?? 0
                rss = max(rss, v["peak_rss_bytes"]?.intValue ?? 0)
            }
            var units = 0
            if let n = try? ctx.unitCount(s) { units = n }
            merged = [("units", .int(units)), ("tasks", .int(tasks)), ("wall_seconds", .double(wall)), ("cpu_seconds", .double(cpu)),
                      ("records_in", .int(records)), ("bytes_in", .int(bytesIn)), ("bytes_out", .int(bytesOut)),
                      ("mb_per_second", .double(wall > 0 ? Double(max(bytesIn, bytesOut)) / 1e6 / wall : 0)),
                      ("records_per_second", .double(wall > 0 ? Double(records) / wall : 0)), ("peak_rss_bytes", .int(rss))]
            out.append((s, try JSONParser.parse(Array(JSONOut.object(merged).renderCompact().utf8))))
        }
        return out
    }

    func approximateBytes(_ u: InputUnit) -> Int {
        if let r = u.range { return r.count }
        if u.rowGroups != nil { return u.rowGroupBytes }
        return (try? FileSystem.fileSize(u.path)) ?? 0
    }
}

func seconds(since t: ContinuousClock.Instant) -> Double {
    let d = ContinuousClock.now - t
    return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

func cpuSeconds() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6 + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) / 1e6
}

/// Resets the kernel's peak-RSS mark (VmHWM) so each stage reports its own peak.
func resetPeakRSS() {
    let fd = open("/proc/self/clear_refs", O_WRONLY)
    if fd >= 0 { _ = write(fd, "5", 1); close(fd) }
}

/// The process's peak resident set (VmHWM), as the kernel counts it: mapped file pages included.
public func peakRSS() -> Int {
    guard let b = try? FileSystem.readFile("/proc/self/status") else { return 0 }
    let s = String(decoding: b, as: UTF8.self)
    for line in s.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let digits = line.filter { $0.isNumber }
        return (Int(digits) ?? 0) * 1024
    }
    return 0
}

func formatSeconds(_ s: Double) -> String {
    let ms = Int((s * 1000).rounded())
    return ms < 1000 ? "\(ms) ms" : "\(Double(ms) / 1000) s"
}
