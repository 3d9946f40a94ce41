import TokenmillCore

#if canImport(Glibc)
import Glibc
#endif

/// `tokenmill-bench idwriter --ids IDS.jsonl [--lines 640] [--evict-kb 1024] [--repeat R]`:
/// `IDWriter.json` alone, on the ids `tokenmill encode` wrote (one JSON array a line), in
/// chunks of `--lines` lines as `encode` hands them over (640 lines of ~110 bytes is one
/// 64 KB chunk), with `--evict-kb` KB of random reads from a 24 MB buffer between chunks
/// (the BPE tables' traffic between two chunks' writes, which evicts the writer's tables
/// from L1/L2: 0 measures the writer with everything in cache). Only the writes are
/// timed; ns an id, best of R.
func benchIDWriter(_ args: [String]) throws {
    let opts = benchOptions(args, defaults: ["--lines": "640", "--evict-kb": "1024", "--repeat": "7"])
    guard let path = opts["--ids"] else { fail("idwriter needs --ids") }
    let per = Int(opts["--lines"]!) ?? 640, evict = (Int(opts["--evict-kb"]!) ?? 1024) << 10, repeats = Int(opts["--repeat"]!) ?? 7
    let data = try FileSystem.readFile(path)
    // The ids, parsed once: digits between the brackets and commas of each line.
    var ids: [UInt32] = [], ends: [Int] = []
    var v: UInt32 = 0, inNumber = false
    for b in data {
        if b >= 0x30 && b <= 0x39 { v = v &* 10 &+ UInt32(b - 0x30); inNumber = true; continue }
        if inNumber { ids.append(v); v = 0; inNumber = false }
        if b == 0x0A { ends.append(ids.count) }
    }
    let junk = UnsafeMutablePointer<UInt8>.allocate(capacity: 24 << 20)
    junk.initialize(repeating: 1, count: 24 << 20)
    defer { junk.deallocate() }
    var best = Double.infinity, sink = 0, bytes = 0
    var x: UInt32 = 12345
    for _ in 0..<repeats {
        var timed = 0.0, k = 0, start = 0
        bytes = 0
        while k < ends.count {
            let kEnd = min(ends.count, k + per)
            // Random cache lines, each read once: 64 bytes of traffic a read.
            for _ in 0..<(evict / 64) { x = x &* 1_103_515_245 &+ 12_345; sink &+= Int(junk[Int(x >> 4) % (24 << 20)]) }
            let lineEnds = ends[k..<kEnd].map { $0 - start }
            let t0 = now()
            let out = ids[start..<ends[kEnd - 1]].withUnsafeBufferPointer { IDWriter.json($0, lineEnds: lineEnds) }
            timed += now() - t0
            bytes += out.count
            sink &+= Int(out[out.count / 2])
            start = ends[kEnd - 1]
            k = kEnd
        }
        best = min(best, timed)
    }
    print(#"{"bench": "idwriter", "ids": \#(ids.count), "lines": \#(ends.count), "bytes": \#(bytes), "seconds": \#(best), "ns_per_id": \#(best * 1e9 / Double(max(ids.count, 1))), "sink": \#(sink % 10)}"#)
}
