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
