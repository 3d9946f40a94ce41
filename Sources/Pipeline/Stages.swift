import BPE
import Dedup
import Ingest
import Packing
import ShardFormat
import TokenmillCore

/// The stages of a build, in order (docs/PIPELINE.md). Each runs over units; task I of N
/// runs the units u with u % N == I, so any N works for any stage and the units — not
/// the tasks — decide every byte.
public enum StageName: String, CaseIterable, Sendable {
    /// Block-local, one unit a block of input: ingest, normalize + filter, exact-dedup keys,
    /// MinHash signatures and band keys, decontamination check, render + tokenize.
    case scan
    /// Exact dedup decisions, one unit a range of key hashes.
    case exact
    /// Near-dedup candidate pairs and their confirmation, one unit an LSH band.
    case nearBands = "near-bands"
    /// Clusters from the confirmed pairs of every band (one unit).
    case nearMerge = "near-merge"
    /// Take, weight and split over per-record summaries in spec order (one unit).
    case shape
    /// Packing and shuffling of each split's documents (one unit a split).
    case pack
    /// Shard files, one unit a shard.
    case write
    /// rejects.jsonl, dedup-clusters.jsonl, decontaminated.jsonl, report.json and, last,
    /// index.json (one unit).
    case finish

    var summary: String {
        switch self {
        case .scan: return "ingest, normalize + filter, exact keys, MinHash, decontaminate, render + tokenize"
        case .exact: return "exact-duplicate decisions by key-hash range"
        case .nearBands: return "near-duplicate candidates and confirmation by LSH band"
        case .nearMerge: return "near-duplicate clusters from every band's pairs"
        case .shape: return "take, weight and split in spec order"
        case .pack: return "packing and shuffle by split"
        case .write: return "shard files"
        case .finish: return "rejects, clusters, report.json, index.json"
        }
    }
}

/// Key-hash ranges of the exact stage (its units): 4 to 64, a power of two, about one per
/// 64 MiB of input. They follow from the inputs alone, so the bytes never depend on the
/// task count; a task holds about 1/min(N, ranges) of the keys. (A fixed 64 made 128 work
/// files for a small corpus, and creating files is what a small build's system time goes
/// to.)
func exactPartitionBits(inputBytes: Int) -> Int {
    var bits = 2
    while bits < 6 && inputBytes >> (26 + bits) > 0 { bits += 1 }
    return bits
}

/// The splits a build writes, in order.
func splitNames(_ spec: BuildSpec) -> [String] { spec.validationFraction > 0 ? ["train", "validation"] : ["train"] }

/// Everything a stage needs that follows from the spec and inputs alone.
final class BuildContext {
    let spec: BuildSpec
    let threads: Int
    let outDir: String
    let units: [InputUnit]
    let unitBytes: Int
    let work: WorkFolder
    let manifest: Manifest
    var lsh: LSHParameters? { lshSearch.map { try! $0.get() } }
    /// The bands and rows, searched on another thread while the build starts when it has
    /// more than one (~10 ms of integration that the scan's first signature waits for).
    private let lshSearch: Eventually<LSHParameters>?
    /// log2 of the exact stage's key-hash ranges.
    let exactBits: Int
    var exactPartitions: Int { 1 << exactBits }

    /// The build's tokenizer. A built-in vocabulary loads on its own thread while the scan
    /// starts reading (its load cannot fail on anything the user wrote); a vocabulary from
    /// a file loads before anything is written, so its errors stop a build at once.
    private let loading: Eventually<Tokenizer>
    var tokenizer: Tokenizer { get throws { try loading.get() } }
    /// Bytes a token takes in work files and shards (2 below 65,536 ids).
    var tokenWidth: Int { get throws { DatasetDirectory.tokenWidth(vocabSize: try tokenizer.vocabSize) } }
    /// Summaries several units of a stage share, read once a process (guarded by `lock`).
    let lock = NSLockLite()
    var duplicatesMemo: [RecordID]?
    /// Exact keys the scan units of this process have seen (scan only).
    let earlierKeys = EarlierKeys()
    /// Normalized hashes and keys of record contents this process's scan has met.
    let repeatedContent = RepeatedContent()
    var candidatesMemo: NearDedupStep.Candidates?
    /// dedup-clusters.jsonl, rendered on another thread once the near-merge is done when
    /// the serial shape and pack stages leave a core idle (`startRenderingClusters`).
    private var clusters: Eventually<FinishStep.RenderedClusters>?

