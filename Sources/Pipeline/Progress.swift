import TokenmillCore

/// Progress on stderr: on a terminal a live line for the running stage (units done/total,
/// records/s, MB/s, ETA), redrawn at most 5 times a second; otherwise one summary line a
/// stage; with `--quiet`, nothing (errors are printed by the caller).
final class Progress: @unchecked Sendable {
    let quiet: Bool
    let live: Bool
    let lock = NSLockLite()
    var stage: StageName = .scan
    var total = 0, skipped = 0, done = 0, records = 0, bytes = 0, totalBytes = 0
    var start = ContinuousClock.now
    var lastDraw = ContinuousClock.now

    init(quiet: Bool) {
        self.quiet = quiet
        live = !quiet && FileSystem.isTerminal
    }

    func note(_ s: String) { if !quiet { FileSystem.writeStderr(s) } }

    func begin(_ stage: StageName, units: Int, of mine: Int, bytes totalBytes: Int) {
        lock.lock(); defer { lock.unlock() }
        self.stage = stage; total = units; skipped = mine - units; done = 0; records = 0; bytes = 0
        self.totalBytes = totalBytes
        start = .now
        if live { draw() }
    }

    func unitDone(records r: Int, bytes b: Int) {
        lock.lock(); defer { lock.unlock() }
        done += 1; records += r; bytes += b
        if live && (ContinuousClock.now - lastDraw > .milliseconds(200) || done == total) { draw() }
    }

    func line() -> String {
        let t = max(seconds(since: start), 1e-9)
        var s = "\(stage.rawValue): \(done)/\(total) units"
        if skipped > 0 { s += " (+\(skipped) done before)" }
        if records > 0 { s += ", \(records) records, \(Int(Double(records) / t)) records/s" }
        if bytes > 0 { s += ", \(String(format1(Double(bytes) / 1e6 / t))) MB/s" }
        if done > 0 && done < total {
            let eta: Double = totalBytes > 0 && bytes > 0 ? t * Double(totalBytes - bytes) / Double(bytes) : t * Double(total - done) / Double(done)
            s += ", ETA \(Int(eta.rounded())) s"
        }
        return s
    }

    func draw() {
        lastDraw = .now
        FileSystem.writeStderrRaw("\r\u{1B}[K" + line())
    }

    func end(_ stage: StageName, seconds s: Double) {
        lock.lock(); defer { lock.unlock() }
        if quiet { return }
        if live { FileSystem.writeStderrRaw("\r\u{1B}[K") }
        FileSystem.writeStderr(line() + " (\(formatSeconds(s)))")
    }
}

func format1(_ x: Double) -> String {
    let v = (x * 10).rounded() / 10
    return v == v.rounded() ? "\(Int(v)).0" : "\(v)"
}
