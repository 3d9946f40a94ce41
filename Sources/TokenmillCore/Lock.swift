#if canImport(Glibc)
import Glibc
#endif

/// A pthread mutex without Foundation.
public final class NSLockLite: @unchecked Sendable {
    private let m: UnsafeMutablePointer<pthread_mutex_t>
    public init() {
        m = .allocate(capacity: 1)
        pthread_mutex_init(m, nil)
    }
    deinit { pthread_mutex_destroy(m); m.deallocate() }
    public func lock() { pthread_mutex_lock(m) }
    public func unlock() { pthread_mutex_unlock(m) }
}

/// Number of cores this process may use.
public var activeProcessorCount: Int {
    let n = sysconf(Int32(_SC_NPROCESSORS_ONLN))
    return n > 0 ? n : 1
}

/// Objects that workers take and give back (buffers, scratch states): a thread takes a
/// free one, or a new one from `make`, and gives it back when done, so the next taker
/// reuses its memory.
public final class FreeList<T>: @unchecked Sendable {
    private let lock = NSLockLite()
    private var free: [T] = []
    private let make: () -> T

    public init(_ make: @escaping () -> T) { self.make = make }

    public func take() -> T {
        lock.lock()
        let t = free.popLast()
        lock.unlock()
        return t ?? make()
    }

    public func give(_ t: consuming T) {
        lock.lock(); defer { lock.unlock() }
        free.append(t)
    }
}
