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
    /// The chunk's decompression buffer, passed on for reuse.
    var scratch: ScratchBuffer?

    public var count: Int { sampleStarts.count - 1 }
    public func range(_ k: Int) -> Range<Int> { sampleStarts[k]..<sampleStarts[k + 1] }

    public init() {}

    /// The batch's arrays as an empty chunk to decode into.
    consuming func recycled() -> FlatChunk {
        var f = FlatChunk()
        f.tokens = tokens; f.loss = loss; f.recordStarts = sampleStarts; f.documentStarts = documentStarts
        if let scratch { f.scratch = scratch }
        f.removeAll()
        return f
    }

    /// A decoded chunk's records as `unit` samples. `padding[k]` is the padding record k
    /// ends with (its last document start is then the padding's); empty when no record
    /// is padded. The chunk's arrays are taken over, not copied, where the unit allows.
    init(_ chunk: consuming FlatChunk, unit: ExportUnit, padding: [Int]) {
        let records = chunk.count
        scratch = chunk.scratch
        func paddingOf(_ k: Int) -> Int { padding.isEmpty ? 0 : padding[k] }
        switch unit {
        case .sequence:
            // As stored: the padding of a padded sequence is a document of its own here
            // (positions restart there, as in Tokenmill's reader).
            sampleStarts = chunk.recordStarts
            documentStarts = chunk.documentStarts
            self.padding = padding.isEmpty ? [Int](repeating: 0, count: records) : padding
            tokens = chunk.tokens
            loss = chunk.loss
        case .document:
            sampleStarts.reserveCapacity(chunk.documentStarts.count + 1)
            documentStarts.reserveCapacity(chunk.documentStarts.count)
            if padding.isEmpty {
                tokens = chunk.tokens
                loss = chunk.loss
                for k in 0..<records {
                    let d = chunk.documentRange(k)
                    for j in d {
                        documentStarts.append(chunk.documentStarts[j])
                        sampleStarts.append(j + 1 < d.upperBound ? chunk.documentStarts[j + 1] : chunk.recordStarts[k + 1])
                    }
                }
            } else {
                // The padding of a padded sequence is not a document: left out.
                tokens.reserveCapacity(chunk.tokens.count)
                loss.reserveCapacity(chunk.loss.count)
                for k in 0..<records {
                    let t = chunk.tokenRange(k), real = t.upperBound - paddingOf(k)
                    var d = chunk.documentRange(k)
                    if paddingOf(k) > 0 { d = d.lowerBound..<(d.upperBound - 1) }
                    let shift = tokens.count - t.lowerBound
                    tokens.append(contentsOf: chunk.tokens[t.lowerBound..<real])
                    loss.append(contentsOf: chunk.loss[t.lowerBound..<real])
                    for j in d {
                        documentStarts.append(chunk.documentStarts[j] + shift)
                        sampleStarts.append((j + 1 < d.upperBound ? chunk.documentStarts[j + 1] : real) + shift)
                    }
                }
            }
            self.padding = [Int](repeating: 0, count: sampleStarts.count - 1)
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
    /// Chunks' arrays handed back once their window is written, decoded into again: an
    /// export allocates (and the kernel zero-fills) a few windows' worth, not the split.
    let spare = FreeList { FlatChunk() }

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
            var flat = spare.take()
            try reader.readChunk(k, into: &flat)
            var padding: [Int] = []
            if pad {
                padding.reserveCapacity(flat.count)
                for j in 0..<flat.count {
                    let t = flat.tokenRange(j)
                    switch SequencePadding.storedPadding(tokens: flat.tokens[t], loss: flat.loss[t], documentStarts: flat.documentStarts[flat.documentRange(j)],
                                                         seqLen: index.seqLen, padID: padID) {
                    case .success(let n): padding.append(n)
                    case .failure(let f): throw TokenmillError.corrupt(path: reader.path, message: "chunk \(k): \(f.message)")
                    }
                }
            }
            return SampleBatch(flat, unit: unit, padding: padding)
        }
    }

    /// Hands the batches a window at a time (a few chunks a worker), in order, so a sink
    /// can write them on the workers (`PositionedWriter`). The next window is decoded (on
    /// the workers) while `sink` writes the current one, so reading and writing overlap;
    /// the batches' arrays are decoded into again once `sink` lets go of them.
    public func forEachWindow(_ sink: ([SampleBatch]) throws -> Void) throws {
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
            var batches = try p.get()
            current = try window(after: w)
            if let n = current, n.shard != w.shard { readers[w.shard] = nil }
            pending = try current.map(start)
            try sink(batches)
            // Popped, so each batch's arrays are uniquely held and keep their storage.
            while let b = batches.popLast() { spare.give(b.recycled()) }
        }
    }
}

/// Carries a value into a closure that runs on another thread, where the code guarantees
/// no concurrent mutation (a shard reader is read-only after opening).
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
