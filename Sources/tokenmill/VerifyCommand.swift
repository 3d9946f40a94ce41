import ShardFormat
import TokenmillCore

/// `tokenmill verify DIR [--threads N]`: exit 0 when every byte checks out; otherwise exit
/// 65 naming the file and the chunk or field. Chunks are checked on all cores.
enum VerifyCommand {
    static func run(_ args: ArraySlice<String>) throws {
        let a = try Arguments(args, valued: ["--threads"], flags: [])
        guard a.positionals.count == 1 else { throw TokenmillError.usage("tokenmill verify DIR [--threads N]") }
        let r = try DatasetVerifier.verify(dir: a.positionals[0], threads: try a.int("--threads", default: activeProcessorCount, min: 1))
        let padding = r.paddingTokens > 0 ? " (\(r.paddingTokens) of them padding)" : ""
        var b = Array("ok: \(r.shards) shards, \(r.records) sequences, \(r.documents) documents, \(r.tokens) tokens\(padding), \(r.bytes) bytes verified\n".utf8)
        b.withUnsafeMutableBytes { FileSystem.writeStdout(UnsafeRawBufferPointer($0)) }
    }
}
