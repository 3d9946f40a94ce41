import Export
import TokenmillCore

/// `tokenmill export DIR --format F --out OUT [--split S[,S...]] [--unit sequence|document] [--compression none|zstd] [--threads N] [--quiet]`
enum ExportCommand {
    static let usage = "tokenmill export DIR --format megatron|datatrove|mds|hf --out OUT [--split S[,S...]] [--unit sequence|document] [--compression none|zstd] [--threads N]"

    static func run(_ args: ArraySlice<String>) throws {
        let a = try Arguments(args, valued: ["--format", "--out", "--unit", "--threads", "--split", "--compression"], flags: ["--quiet"])
        guard a.positionals.count == 1, let f = a.options["--format"], let out = a.options["--out"] else { throw TokenmillError.usage(usage) }
        guard let format = ExportFormat(rawValue: f) else {
            throw TokenmillError.usage("unknown export format '\(f)'; expected one of \(ExportFormat.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let u = a.options["--unit"] ?? "sequence"
        guard let unit = ExportUnit(rawValue: u) else { throw TokenmillError.usage("--unit is 'sequence' or 'document' (got '\(u)')") }
        let threads = try a.int("--threads", default: activeProcessorCount, min: 1)
        var compression = MDSCompression.none
        if let c = a.options["--compression"] {
            guard format == .mds else { throw TokenmillError.usage("--compression applies to --format mds only (the other formats are not compressed)") }
            guard let m = MDSCompression(rawValue: c) else { throw TokenmillError.usage("--compression is 'none' or 'zstd' (got '\(c)')") }
            compression = m
        }
        let splits = a.options["--split"].map { $0.split(separator: ",").map(String.init) }
        let start = ContinuousClock.now
        let results = try Exporter.run(directory: a.positionals[0], format: format, out: out, splits: splits, unit: unit, threads: threads, mdsCompression: compression)
        if a.flags.contains("--quiet") { return }
        let d = ContinuousClock.now - start
        let seconds = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        for r in results {
            FileSystem.writeStderr("exported \(r.split): \(r.samples) \(unit == .sequence ? "sequences" : "documents"), \(r.tokens) tokens, \(r.bytes) bytes (\(format.rawValue))")
        }
        let bytes = results.reduce(0) { $0 + $1.bytes }
        FileSystem.writeStderr("wrote \(out) in \(Double(Int(seconds * 100)) / 100) s (\(Int(Double(bytes) / 1e6 / max(seconds, 1e-9))) MB/s)")
    }
}