    init(spec: BuildSpec, threads: Int, outDir: String) throws {
        self.spec = spec
        self.threads = max(1, threads)
        self.outDir = outDir
        unitBytes = try IngestStep.unitBytes(spec)
        units = try IngestStep.plan(spec, unitBytes: unitBytes)
        exactBits = exactPartitionBits(inputBytes: try IngestStep.inputBytes(spec))
        manifest = try Manifest(spec: spec, units: units, unitBytes: unitBytes)
        work = WorkFolder(outDir: outDir, fingerprint: manifest.fingerprint)
        let workers = max(1, threads)
        lshSearch = spec.nearDedup.map { near in
            let search: @Sendable () -> LSHParameters = {
                LSHParameters.optimal(threshold: near.threshold, permutations: near.permutations, threads: workers)
            }
            return workers > 1 ? Eventually(background: search) : Eventually(value: search())
        }
        let load: @Sendable () throws -> Tokenizer = { [threads = self.threads] in try Self.loadTokenizer(spec, threads: threads) }
        if self.threads > 1, let specials = TokenizerLoader.builtinSpecialTokens(spec.tokenizer) {
            // What the spec says of the tokenizer is checked now, before anything is written;
            // only the tables load in the background.
            for (key, text) in [("tokenizer.eos", spec.tokenizerEOS), ("tokenizer.bos", Self.statedBOS(spec))] {
                guard let text, !specials.contains(text) else { continue }
                throw TokenmillError.spec(path: spec.path, key: key,
                                          message: "'\(text)' is not a special token of \(spec.tokenizer) (its special tokens: \(specials.joined(separator: ", ")))")
            }
            loading = Eventually(background: load)
        } else {
            loading = Eventually(value: try load())
        }
    }

    /// Starts rendering dedup-clusters.jsonl on another thread (a whole build with more
    /// than one thread, once the near-merge has committed): the shape and pack stages that
    /// follow run on one core, and the finish stage would otherwise render the clusters
    /// alone on the build's serial tail (~10 ms a thousand clusters).
    func startRenderingClusters() {
        guard threads > 1, spec.nearDedup != nil, clusters == nil else { return }
        clusters = Eventually(background: { [self] in try FinishStep.renderClusters(self) })
    }

    /// dedup-clusters.jsonl's bytes: the background rendering's, else rendered now.
    func renderedClusters() throws -> FinishStep.RenderedClusters {
        if let clusters { return try clusters.get() }
        return try FinishStep.renderClusters(self)
    }

    /// The BOS the spec states for its tokenizer (tokenizer.bos, or the model folder's when
    /// a custom template asks for the tokenizer's): it must be one of the tokenizer's
    /// special tokens. A template's own literal `bos` may be a new token.
    static func statedBOS(_ spec: BuildSpec) -> String? {
        spec.tokenizerBOS ?? (spec.template.custom?.bosFromTokenizer == true ? spec.template.custom?.bos : nil)
    }

