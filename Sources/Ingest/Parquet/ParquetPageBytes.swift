/// A page's decompressed bytes, or the stored bytes of an uncompressed page where they lie
/// in the file: held by the text columns whose values point into them (`ByteColumn`),
/// so a string value is never copied until a record takes it.
final class PageBytes: @unchecked Sendable {
    let bytes: UnsafeBufferPointer<UInt8>
    private let owned: UnsafeMutablePointer<UInt8>?

    /// Bytes that outlive this object elsewhere (the file's mapping, for the row group).
    init(borrowing b: UnsafeBufferPointer<UInt8>) {
        bytes = b
        owned = nil
    }

    /// `count` bytes that `fill` writes, all of them (it throws otherwise). Not
    /// zero-filled first: decompressors write every byte they report.
    init(count: Int, fill: (UnsafeMutableBufferPointer<UInt8>) throws(ParquetError) -> Void) throws(ParquetError) {
        let p = UnsafeMutablePointer<UInt8>.allocate(capacity: max(count, 1))
        do {
            try fill(UnsafeMutableBufferPointer(start: p, count: count))
        } catch {
            p.deallocate()
            throw error
        }
        owned = p
        bytes = UnsafeBufferPointer(start: p, count: count)
    }

    /// A copy of `b` (a repaired string, a value a decoder built).
    convenience init(copying b: UnsafeBufferPointer<UInt8>) {
        try! self.init(count: b.count) { (dst) throws(ParquetError) in
            if b.count > 0 { dst.baseAddress!.update(from: b.baseAddress!, count: b.count) }
        }
    }

    deinit { owned?.deallocate() }
}
