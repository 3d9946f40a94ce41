import TokenmillCore

/// The text values of a string column (BYTE_ARRAY or FIXED_LEN_BYTE_ARRAY read as UTF-8)
/// as spans of the pages they were decoded from, which the column keeps alive: a value
/// is checked where it lies and copied once, when a record takes it. (An array per value
/// cost an allocation at decode time and a scattered refcount touch each time a row was
/// assembled, released or freed: a third of a Parquet read in a profile.) The spans are
/// allocated by hand so that the pointers the row assembler keeps stay valid for the
/// column's life (nothing grows them after decoding).
final class ByteColumn: @unchecked Sendable {
    private(set) var spans: UnsafeMutablePointer<UnsafeBufferPointer<UInt8>>
    private var capacity: Int
    private(set) var count = 0
    /// What the spans point into: pages, repaired strings, a dictionary's column.
    private var owners: [AnyObject] = []

    init() {
        capacity = 16
        spans = .allocate(capacity: capacity)
    }

    deinit { spans.deallocate() }

    @inline(__always)
    func value(_ i: Int) -> UnsafeBufferPointer<UInt8> { spans[i] }

    /// Keeps `owner` (what the next spans point into) alive as long as the column.
    func keep(_ owner: AnyObject) { owners.append(owner) }

    func reserve(_ values: Int) {
        if count + values <= capacity { return }
        let n = max(count + values, capacity * 2)
        let grown = UnsafeMutablePointer<UnsafeBufferPointer<UInt8>>.allocate(capacity: n)
        grown.update(from: spans, count: count)
        spans.deallocate()
        spans = grown; capacity = n
    }

    /// Appends a value that lies in something this column keeps.
    @inline(__always)
    func append(_ b: UnsafeBufferPointer<UInt8>) {
        if count == capacity { reserve(1) }
        spans[count] = b
        count += 1
    }

    /// Appends a value (lying in something this column keeps) as text: invalid UTF-8 is
    /// replaced with U+FFFD, in a copy. Returns whether it was.
    @inline(__always)
    func appendText(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        if UTF8Validation.isValid(b) { append(b); return false }
        let fixed = Array(String(decoding: b, as: UTF8.self).utf8).withUnsafeBufferPointer { PageBytes(copying: $0) }
        keep(fixed)
        append(fixed.bytes)
        return true
    }

    /// Appends every value of `other` (and keeps what they point into).
    func append(contentsOf other: ByteColumn) {
        reserve(other.count)
        (spans + count).update(from: other.spans, count: other.count)
        count += other.count
        owners.append(contentsOf: other.owners)
    }
}