    /// The spec's tokenizer with its EOS stated (never guessed) and the template's tokens.
    static func loadTokenizer(_ spec: BuildSpec, threads: Int) throws -> Tokenizer {
        var t = try TokenizerLoader.load(spec.tokenizer, threads: threads)
        if let eos = spec.tokenizerEOS {
            t = try t.withEOS(eos)
        } else if let why = t.eosGuess {
            // Training data must end its documents with the model's own EOS: never a guess.
            throw TokenmillError.spec(path: spec.path, key: "tokenizer",
                                      message: "\(why); name it: \"tokenizer\": {\"path\": \"\(spec.tokenizer)\", \"eos\": \"<the EOS token>\"}")
        }
        // A BOS the spec or the model folder names must be the tokenizer's own token.
        if let bos = statedBOS(spec), t.specialID(bos) == nil {
            throw TokenmillError.spec(path: spec.path, key: "tokenizer.bos",
                                      message: "'\(bos)' is not a special token of \(t.name) (its special tokens: \(t.specialTokens.map(\.text).prefix(12).joined(separator: ", ")))")
        }
        if spec.template.kind == .chatml {
            let (a, b) = TokenizerLoader.chatTokenIDs(for: t)
            t = try t.addingSpecialTokens([("<|im_start|>", a), ("<|im_end|>", b)])
        } else {
            // Other templates' tokens keep the ids a vocabulary gives them (a Llama 3
            // tokenizer.json has them); those it lacks follow its last id, in order.
            var next = UInt32(t.vocabSize)
            var extra: [(String, UInt32)] = []
            for name in spec.template.specialTokens where !t.specialTokens.contains(where: { $0.text == name }) {
                extra.append((name, next)); next += 1
            }
            if !extra.isEmpty { t = try t.addingSpecialTokens(extra) }
        }
        return t
    }

    /// Units of a stage; nil when they are known only once an earlier stage is done.
    func unitCount(_ stage: StageName) throws -> Int {
        switch stage {
        case .scan: return units.count
        case .exact: return spec.exactDedup == nil ? 0 : exactPartitions
        case .nearBands: return lsh?.bands ?? 0
        case .nearMerge: return lsh == nil ? 0 : 1
        case .shape: return 1
        case .pack: return splitNames(spec).count
        case .write: return try WriteStep.shardTable(self).count
        case .finish: return 1
        }
    }

    /// Units of the stage's prerequisites that must be done before it starts.
    func prerequisites(_ stage: StageName) -> [StageName] {
        guard let i = StageName.allCases.firstIndex(of: stage) else { return [] }
        return Array(StageName.allCases[..<i])
    }

    var sourceNames: [String] { spec.sources.map(\.name) }
}

/// What `tokenmill plan` prints: the stages a spec runs, in order, with their units.
public struct BuildPlan {
    public struct Stage {
        public var name: StageName
        /// nil: known only after an earlier stage (write: one unit a shard).
        public var units: Int?
        /// A stage of one unit (or one a split) gets one task.
        public var single: Bool
        public var detail: String
    }
    public var stages: [Stage] = []

    public init(spec: BuildSpec, outDir: String?) throws {
        let ctx = try BuildContext(spec: spec, threads: 1, outDir: outDir ?? spec.outputDir)
        for s in Build.stageNames(spec) {
            var detail = s.summary
            var units: Int? = nil
            switch s {
            case .scan:
                units = ctx.units.count
                detail += " (\(spec.sources.count) source\(spec.sources.count == 1 ? "" : "s"), blocks of \(ctx.unitBytes >> 10) KiB)"
            case .write: units = nil
            default: units = try ctx.unitCount(s)
            }
            if s == .nearBands, let n = spec.nearDedup, let l = ctx.lsh {
                detail += " (\(n.on.rawValue), threshold \(n.threshold), \(n.permutations) permutations = \(l.bands) bands x \(l.rows) rows, \(n.ngram)-gram shingles)"
            }
            if s == .pack { detail += " (\(spec.strategy.rawValue), seq_len \(spec.seqLen), overflow \(spec.overflow.rawValue))" }
            if s == .scan { detail += "; tokenizer \(spec.tokenizer), template \(spec.template.name)" }
            stages.append(Stage(name: s, units: units, single: [.nearMerge, .shape, .pack, .finish].contains(s), detail: detail))
        }
    }
}
