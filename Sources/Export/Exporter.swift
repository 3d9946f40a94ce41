import ShardFormat
import TokenmillCore

/// The trainers' formats `tokenmill export` writes (docs/EXPORT.md).
public enum ExportFormat: String, CaseIterable, Sendable {
    case megatron, datatrove, mds, hf
}

/// What one split's export wrote.
public struct ExportResult: Sendable {
    public var split: String
    public var samples = 0
    public var tokens = 0
    public var bytes = 0
}

/// Streams a dataset's splits into a trainer's format: a shard at a time, its chunks
/// decoded on all cores (`SplitSamples`), each format's writer appending in order. The
/// files of a split are committed atomically when it is complete.
public enum Exporter {
    public static func run(directory: String, format: ExportFormat, out: String, splits wanted: [String]?, unit: ExportUnit,
                           threads: Int, mdsCompression: MDSCompression = .none) throws -> [ExportResult] {
        let index = try DatasetIndex.load(dir: directory)
        if (format == .megatron || format == .hf) && index.tokenizer.vocabSize > Int(Int32.max) {
            throw TokenmillError.unsupported("\(directory): a vocabulary of \(index.tokenizer.vocabSize) ids does not fit the int32 ids of the \(format.rawValue) format")
        }
        var splits = index.splits
        if let wanted {
            for name in wanted where !index.splits.contains(where: { $0.name == name }) {
                throw TokenmillError.usage("\(directory) has no split '\(name)'; its splits are \(index.splits.map(\.name).joined(separator: ", "))")
            }
            splits = index.splits.filter { wanted.contains($0.name) }
        }
        try FileSystem.makeDirectories(out)
        var results: [ExportResult] = []
        for split in splits {
            let samples = SplitSamples(directory: directory, index: index, split: split, unit: unit, threads: threads)
            var result = ExportResult(split: split.name)
            func count(_ b: SampleBatch) { result.samples += b.count; result.tokens += b.tokens.count }
            switch format {
            case .megatron:
                let w = try MegatronWriter(prefix: FileSystem.join(out, split.name), vocabSize: index.tokenizer.vocabSize)
                try samples.forEachWindow { bs in bs.forEach(count); try w.append(bs, threads: threads) }
                result.bytes = try w.finish()
            case .hf:
                // datasets caches map() results by fingerprint: it names the split's bytes
                // (its shards' checksums), not only the spec.
                let key = ([index.specHash, split.name, unit.rawValue] + split.shards.map(\.checksum)).joined(separator: "/")
                let w = try HFWriter(folder: FileSystem.join(out, split.name), split: split.name, fingerprint: XXH3.hex(XXH3.hash64(Array(key.utf8))))
                try samples.forEachWindow { bs in bs.forEach(count); try w.append(bs, threads: threads) }
                result.bytes = try w.finish()
            case .datatrove:
                let w = try DatatroveWriter(folder: FileSystem.join(out, split.name), name: split.name, tokenizer: index.tokenizer.name,
                                            tokenWidth: DatasetDirectory.tokenWidth(vocabSize: index.tokenizer.vocabSize))
                try samples.forEachWindow { bs in bs.forEach(count); try w.append(bs, threads: threads) }
                result.bytes = try w.finish()
            case .mds:
                let w = try MDSWriter(folder: FileSystem.join(out, split.name), threads: threads, compression: mdsCompression)
                try samples.forEachWindow { bs in bs.forEach(count); try w.append(bs, threads: threads) }
                result.bytes = try w.finish()
            }
            results.append(result)
        }
        return results
    }
}

/// A writer whose bulk bytes go to offsets known once the batches before are counted:
/// `place` runs on one thread in order (index entries, offsets reserved), then `write`
/// puts each batch's bytes at its place on the workers, so writing is as parallel as
/// decoding. (One thread appending every byte was the bound of an export.)
protocol PositionedWriter: AnyObject {
    associatedtype Place
    func place(_ b: SampleBatch) throws -> Place
    func write(_ b: SampleBatch, at place: Place) throws
    /// The files written by position.
    var positionedFiles: [OutputFile] { get }
    /// Called once a window's bytes are all in place.
    func windowWritten() throws
}

extension PositionedWriter {
    func windowWritten() throws {}

    func append(_ window: [SampleBatch], threads: Int) throws {
        let places = try window.map(place)
        let box = UncheckedBox(self)
        _ = try parallelBatches(count: window.count, threads: threads, batchSize: 1) { r in
            try box.value.write(window[r.lowerBound], at: places[r.lowerBound])
        }
        for f in positionedFiles { try f.startWriteback() }
        try windowWritten()
    }
}
