import ShardFormat
import TokenmillCore

/// What one exported sample is: a packed sequence as stored, or one document of it.
public enum ExportUnit: String, CaseIterable, Sendable {
    /// One sample a packed sequence (its documents and any padding included).
    case sequence
    /// One sample a document; the padding of a padded sequence is not a document.
    case document
}

/// Samples of one split, a chunk's worth at a time, in the dataset's order: flat token ids,
/// loss flags (0/1) and, per sample, where it starts and where its documents start.
/// Arrays are reused from batch to batch by the reader; writers copy what they keep.
public struct SampleBatch {
    public var tokens: [UInt32] = []
    public var loss: [UInt8] = []
    /// Sample k is `tokens[sampleStarts[k]..<sampleStarts[k + 1]]` (one more entry than samples).
    public var sampleStarts: [Int] = [0]
    /// Document starts as offsets into `tokens`, for every sample in order; sample k's are
    /// those in `sampleStarts[k]..<sampleStarts[k + 1]` (with unit `sequence`, a padded
    /// sequence's padding starts one).
    public var documentStarts: [Int] = []
    /// Tokens of padding at the end of each sample (strategy `pad`, unit `sequence`).
    public var padding: [Int] = []

    public var count: Int { sampleStarts.count - 1 }
    public func range(_ k: Int) -> Range<Int> { sampleStarts[k]..<sampleStarts[k + 1] }

    mutating func removeAll() {
        tokens.removeAll(keepingCapacity: true); loss.removeAll(keepingCapacity: true)
        sampleStarts.removeAll(keepingCapacity: true); sampleStarts.append(0)
        documentStarts.removeAll(keepingCapacity: true); padding.removeAll(keepingCapacity: true)
    }

    /// Appends a stored sequence as `unit` samples. `paddingTokens` is the padding the
    /// sequence ends with (its last document start is then the padding's).
    mutating func append(_ r: SequenceRecord, unit: ExportUnit, paddingTokens: Int) {
        let base = tokens.count
        let real = r.tokens.count - paddingTokens
        let starts = paddingTokens > 0 ? r.docStarts.dropLast() : r.docStarts[...]
        switch unit {
        case .sequence:
            // As stored: the padding of a padded sequence is a document of its own here
            // (positions restart there, as in Tokenmill's reader).
            tokens.append(contentsOf: r.tokens)
            loss.append(contentsOf: r.lossMask)
            for s in r.docStarts { documentStarts.append(base + Int(s)) }
            sampleStarts.append(tokens.count)
            padding.append(paddingTokens)
        case .document:
            tokens.append(contentsOf: r.tokens[0..<real])
            loss.append(contentsOf: r.lossMask[0..<real])
            var k = starts.startIndex
            while k < starts.endIndex {
                documentStarts.append(base + Int(starts[k]))
                let end = k + 1 < starts.endIndex ? Int(starts[k + 1]) : real
                sampleStarts.append(base + end)
                padding.append(0)
                k += 1
            }
        }
    }
}

/// Reads a split shard by shard; each shard's chunks are decompressed, checked and decoded
/// on `threads` workers, a window of chunks at a time (memory stays a few chunks a
/// worker), and handed to `sink` in order.
public struct SplitSamples {
    public let directory: String
    public let index: DatasetIndex
    public let split: DatasetIndex.Split
    public let unit: ExportUnit
    public let threads: Int

    public init(directory: String, index: DatasetIndex, split: DatasetIndex.Split, unit: ExportUnit, threads: Int) {
        self.directory = directory; self.index = index; self.split = split; self.unit = unit; self.threads = max(1, threads)
    }

    /// A window of chunks: decoded together on the workers.
    struct Window {
        var shard: Int
        var chunks: Range<Int>
    }

    /// Decodes one window's chunks on the workers, in order.
    func decode(_ reader: ShardReader, _ chunks: Range<Int>) throws -> [SampleBatch] {
        let padID = UInt32(index.tokenizer.padID)
        let pad = index.strategy == "pad"
        return try parallelBatches(count: chunks.count, threads: threads, batchSize: 1) { r -> SampleBatch in
            let k = chunks.lowerBound + r.lowerBound
            var b = SampleBatch()
            for rec in try reader.readChunk(k) {
                var padding = 0
                if pad {
                    switch SequencePadding.storedPadding(rec, seqLen: index.seqLen, padID: padID) {
                    case .success(let n): padding = n
                    case .failure(let f): throw TokenmillError.corrupt(path: reader.path, message: "chunk \(k): \(f.message)")
                    }
                }
                b.append(rec, unit: unit, paddingTokens: padding)
            }
            return b
        }
    }

    /// Hands every batch to `sink`, in order. The next window is decoded (on the workers)
    /// while `sink` writes the current one, so reading and writing overlap; at most two
    /// windows and two shards are in memory.
    public func forEachBatch(_ sink: (SampleBatch) throws -> Void) throws {
        var readers: [Int: ShardReader] = [:]
        func reader(_ s: Int) throws -> ShardReader {
            if let r = readers[s] { return r }
            let entry = split.shards[s]
            let path = FileSystem.join(directory, entry.file)
            let r = try ShardReader(path: path, vocabSize: index.tokenizer.vocabSize)
            guard r.recordCount == entry.records, r.tokenCount == entry.tokens else {
                throw TokenmillError.corrupt(path: path, message: "holds \(r.recordCount) records and \(r.tokenCount) tokens, index.json says \(entry.records) and \(entry.tokens)")
            }
            readers[s] = r
            return r
        }
        // Windows of a few chunks a worker, shard after shard (a shard with no chunks is
        // passed over).
        let size = threads * 2
        func window(after w: Window?) throws -> Window? {
            var shard = w?.shard ?? 0, first = w?.chunks.upperBound ?? 0
            while shard < split.shards.count {
                let count = try reader(shard).chunks.count
                if first < count { return Window(shard: shard, chunks: first..<min(count, first + size)) }
                readers[shard] = nil
                shard += 1; first = 0
            }
            return nil
        }
        let box = UncheckedBox(self)
        func start(_ w: Window) throws -> Eventually<[SampleBatch]> {
            let r = UncheckedBox(try reader(w.shard))
            return Eventually(background: { try box.value.decode(r.value, w.chunks) })
        }
        var current = try window(after: nil)
        var pending = try current.map(start)
        while let w = current, let p = pending {
            let batches = try p.get()
            current = try window(after: w)
            if let n = current, n.shard != w.shard { readers[w.shard] = nil }
            pending = try current.map(start)
            for b in batches { try sink(b) }
        }
    }
}

/// Carries a value into a closure that runs on another thread, where the code guarantees
/// no concurrent mutation (a shard reader is read-only after opening).
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
