import BPE
import CZstd
import Ingest
import Pipeline
import ShardFormat
import TokenmillCore
#if canImport(Glibc)
import Glibc
#endif

/// The readers of untrusted bytes, each as one function of an input, for libFuzzer
/// (`tokenmill-fuzz`, built by `make fuzz`) and for the test suite, which replays the
/// corpus kept in `Fuzz/corpus/<target>/` through the same functions. A target returns
/// normally whatever the bytes: readers answer bad input with a thrown, typed error; only
/// a crash, a hang or a sanitizer report is a finding.
public enum FuzzTargets {
    public static let names = ["json", "jsonl", "json-array", "csv", "parquet", "gzip", "zstd", "shard", "tokenizer-json", "spec"]

    public static func run(_ target: String, _ bytes: [UInt8]) {
        switch target {
        case "json": _ = try? JSONParser.parse(bytes)
        case "jsonl": read(bytes, path: "in.jsonl")
        case "json-array": read(bytes, path: "in.json")
        case "csv": read(bytes, path: "in.csv")
        case "parquet": read(bytes, path: "in.parquet")
        case "gzip": read(bytes, path: "in.jsonl.gz")
        case "zstd":
            // A few KB of zstd can stand for hundreds of MB (RLE blocks): such inputs spent
            // seconds each in the JSONL reader under the sanitizers and held the target
            // at ~200 executions a second. Inputs that decompress past 256 KB are left
            // out; the reader's blocks of 32 MB and more are the tests' (IngestTests).
            if decompressesPast(bytes, limit: 256 << 10) { return }
            read(bytes, path: "in.jsonl.zst")
        case "shard": viaFile(bytes, name: "in.tkm") { p in
            guard let r = try? ShardReader(path: p, vocabSize: 1 << 17) else { return }
            _ = try? r.verifyAll()
        }
        case "tokenizer-json": viaFile(bytes, name: "tokenizer.json") { p in _ = try? TokenizerLoader.load(p, threads: 1) }
        case "spec": viaFile(bytes, name: "spec.json") { p in _ = try? BuildSpec.load(p) }
        default: fatalError("unknown fuzz target '\(target)'; known: \(names.joined(separator: ", "))")
        }
    }

    /// Whether the zstd frames in `bytes` hold more than `limit` bytes (decompressed into
    /// a small buffer until past the limit, an error or the end of the input).
    static func decompressesPast(_ bytes: [UInt8], limit: Int) -> Bool {
        guard let d = ZSTD_createDStream() else { return false }
        defer { ZSTD_freeDStream(d) }
        var out = [UInt8](repeating: 0, count: 64 << 10)
        var total = 0
        return bytes.withUnsafeBytes { src in
            var input = ZSTD_inBuffer(src: src.baseAddress, size: src.count, pos: 0)
            while input.pos < input.size {
                let before = input.pos
                let produced: Int = out.withUnsafeMutableBytes { o in
                    var output = ZSTD_outBuffer(dst: o.baseAddress, size: o.count, pos: 0)
                    let r = ZSTD_decompressStream(d, &output, &input)
                    return ZSTD_isError(r) != 0 ? -1 : output.pos
                }
                if produced < 0 { return false }
                total += produced
                if total > limit { return true }
                if produced == 0 && input.pos == before { break }   // no progress: the reader decides
            }
            return false
        }
    }

    /// Both error policies (fail and skip) see the bytes: skipping walks the paths that
    /// resynchronise and go on, failing the ones that stop.
    static func read(_ bytes: [UInt8], path: String) {
        let mapping = FieldMapping(prompt: try! .parse("{instruction}[[\n{input}]]"), response: try! .parse("output"))
        for skip in [false, true] {
            let src = SourceConfig(name: "fuzz", index: 0, files: [path], format: nil, mapping: mapping, skipBadRows: skip)
            _ = try? SourceReader.read(src, fileIndex: 0, path: path, contents: bytes, threads: 1)
        }
    }

    /// Loaders that take a path get the bytes through a file in a folder of this process,
    /// in memory (/dev/shm) where there is one: on a disk, writing back millions of these
    /// files took a tenth of the fuzzer's time.
    static let scratchRoot: String = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"

    static func viaFile(_ bytes: [UInt8], name: String, _ body: (String) -> Void) {
        let dir = "\(scratchRoot)/tokenmill-fuzz-\(getpid())"
        _ = mkdir(dir, 0o700)
        let path = dir + "/" + name
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { return }
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
        body(path)
    }
}
