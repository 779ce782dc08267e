import CKernels
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The persistent threads behind `Parallel`: `threads − 1` workers that, with the calling thread,
/// run the chunks of one parallel region at a time.
///
/// Why not `DispatchQueue.concurrentPerform`: on Linux it wakes its threads slowly. Measured here
/// (2 cores, idle): two 2 µs halves took 7.9 µs as one region (serial: 4.2 µs), two 100 µs halves
/// 173 µs; this pool takes 2.6 µs and 102 µs. A forward pass runs hundreds of regions, a decode
/// step ~300 per token, so the wake-up cost is paid every few microseconds.
///
/// Protocol: the caller publishes a region as one atomic word (region number and how many workers
/// may take part) and opens its gate; a worker enters through the gate (counted), takes chunk
/// indices from a shared counter until none are left, and leaves. The caller takes chunks too,
/// then closes the gate and waits only for the workers inside: a worker that has not arrived yet
/// (asleep, or its core busy with another process) finds the gate closed and touches nothing, so a
/// region never waits for a thread that is not running; at worst it runs at serial speed. Idle
/// workers spin briefly (a forward pass's regions follow each other within microseconds), then
/// sleep on a condition variable. One region at a time: a region started while another runs
/// (nested, or from a second thread) is refused and its caller runs it inline.
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool()

    /// How long an idle worker spins before sleeping.
    private static let spinSeconds = 50e-6
    /// Participants per region are packed in the low bits of the region word.
    private static let participantBits = 8
    static let maxHelpers = (1 << participantBits) - 1

    private let busy = Atomic<Bool>(false)
    /// (region number << participantBits) | participating workers.
    private let region = Atomic<Int>(0)
    /// (region number << 32) | closed bit | workers inside the region.
    private let gate = Atomic<Int>(0)
    private static let closed = 1 << 31
    private static let insideMask = closed - 1
    private let nextChunk = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    /// The current region's chunk count and body: written before the region is published, read by
    /// workers only while inside its gate.
    private var chunkCount = 0
    private var body: ((Int) -> Void)?
    private var startedWorkers = 0
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let wakeUp: UnsafeMutablePointer<pthread_cond_t>

    private init() {
        mutex = .allocate(capacity: 1)
        wakeUp = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wakeUp, nil)
    }

    /// Runs `body(i)` for i in 0..<count on the caller and `helpers` workers. Returns false, running
    /// nothing, when another region is in progress.
    func run(_ count: Int, helpers: Int, _ body: (Int) -> Void) -> Bool {
        precondition(helpers >= 1 && helpers <= Self.maxHelpers)
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        defer { busy.store(false, ordering: .releasing) }
        startWorkers(helpers)
        withoutActuallyEscaping(body) { body in
            self.body = body
            chunkCount = count
            nextChunk.store(0, ordering: .relaxed)
            let number = (region.load(ordering: .relaxed) >> Self.participantBits) + 1
            gate.store(number << 32, ordering: .releasing)
            region.store(number << Self.participantBits | helpers, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(mutex)
                pthread_cond_broadcast(wakeUp)
                pthread_mutex_unlock(mutex)
            }
            runChunks()
            // No chunk is left to take: close the gate and wait for the workers still inside.
            gate.bitwiseOr(Self.closed, ordering: .acquiringAndReleasing)
            var spins = 0
            while gate.load(ordering: .acquiring) & Self.insideMask != 0 {
                // A worker preempted inside (its core taken by another process) may be waiting to
                // run on this core: after a short spin, give it the chance.
                spins += 1
                if spins % 4096 == 0 { sched_yield() } else { srppo_cpu_relax() }
            }
            self.body = nil
        }
        return true
    }

    /// Takes chunks until none are left. Not inlined: the closure reference it holds is released
    /// before a worker leaves the gate (`withoutActuallyEscaping` verifies that nothing keeps it).
    @inline(never)
    private func runChunks() {
        let body = self.body!
        let count = chunkCount
        while true {
            let i = nextChunk.add(1, ordering: .relaxed).oldValue
            if i >= count { return }
            body(i)
        }
    }

    private func startWorkers(_ wanted: Int) {
        while startedWorkers < wanted {
            // The worker waits for regions after the current one: it must not take the region about to
            // be published for one it has already seen, whenever its thread gets to run.
            let current = region.load(ordering: .relaxed) >> Self.participantBits
            let context = Unmanaged.passRetained(WorkerContext(pool: self, index: startedWorkers, seen: current)).toOpaque()
            var thread = pthread_t()
            let status = pthread_create(&thread, nil, { raw in
                let context = Unmanaged<WorkerContext>.fromOpaque(raw!).takeRetainedValue()
                context.pool.workerLoop(index: context.index, seen: context.seen) // never returns
            }, context)
            precondition(status == 0, "cannot start a worker thread (error \(status))")
            pthread_detach(thread)
            startedWorkers += 1
        }
    }

    private final class WorkerContext {
        let pool: WorkerPool
        let index: Int
        let seen: Int
        init(pool: WorkerPool, index: Int, seen: Int) { self.pool = pool; self.index = index; self.seen = seen }
    }

    private func workerLoop(index: Int, seen initial: Int) -> Never {
        var seen = initial
        while true {
            let word = waitForRegion(after: seen)
            seen = word >> Self.participantBits
            if index < word & Self.maxHelpers { enterAndWork(region: seen) }
        }
    }

    /// Runs chunks of region `number` if its gate is still open.
    private func enterAndWork(region number: Int) {
        var state = gate.load(ordering: .acquiring)
        while state >> 32 == number && state & Self.closed == 0 {
            let (entered, current) = gate.compareExchange(expected: state, desired: state + 1, ordering: .acquiringAndReleasing)
            if entered {
                runChunks()
                gate.subtract(1, ordering: .releasing)
                return
            }
            state = current
        }
    }

    /// Spins for a while, then sleeps, until a region numbered after `seen` is published.
    private func waitForRegion(after seen: Int) -> Int {
        let start = monotonicSeconds()
        var spins = 0
        while true {
            let word = region.load(ordering: .acquiring)
            if word >> Self.participantBits != seen { return word }
            spins += 1
            if spins % 64 != 0 || monotonicSeconds() - start < Self.spinSeconds {
                srppo_cpu_relax()
                continue
            }
            pthread_mutex_lock(mutex)
            sleepers.add(1, ordering: .sequentiallyConsistent)
            var current = region.load(ordering: .sequentiallyConsistent)
            while current >> Self.participantBits == seen {
                pthread_cond_wait(wakeUp, mutex)
                current = region.load(ordering: .sequentiallyConsistent)
            }
            sleepers.subtract(1, ordering: .sequentiallyConsistent)
            pthread_mutex_unlock(mutex)
            return current
        }
    }

    private func monotonicSeconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }
}
