// swift-tools-version:5.9
// Tokenmill: a data-prep compiler for LLM training. Dependencies point one way:
// C shims -> TokenmillCore -> stage modules -> Pipeline -> tokenmill (see the layout in README.md).
import PackageDescription

// Every module is compiled for x86-64-v3 (Haswell, 2013, and later: AVX2, BMI2), as
// MinHash's 32-bit SIMD lanes already required: byte scans (JSON strings, UTF-8 checks,
// ASCII runs) vectorize 32 bytes a step, and shifts and bit tricks are one instruction.
#if arch(x86_64)
let cpu: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "haswell"])]
#else
let cpu: [SwiftSetting] = []
#endif
let optimize: [SwiftSetting] = [.unsafeFlags(["-cross-module-optimization"], .when(configuration: .release))] + cpu
// The BPE engine without LLVM's function merging: the piece loop is specialized once per
// pre-tokenizer so that each scanner inlines into its own loop, and the merging pass folded
// those specializations (identical but for the scanner they call, before the inliner ran)
// into one function that called the scanner through a pointer, a call a piece with the
// loop's state spilled around it (10% more of the engine's instructions).
let engine: [SwiftSetting] = optimize + [.unsafeFlags(["-Xfrontend", "-disable-llvm-merge-functions-pass"], .when(configuration: .release))]
// The executables carry the Swift runtime and standard library inside them: loading and
// relocating libswiftCore and its neighbours took 3-5 ms of every process's start (half of
// `tokenmill help`, a third of a one-line `tokenmill encode`), a fixed cost of every short
// run and every worker of a distributed build. The binary needs no Swift toolchain to run.
let staticStdlib: [LinkerSetting] = [.unsafeFlags(["-static-stdlib"], .when(platforms: [.linux]))]
// `tokenmill` itself goes further: a static executable (glibc, libstdc++ and the C
// libraries' `.a` from their Debian -dev packages linked in), so no dynamic loader runs at
// start: `tokenmill --version` 2.4 -> 1.0 ms, a one-line encode 6.4 -> 4.0 ms (min of 40).
// pkg-config names libbrotlidec alone; its static archive needs libbrotlicommon after it.
// Debian's libzstd.a has no multithreading (`Zstd.multithreaded`).
let staticExecutable: [LinkerSetting] = [.unsafeFlags(["-static-executable", "-lbrotlicommon"], .when(platforms: [.linux]))]

let package = Package(
    name: "tokenmill",
    products: [
        .executable(name: "tokenmill", targets: ["tokenmill"]),
    ],
    targets: [
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CZstd", path: "Sources/CZstd", pkgConfig: "libzstd",
                       providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CXXHash", path: "Sources/CXXHash", pkgConfig: "libxxhash",
                       providers: [.apt(["libxxhash-dev"])]),
        // Parquet pages written with LZ4 (raw and Hadoop framing) and Brotli.
        .systemLibrary(name: "CLZ4", path: "Sources/CLZ4", pkgConfig: "liblz4",
                       providers: [.apt(["liblz4-dev"])]),
        .systemLibrary(name: "CBrotli", path: "Sources/CBrotli", pkgConfig: "libbrotlidec",
                       providers: [.apt(["libbrotli-dev"])]),
        // Header-only intrinsics (software prefetch, writeback hint); no library to link.
        .systemLibrary(name: "CIntrinsics", path: "Sources/CIntrinsics"),
        .target(name: "TokenmillCore", dependencies: ["CXXHash", "CIntrinsics"], swiftSettings: optimize),
        .target(name: "Ingest", dependencies: ["TokenmillCore", "CZlib", "CZstd", "CLZ4", "CBrotli"], swiftSettings: optimize),
        .target(name: "Normalize", dependencies: ["TokenmillCore"], swiftSettings: optimize),
        // MinHash runs in 32-bit SIMD lanes; AVX2 does each step in one instruction where the
        // x86-64 baseline (SSE2) needs several.
        .target(name: "Dedup", dependencies: ["TokenmillCore", "CIntrinsics"], swiftSettings: optimize),
        // The built-in ranks files are not SwiftPM resources: a target with resources gets a
        // generated accessor that imports Foundation, and loading Foundation took 4 ms of
        // every run's 7 ms start. `TokenizerLoader.resourcePath` finds them (the source
        // tree, `make install`'s share/tokenmill, or $TOKENMILL_RESOURCES).
        .target(name: "BPE", dependencies: ["TokenmillCore", "CIntrinsics"], exclude: ["Resources"],
                swiftSettings: engine),
        .target(name: "Packing", dependencies: ["TokenmillCore"], swiftSettings: optimize),
        .target(name: "ShardFormat", dependencies: ["TokenmillCore", "CZstd"], swiftSettings: optimize),
        .target(name: "Export", dependencies: ["ShardFormat", "TokenmillCore", "CZstd"], swiftSettings: optimize),
        .target(name: "Pipeline",
                dependencies: ["TokenmillCore", "Ingest", "Normalize", "Dedup", "BPE", "Packing", "ShardFormat"],
                swiftSettings: optimize),
        .executableTarget(name: "tokenmill", dependencies: ["Pipeline", "Dedup", "BPE", "ShardFormat", "Export", "TokenmillCore"],
                          swiftSettings: optimize, linkerSettings: staticExecutable),
        .executableTarget(name: "tokenmill-bench", dependencies: ["BPE", "Dedup", "Ingest", "Packing", "TokenmillCore"],
                          path: "Benchmarks/TokenmillBench", swiftSettings: optimize, linkerSettings: staticStdlib),
        .testTarget(name: "TokenmillCoreTests", dependencies: ["TokenmillCore", "TestSupport"]),
        .testTarget(name: "BPETests", dependencies: ["BPE", "TokenmillCore", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "IngestTests", dependencies: ["Ingest", "TokenmillCore", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "NormalizeTests", dependencies: ["Normalize", "TokenmillCore"]),
        .testTarget(name: "PackingTests", dependencies: ["Packing", "TokenmillCore"]),
        .testTarget(name: "DedupTests", dependencies: ["Dedup", "TokenmillCore"]),
        .target(name: "TestSupport", dependencies: ["TokenmillCore"], path: "Tests/TestSupport"),
        .testTarget(name: "ShardFormatTests", dependencies: ["ShardFormat", "TokenmillCore", "TestSupport"]),
        .testTarget(name: "ExportTests", dependencies: ["Export"]),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "ShardFormat", "TokenmillCore", "TestSupport"]),
        // The readers as fuzz targets; the tests replay Fuzz/corpus through them.
        .target(name: "FuzzTargets", dependencies: ["BPE", "CZstd", "Ingest", "Pipeline", "ShardFormat", "TokenmillCore"]),
        .testTarget(name: "FuzzReplayTests", dependencies: ["FuzzTargets"]),
    ]
)

// `make fuzz` (TOKENMILL_FUZZ=1): the libFuzzer executable, built with
// -sanitize=fuzzer,address; it has no main of its own (libFuzzer's driver is called from
// its entry point), so it is not part of ordinary builds.
if Context.environment["TOKENMILL_FUZZ"] == "1" {
    package.targets.append(.executableTarget(name: "tokenmill-fuzz", dependencies: ["FuzzTargets"],
                                             swiftSettings: [.unsafeFlags(["-parse-as-library"])]))
}
