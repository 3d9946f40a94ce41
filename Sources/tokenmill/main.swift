import TokenmillCore

#if canImport(Glibc)
import Glibc
#endif

/// tokenmill: the command line. Thin: each subcommand parses its options and calls a stage
/// module. Errors print one line on stderr and exit with the code DESIGN.md gives.
let helpText = """
tokenmill \(toolVersion) — compile LLM training data into packed token shards

usage:
  tokenmill build SPEC.json [--threads N] [--out DIR] [--quiet]   compile a spec into shards
  tokenmill plan SPEC.json                                         validate a spec, print its stages
  tokenmill inspect DIR [--split S] [--seq N]                      summary, or sequence N decoded
  tokenmill verify DIR [--threads N]                               check every checksum, frame and bound
  tokenmill export DIR --format F --out OUT [--split S] [--unit sequence|document]
            [--compression none|zstd] [--threads N]                write megatron, datatrove, mds or hf files
  tokenmill encode --tokenizer T [--field F] [--threads N] [--allowed-special all|T,..] [FILE|-]   one JSON array of ids per line
  tokenmill decode --tokenizer T [FILE|-]                          ids back to text
  tokenmill help                                                   this text

T: gpt2, r50k_base, p50k_base, cl100k_base, o200k_base, a .tiktoken file named after one, a tokenizer.json
   (or a model folder holding one) or a SentencePiece tokenizer.model. Compiled vocabularies are cached in
   $TOKENMILL_CACHE_DIR (default ~/.cache/tokenmill; 'off' turns the cache off).
exit status: 0 ok, 2 usage or spec, 65 bad input data or damaged shard, 74 I/O, 1 other.
"""

func runMain() -> Int32 {
    ProcessMemory.keepFreedMemory()
    let args = CommandLine.arguments
    guard args.count >= 2 else {
        FileSystem.writeStderr(helpText)
        return 2
    }
    let rest = args[2...]
    // `tokenmill COMMAND --help` (or -h) prints the help instead of refusing the option.
    if rest.contains("--help") || rest.contains("-h") {
        var b = Array((helpText + "\n").utf8)
        b.withUnsafeMutableBytes { FileSystem.writeStdout(UnsafeRawBufferPointer($0)) }
        return 0
    }
    do {
        switch args[1] {
        case "build": try BuildCommand.run(rest)
        case "plan": try PlanCommand.run(rest)
        case "inspect": try InspectCommand.run(rest)
        case "verify": try VerifyCommand.run(rest)
        case "export": try ExportCommand.run(rest)
        case "encode": try EncodeCommand.run(rest)
        case "decode": try DecodeCommand.run(rest)
        case "help", "--help", "-h":
            var b = Array((helpText + "\n").utf8)
            b.withUnsafeMutableBytes { FileSystem.writeStdout(UnsafeRawBufferPointer($0)) }
        case "--version", "version":
            var b = Array("tokenmill \(toolVersion)\n".utf8)
            b.withUnsafeMutableBytes { FileSystem.writeStdout(UnsafeRawBufferPointer($0)) }
        default:
            throw TokenmillError.usage("unknown command '\(args[1])' (see 'tokenmill help')")
        }
        return 0
    } catch let e as TokenmillError {
        FileSystem.writeStderr("tokenmill: " + e.description)
        return e.exitCode
    } catch {
        FileSystem.writeStderr("tokenmill: \(error)")
        return 1
    }
}

exit(runMain())
