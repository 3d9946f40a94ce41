#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CIntrinsics

/// Memory for the large lookup tables that hot loops probe at random (the BPE rank and
/// pair tables: 12 and 4 MiB for o200k_base). With 4 KiB pages every probe of such a table
/// is likely a TLB miss as well as a cache miss; tables of 1 MiB and more are therefore
/// aligned to 2 MiB, rounded up to whole 2 MiB pages and marked for transparent huge
/// pages (`madvise(MADV_HUGEPAGE)`: Debian's default THP mode is `madvise`, so without the
/// mark they get none). Where huge pages are unavailable the mark is ignored and the
/// memory works as any other.
public enum TableMemory {
    static let hugePage = 2 << 20

    /// Uninitialized memory for `capacity` values; release it with `free`.
    public static func allocate<T>(_: T.Type, capacity: Int) -> UnsafeMutableBufferPointer<T> {
        let bytes = max(capacity * MemoryLayout<T>.stride, 1)
        let huge = bytes >= 1 << 20
        let size = huge ? (bytes + hugePage - 1) & ~(hugePage - 1) : bytes
        var raw: UnsafeMutableRawPointer? = nil
        guard posix_memalign(&raw, huge ? hugePage : 64, size) == 0, let raw else {
            fatalError("out of memory: could not allocate \(size) bytes for a lookup table")
        }
        #if os(Linux)
        if huge { _ = madvise(raw, size, MADV_HUGEPAGE) }
        #endif
        return UnsafeMutableBufferPointer(start: raw.bindMemory(to: T.self, capacity: capacity), count: capacity)
    }

    public static func free<T>(_ buffer: UnsafeMutableBufferPointer<T>) {
        #if canImport(Glibc)
        Glibc.free(buffer.baseAddress)
        #else
        Darwin.free(buffer.baseAddress)
        #endif
    }
}

/// Process-wide allocator settings, set once by the executables at start.
public enum ProcessMemory {
    /// Keeps freed memory for reuse (glibc: blocks up to 32 MB come from the heap, and up
    /// to 128 MB of free heap top is kept) instead of returning it to the kernel at every
    /// free: a unit of work's pages, records and chunks then reuse the memory the previous
    /// unit freed, without page faults. Peak RSS is unchanged (what is kept was in use at
    /// an earlier peak); only the drop after a peak is slower.
    public static func keepFreedMemory() {
        _ = tm_keep_freed_memory(32 << 20, 128 << 20)
    }
}
