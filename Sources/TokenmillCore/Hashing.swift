import CXXHash

/// xxh3 hashes over byte buffers (xxHash 0.8, seed 0 unless given).
///
/// Used for the exact-dedup key (128-bit), shard checksums (64-bit) and the spec/vocab
/// hashes in `index.json`. The C functions are inlined (`XXH_INLINE_ALL` in the shim).
public enum XXH3 {
    @inlinable
    public static func hash64(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        tm_xxh3_64(bytes.baseAddress, bytes.count, seed)
    }

    public static func hash64(_ bytes: [UInt8], seed: UInt64 = 0) -> UInt64 {
        bytes.withUnsafeBytes { hash64($0, seed: seed) }
    }

    public static func hash128(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt128Hash {
        let h = tm_xxh3_128(bytes.baseAddress, bytes.count, seed)
        return UInt128Hash(low: h.low64, high: h.high64)
    }

    public static func hash128(_ bytes: [UInt8], seed: UInt64 = 0) -> UInt128Hash {
        bytes.withUnsafeBytes { hash128($0, seed: seed) }
    }

    /// 16 lowercase hex digits, as written in `index.json`.
    public static func hex(_ value: UInt64) -> String {
        let s = String(value, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}

/// A 128-bit hash, hashable so it can key a `Set` of seen records.
public struct UInt128Hash: Hashable, Sendable {
    public var low: UInt64
    public var high: UInt64
    public init(low: UInt64, high: UInt64) { self.low = low; self.high = high }
}

/// Streaming xxh3-64 for data that arrives in pieces (whole-file shard checksums).
public struct XXH3Stream: ~Copyable {
    private let state: OpaquePointer

    public init() {
        state = tm_xxh3_create()!
    }

    deinit { tm_xxh3_free(state) }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        tm_xxh3_update(state, bytes.baseAddress, bytes.count)
    }

    public func digest() -> UInt64 { tm_xxh3_digest(state) }
}
