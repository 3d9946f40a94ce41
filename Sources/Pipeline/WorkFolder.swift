import TokenmillCore

/// `OUT/.work/`: the state of a staged build (docs/PIPELINE.md).
///
/// Each stage has a folder; each unit of a stage commits its files atomically (write,
/// rename; no fsync: docs/PIPELINE.md) and then its marker, `<stage>/<unit>.done`, which names the build
/// fingerprint it was computed for and carries the unit's counts. A unit is done exactly
/// when its marker exists and names this build; so a run killed at any moment and started
/// again redoes only units without a marker.
struct WorkFolder {
    let root: String
    /// xxh3 of the manifest: the spec's bytes, the tool version, every input's size and
    /// modification time, and the unit plan.
    let fingerprint: String

    /// Markers this process has read or written. A marker, once it names this build, never
    /// changes (a changed spec or input is another fingerprint), so every stage's check of
    /// its prerequisites need not re-read and re-parse every unit's marker from disk.
    let seen = MarkerCache()

    init(outDir: String, fingerprint: String) {
        root = FileSystem.join(outDir, ".work")
        self.fingerprint = fingerprint
    }

    func dir(_ stage: StageName) -> String { FileSystem.join(root, stage.rawValue) }
    func path(_ stage: StageName, _ name: String) -> String { FileSystem.join(dir(stage), name) }
    func markerPath(_ stage: StageName, _ unit: Int) -> String { path(stage, "\(unit).done") }

    func makeDirectories() throws {
        try FileSystem.makeDirectories(root)
        for s in StageName.allCases { try FileSystem.makeDirectories(dir(s)) }
    }

    /// The unit's committed result, or nil when it must be (re)done.
    func marker(_ stage: StageName, _ unit: Int) -> JSONValue? {
        if let v = seen[stage, unit] { return v }
        let p = markerPath(stage, unit)
        guard FileSystem.fileExists(p), let bytes = try? WorkFile.read(p), let v = try? JSONParser.parse(bytes) else { return nil }
        guard v["build"]?.stringValue == fingerprint, v["stage"]?.stringValue == stage.rawValue, v["unit"]?.intValue == unit,
              let result = v["result"] else { return nil }
        seen[stage, unit] = result
        return result
    }

    func isDone(_ stage: StageName, _ unit: Int) -> Bool { marker(stage, unit) != nil }

    /// Commits a unit: its files are already in place; the marker goes last.
    func markDone(_ stage: StageName, _ unit: Int, result: JSONOut) throws {
        let m = JSONOut.object([("build", .string(fingerprint)), ("stage", .string(stage.rawValue)), ("unit", .int(unit)), ("result", result)])
        let bytes = Array(m.renderCompact().utf8)
        try WorkFile.write(markerPath(stage, unit), bytes)
        if let v = try? JSONParser.parse(bytes), let r = v["result"] { seen[stage, unit] = r }
    }

    /// A committed unit's result, or an error saying which stage must run first.
    func requireMarker(_ stage: StageName, _ unit: Int) throws -> JSONValue {
        guard let m = marker(stage, unit) else {
            throw TokenmillError.usage("stage '\(stage.rawValue)' has not finished (unit \(unit) has no marker in \(dir(stage))); run 'tokenmill build SPEC --stage \(stage.rawValue)' (all its tasks) first")
        }
        return m
    }
}

/// Committed markers by stage and unit (shared by the threads of one process).
final class MarkerCache: @unchecked Sendable {
    private let lock = NSLockLite()
    private var results: [StageName: [Int: JSONValue]] = [:]
    subscript(stage: StageName, unit: Int) -> JSONValue? {
        get { lock.lock(); defer { lock.unlock() }; return results[stage]?[unit] }
        set { lock.lock(); defer { lock.unlock() }; results[stage, default: [:]][unit] = newValue }
    }
}

/// The layout of work files and markers; raised whenever they change, so that a work
/// folder an older binary of the same tool version left is refused with what changed
/// (`--force` starts over) instead of failing on a marker it cannot read.
/// 2: write-stage markers carry document starts and padding (format 1.1).
/// 3: row summaries carry the record's content hash (48 bytes).
/// 4: row summaries and split documents carry the first trained token (52, 28 bytes).
/// 5: write markers carry trained tokens.
/// 6: row summaries carry the instruction type (56 bytes); scan markers its table.
/// 7: scan markers carry the bytes the tokenizer dropped.
let workFormat = 11

/// `.work/manifest.json`: what the work folder was computed from. A build that finds a
/// manifest for other inputs refuses to mix the two (`--force` starts over).
struct Manifest {
    var bytes: [UInt8]
    var fingerprint: String { XXH3.hex(XXH3.hash64(bytes)) }

    init(spec: BuildSpec, units: [InputUnit], unitBytes: Int) throws {
        var inputs: [JSONOut] = []
        for src in spec.sources {
            for f in src.files {
                let (size, mtime) = try FileSystem.sizeAndMTime(f)
                inputs.append(.array([.string(f), .int(size), .int(mtime)]))
            }
        }
        if let d = spec.decontaminate {
            for f in d.against {
                let (size, mtime) = try FileSystem.sizeAndMTime(f)
                inputs.append(.array([.string(f), .int(size), .int(mtime)]))
            }
        }
        let m = JSONOut.object([
            ("tool_version", .string(toolVersion)),
            ("work_format", .int(workFormat)),
            ("spec", .string(spec.path)),
            ("spec_hash", .string(XXH3.hex(spec.specHash))),
            ("unit_bytes", .int(unitBytes)),
            ("inputs", .array(inputs)),
            ("scan_units", .int(units.count)),
        ])
        bytes = Array((m.render() + "\n").utf8)
    }
}
