import FuzzTargets
#if canImport(Glibc)
import Glibc
#endif

// libFuzzer's driver, called from this executable's entry point (SwiftPM names it
// `tokenmill_fuzz_main`): the target comes from TOKENMILL_FUZZ_TARGET. Built only with
// TOKENMILL_FUZZ=1 and the fuzzer sanitizer (`make fuzz`; docs/FUZZING.md).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

nonisolated(unsafe) var fuzzTarget = ""

@_cdecl("tokenmill_fuzz_main")
public func tokenmillFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    guard let t = getenv("TOKENMILL_FUZZ_TARGET") else {
        fputs("set TOKENMILL_FUZZ_TARGET to one of: \(FuzzTargets.names.joined(separator: ", "))\n", stderr)
        return 2
    }
    fuzzTarget = String(cString: t)
    guard FuzzTargets.names.contains(fuzzTarget) else {
        fputs("unknown target '\(fuzzTarget)'; known: \(FuzzTargets.names.joined(separator: ", "))\n", stderr)
        return 2
    }
    // No compiled-vocabulary cache: every tokenizer.json the fuzzer makes that loads
    // would write an image of its tables into the user's cache (~/.cache/tokenmill),
    // thousands an hour, each evicting a real vocabulary's image.
    setenv("TOKENMILL_CACHE_DIR", "off", 1)
    var c = argc
    var v = argv
    return LLVMFuzzerRunDriver(&c, &v) { data, size in
        FuzzTargets.run(fuzzTarget, size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
        return 0
    }
}
