import Dispatch

/// Runs `body` over `0..<count` items on `threads` workers, in batches, and returns the
/// per-batch results in batch order: the output never depends on scheduling.
///
/// `concurrentPerform` over single items is too fine-grained; batches of a few
/// milliseconds keep dispatch overhead negligible. With `threads == 1` everything runs on
/// the calling thread.
public func parallelBatches<T>(count: Int, threads: Int, batchSize: Int, _ body: (Range<Int>) throws -> T) throws -> [T] {
    let size = max(1, batchSize)
    let batches = (count + size - 1) / size
    if batches == 0 { return [] }
    if threads <= 1 || batches == 1 {
        var out: [T] = []
        out.reserveCapacity(batches)
        for b in 0..<batches { out.append(try body(b * size..<min(count, (b + 1) * size))) }
        return out
    }
    let results = UnsafeMutablePointer<Result<T, Error>?>.allocate(capacity: batches)
    results.initialize(repeating: nil, count: batches)
    defer { results.deinitialize(count: batches); results.deallocate() }
    let next = AtomicCounter()
    // One worker per thread pulls batches from a shared counter: fast batches do not wait
    // for slow ones, and the result slot of each batch is written by exactly one worker.
    withoutActuallyEscaping(body) { body in
        DispatchQueue.concurrentPerform(iterations: min(threads, batches)) { _ in
            while true {
                let b = next.increment()
                if b >= batches { break }
                let r = Result { try body(b * size..<min(count, (b + 1) * size)) }
                results[b] = r
            }
        }
    }
    var out: [T] = []
    out.reserveCapacity(batches)
    for b in 0..<batches { out.append(try results[b]!.get()) }
    return out
}

/// A counter shared by worker threads (a mutex-free fetch-and-add would need the
/// Synchronization module; the lock is taken once per batch, not per item).
final class AtomicCounter: @unchecked Sendable {
    private var value = 0
    private let lock = NSLockLite()
    func increment() -> Int {
        lock.lock(); defer { lock.unlock() }
        let v = value; value += 1; return v
    }
}

/// A value computed on a thread of its own and waited for where it is first needed (a
/// build loads its vocabulary while the scan's first units are read and normalized).
/// Its error, if any, is thrown by every `get`.
public final class Eventually<T>: @unchecked Sendable {
    private let ready = NSLockLite()
    private let signal = DispatchSemaphore(value: 0)
    private var result: Result<T, Error>?

    /// Already known: `get` returns it at once.
    public init(value: T) { result = .success(value) }

    /// Starts `body` on a global queue.
    public init(background body: @escaping @Sendable () throws -> T) {
        DispatchQueue.global().async {
            let r = Result { try body() }
            self.ready.lock(); self.result = r; self.ready.unlock()
            self.signal.signal()
        }
    }

    public func get() throws -> T {
        ready.lock()
        if let r = result { ready.unlock(); return try r.get() }
        ready.unlock()
        signal.wait()
        signal.signal()   // let the next waiter through too
        ready.lock(); defer { ready.unlock() }
        return try result!.get()
    }
}
