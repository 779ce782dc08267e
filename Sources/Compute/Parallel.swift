import CBLAS
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// How many cores the numerical code uses, and the one place that splits work across them.
///
/// OpenBLAS is pinned to one thread and every parallel region (GEMM slices included) is split here,
/// so OpenBLAS threads and ours never compete for the same cores. Regions run on a persistent pool
/// (`WorkerPool`: the caller plus `threads − 1` workers), which starts a region in about a
/// microsecond where GCD's concurrentPerform took tens.
public enum Parallel {
    nonisolated(unsafe) private static var configuredThreads: Int = {
        openblas_set_num_threads(1)
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }()

    /// Worker count for parallel regions (default: online CPUs). Set once at start-up (`--threads`).
    public static var threads: Int {
        get { configuredThreads }
        set {
            precondition(newValue >= 1, "thread count must be at least 1")
            configuredThreads = newValue
        }
    }

    /// Runs `body(chunk)` for each of `count` chunks across the workers; returns when all are done.
    /// Chunks are handed out one at a time, so uneven chunks balance. With one thread or one chunk,
    /// inside another region (nested), or while another thread's region runs, it runs inline.
    public static func forEach(_ count: Int, _ body: (Int) -> Void) {
        if count <= 0 { return }
        let helpers = min(min(threads, count) - 1, WorkerPool.maxHelpers)
        if helpers == 0 || !WorkerPool.shared.run(count, helpers: helpers, body) {
            for i in 0..<count { body(i) }
        }
    }

    /// Splits `0..<total` into one contiguous range per worker (ranges start at multiples of `align`)
    /// and runs `body(range)` for each non-empty range in parallel.
    public static func forRanges(_ total: Int, align: Int = 1, _ body: (Range<Int>) -> Void) {
        forRangesIndexed(total, align: align) { _, range in body(range) }
    }

    /// Like `forRanges`, also passing the range's index (in `0..<threads`) for per-worker scratch,
    /// e.g. partial sums that are added up afterwards in index order.
    public static func forRangesIndexed(_ total: Int, align: Int = 1, _ body: (_ part: Int, _ range: Range<Int>) -> Void) {
        let parts = min(threads, max(1, total / max(align, 1)))
        if parts <= 1 {
            if total > 0 { body(0, 0..<total) }
            return
        }
        let blocks = (total + align - 1) / align
        forEach(parts) { p in
            let start = min(total, (blocks * p / parts) * align)
            let end = min(total, (blocks * (p + 1) / parts) * align)
            if start < end { body(p, start..<end) }
        }
    }

    /// Runs `body(worker, task)` for every task in `0..<count`; workers take the next task as they
    /// finish one, so tasks of uneven cost still balance. `worker` (in `0..<threads`) indexes
    /// per-worker scratch memory.
    public static func forEachTask(_ count: Int, _ body: (_ worker: Int, _ task: Int) -> Void) {
        let workers = min(threads, count)
        if workers <= 1 {
            for task in 0..<count { body(0, task) }
            return
        }
        let next = Atomic<Int>(0)
        forEach(workers) { worker in
            while true {
                let task = next.wrappingAdd(1, ordering: .relaxed).oldValue
                if task >= count { return }
                body(worker, task)
            }
        }
    }
}
