/// Constants of the shard format (docs/FORMAT.md, version 1.1).
public enum ShardLayout {
    public static let magic: [UInt8] = [0x89, 0x54, 0x4B, 0x4D, 0x0D, 0x0A, 0x1A, 0x0A]      // \x89TKM\r\n\x1a\n
    public static let trailerMagic: [UInt8] = [0x54, 0x4B, 0x4D, 0x45, 0x4E, 0x44, 0x0D, 0x0A] // TKMEND\r\n
    public static let versionMajor: UInt16 = 1
    /// The minor version this code implements: what `index.json`'s `format_version` says,
    /// and the newest minor whose reserved fields a reader holds to zero (FORMAT.md 1.7).
    public static let versionMinor: UInt16 = 1
    /// What a shard header's version_minor says: the oldest minor whose shard layout the
    /// file follows. 1.1 changed `index.json` only, so shards still say 0 (FORMAT.md log).
    public static let shardVersionMinor: UInt16 = 0
    public static let headerSize = 32
    public static let trailerSize = 32
    public static let footerFixedSize = 24
    public static let chunkEntrySize = 40
    /// A chunk is closed once it holds this many bytes of token ids.
    public static let chunkTokenBytes = 1 << 20
}

/// One training sequence as stored: tokens, loss mask (one byte per token, 0 or 1, in
/// memory; bit-packed on disk) and the offsets where packed documents start.
public struct SequenceRecord: Equatable, Sendable {
    public var tokens: [UInt32]
    public var lossMask: [UInt8]
    public var docStarts: [UInt32]
    public init(tokens: [UInt32], lossMask: [UInt8], docStarts: [UInt32]) {
        self.tokens = tokens; self.lossMask = lossMask; self.docStarts = docStarts
    }
}

/// Little-endian appends.
extension Array where Element == UInt8 {
    @inline(__always) mutating func appendLE(_ v: UInt16) { append(UInt8(v & 0xFF)); append(UInt8(v >> 8)) }
    @inline(__always) mutating func appendLE(_ v: UInt32) { Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) } }
    @inline(__always) mutating func appendLE(_ v: UInt64) { Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) } }
}
