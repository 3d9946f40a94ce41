import TokenmillCore

/// Decontamination: a training record is dropped when any of its shingles (`ngram`
/// words, or characters for CJK text; the same shingling as near-dedup) equals a
/// shingle of an evaluation prompt. Eval shingles are held as 64-bit hashes with the
/// first place each came from.
public struct Decontaminator: Sendable {
    public struct EvalRef: Sendable, Equatable {
        public var file: Int
        public var line: Int
        public init(file: Int, line: Int) { self.file = file; self.line = line }
    }

    public struct Hit: Sendable {
        public var eval: EvalRef
        /// The shared shingle, folded as compared.
        public var shingle: String
    }

    public let ngram: Int
    var shingles: [UInt64: EvalRef] = [:]
    public var count: Int { shingles.count }

    public init(ngram: Int) { self.ngram = ngram }

    public mutating func add(_ text: [UInt8], from ref: EvalRef) {
        var sh = Shingler(ngram: ngram)
        var hashes: [UInt64] = []
        text.withUnsafeBufferPointer { sh.hashes($0, into: &hashes) }
        for h in hashes where shingles[h] == nil { shingles[h] = ref }
    }

    /// The first shingle of `text` an eval prompt shares, if any.
    public func firstHit(_ text: [UInt8], _ sh: inout Shingler) -> Hit? {
        if shingles.isEmpty { return nil }
        let n = text.withUnsafeBufferPointer { sh.prepare($0) }
        return sh.folded.withUnsafeBytes { f -> Hit? in
            for k in 0..<n {
                let h = XXH3.hash64(UnsafeRawBufferPointer(rebasing: f[sh.shingleRange(k)]))
                if let ref = shingles[h] { return Hit(eval: ref, shingle: sh.shingleText(k)) }
            }
            return nil
        }
    }
}
