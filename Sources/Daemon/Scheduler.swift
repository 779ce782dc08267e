import Foundation
import Transformer
import WireProtocol

/// One admitted score request: validated items, the model pair it was admitted with, its deadline,
/// and where its answer goes. Its mutable state belongs to the scheduler's lock.
final class ScoreJob: @unchecked Sendable {
    let client: String
    let id: String?
    let pair: ModelPair
    let items: [ScoringRequest]
    /// Per item: the response does not end with EOS.
    let truncated: [Bool]
    let totalTokens: Int
    let admitted: DispatchTime
    let deadline: DispatchTime
    /// Called once, on the scheduler's thread or the canceller's, with the answer or the error.
    let completion: @Sendable (Result<ScoreResponse, ErrorResponse>) -> Void

    fileprivate var results: [ScoreResult?]
    fileprivate var remaining: Int
    fileprivate var started: DispatchTime?
    fileprivate var finished = false

    init(client: String, id: String?, pair: ModelPair, items: [ScoringRequest], truncated: [Bool], deadline: DispatchTime,
         completion: @escaping @Sendable (Result<ScoreResponse, ErrorResponse>) -> Void) {
        self.client = client
        self.id = id
        self.pair = pair
        self.items = items
        self.truncated = truncated
        totalTokens = items.reduce(0) { $0 + $1.tokens.count }
        admitted = .now()
        self.deadline = deadline
        self.completion = completion
        results = Array(repeating: nil, count: items.count)
        remaining = items.count
    }
}

/// One item of a job waiting in the queue.
struct PendingItem: Schedulable {
    let job: ScoreJob
    let index: Int
    var client: String { job.client }
    var tokens: Int { job.items[index].tokens.count }
    var group: ObjectIdentifier { ObjectIdentifier(job.pair) }
}

/// The one scheduler of all clients' scoring work: admits jobs into a bounded queue, forms batches
/// across clients by token budget (fair round-robin, `FairQueue`), runs them one at a time on its own
/// thread (the engine uses every core for one batch), and completes each job when its last item is
/// done. Jobs can be cancelled at any time (client gone, deadline passed); their waiting items are
/// dropped and a running batch's results for them are discarded.
final class Scheduler: @unchecked Sendable {
    let batchTokens: Int
    let maxQueueTokens: Int
    private let metrics: Metrics
    private let log: DaemonLog
    private let condition = NSCondition()
    private var queue = FairQueue<PendingItem>()
    /// Jobs that wait for room in the queue instead of being refused (`submit(_:waitingForRoom:)`),
    /// oldest first; they enter as batches leave.
    private var waiting: [ScoreJob] = []
    private var stopping = false
    private var stopped = false
    /// When the running batch started (nil when idle): the watchdog's view of progress.
    private var batchStarted: DispatchTime?
    /// Items and tokens of the running batch (0 when idle).
    private var running = (items: 0, tokens: 0)

    init(batchTokens: Int, maxQueueTokens: Int, metrics: Metrics, log: DaemonLog) {
        self.batchTokens = batchTokens
        self.maxQueueTokens = maxQueueTokens
        self.metrics = metrics
        self.log = log
    }

    struct QueueState {
        var items: Int
        var tokens: Int
        var clients: Int
        /// The batch being computed now.
        var runningItems = 0
        var runningTokens = 0
    }

    var queueState: QueueState {
        condition.withLock {
            QueueState(items: queue.count, tokens: queue.tokens, clients: queue.clients, runningItems: running.items,
                       runningTokens: running.tokens)
        }
    }

    /// Seconds the running batch has been computing (0 when idle).
    var runningBatchSeconds: Double {
        condition.withLock { batchStarted.map { Double(DispatchTime.now().uptimeNanoseconds - $0.uptimeNanoseconds) / 1e9 } ?? 0 }
    }

    /// Queues a job's items, or refuses it: `busy` (with a retry estimate) when they would overflow
    /// the queue or jobs already wait for room, `shutting_down` when stopping. With `waitingForRoom`
    /// a job that does not fit waits (until it fits, is cancelled, or the daemon stops) instead of
    /// being refused: for a piece of a request already admitted, whose client cannot split or retry
    /// it (OpenRLHF). A job larger than the whole queue could never fit: `too_many_tokens`.
    func submit(_ job: ScoreJob, waitingForRoom: Bool = false) throws {
        guard job.totalTokens <= maxQueueTokens else {
            throw ErrorResponse(.tooManyTokens, "\(job.totalTokens) tokens at once, more than the whole queue holds (\(maxQueueTokens))")
        }
        try condition.withLock {
            if stopping { throw ErrorResponse(.shuttingDown, "the daemon is stopping") }
            if !waiting.isEmpty || queue.tokens + job.totalTokens > maxQueueTokens {
                if waitingForRoom { return waiting.append(job) }
                let seconds = retryAfter(queuedTokens: queue.tokens + job.totalTokens)
                throw ErrorResponse(.busy, "the queue holds \(queue.tokens) tokens of \(queue.clients) clients (limit \(maxQueueTokens)); retry after \(Int(seconds.rounded(.up))) s",
                                    retryAfterS: seconds)
            }
            enqueue(job)
        }
    }

    /// Under the lock.
    private func enqueue(_ job: ScoreJob) {
        for index in job.items.indices { queue.append(PendingItem(job: job, index: index)) }
        condition.signal()
    }

    /// Moves waiting jobs into the queue, oldest first, while they fit (under the lock).
    private func admitWaiting() {
        while let job = waiting.first, queue.tokens + job.totalTokens <= maxQueueTokens {
            waiting.removeFirst()
            enqueue(job)
        }
    }

    /// Seconds until the queue has room, from the recent scoring speed (1 s when unknown).
    func retryAfter(queuedTokens: Int) -> Double {
        guard let rate = metrics.tokensPerSecond, rate > 0 else { return 1 }
        return max(1, (Double(queuedTokens) / rate).rounded(.up))
    }

    /// Ends a job with `error` unless it already ended; its waiting items leave the queue.
    func cancel(_ job: ScoreJob, with error: ErrorResponse) {
        let ended: Bool = condition.withLock {
            guard !job.finished else { return false }
            job.finished = true
            let removed = queue.remove { $0.job === job }
            waiting.removeAll { $0 === job }
            metrics.cancelled(items: removed.count)
            admitWaiting()
            return true
        }
        if ended { job.completion(.failure(error)) }
    }

    /// Runs batches until `stop()`; call on a thread of its own.
    func run() {
        while let batch = nextBatch() {
            let requests = batch.map { $0.job.items[$0.index] }
            let pair = batch[0].job.pair
            let start = DispatchTime.now()
            let outcome = Result { try pair.logProbs(requests) }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
            let tokens = requests.reduce(0) { $0 + $1.tokens.count }
            metrics.batch(items: batch.count, tokens: tokens, seconds: seconds)
            finish(batch, outcome)
        }
        condition.withLock {
            stopped = true
            condition.broadcast()
        }
    }

    /// Waits for work; nil once stopping with nothing left.
    private func nextBatch() -> [PendingItem]? {
        condition.withLock {
            batchStarted = nil
            running = (0, 0)
            while queue.isEmpty && !stopping { condition.wait() }
            if queue.isEmpty { return nil }
            let batch = queue.nextBatch(tokenBudget: batchTokens)
            admitWaiting()
            let now = DispatchTime.now()
            batchStarted = now
            running = (batch.count, batch.reduce(0) { $0 + $1.tokens })
            for item in batch where item.job.started == nil { item.job.started = now }
            return batch
        }
    }

    private func finish(_ batch: [PendingItem], _ outcome: Result<(pt: [[Float]], sft: [[Float]]), Error>) {
        var completed: [(ScoreJob, Result<ScoreResponse, ErrorResponse>)] = []
        condition.withLock {
            for (position, item) in batch.enumerated() where !item.job.finished {
                let job = item.job
                switch outcome {
                case let .success(scores):
                    job.results[item.index] = ScoreResult(ptLogprobs: scores.pt[position], sftLogprobs: scores.sft[position],
                                                          truncated: job.truncated[item.index])
                    job.remaining -= 1
                    if job.remaining == 0 {
                        job.finished = true
                        completed.append((job, .success(response(for: job))))
                    }
                case let .failure(error):
                    job.finished = true
                    queue.remove { $0.job === job }
                    admitWaiting()
                    log.error("scoring failed: \(error)", ["client": job.client])
                    completed.append((job, .failure(ErrorResponse(.internal, "scoring failed: \(error)"))))
                }
            }
        }
        for (job, result) in completed { job.completion(result) }
    }

    private func response(for job: ScoreJob) -> ScoreResponse {
        let now = DispatchTime.now().uptimeNanoseconds
        let started = job.started?.uptimeNanoseconds ?? now
        return ScoreResponse(id: job.id, client: job.client, models: job.pair.identity, results: job.results.map { $0! },
                             queueMs: Double(started - job.admitted.uptimeNanoseconds) / 1e6,
                             totalMs: Double(now - job.admitted.uptimeNanoseconds) / 1e6)
    }

    /// Refuses new jobs; the scheduler thread finishes what is queued, then `run()` returns.
    func stop() {
        condition.withLock {
            stopping = true
            condition.broadcast()
        }
    }

    /// Ends every job that still has waiting items with `error` (stopping after the grace period).
    func abandonQueued(with error: ErrorResponse) {
        let jobs: [ScoreJob] = condition.withLock {
            var seen = Set<ObjectIdentifier>()
            let queued = queue.remove { _ in true }.map(\.job) + waiting
            waiting.removeAll()
            return queued.filter { seen.insert(ObjectIdentifier($0)).inserted }
        }
        for job in jobs { cancel(job, with: error) }
    }

    /// Waits until `run()` has returned or `seconds` passed; true when it returned.
    func waitUntilStopped(seconds: Double) -> Bool {
        let limit = Date(timeIntervalSinceNow: seconds)
        return condition.withLock {
            while !stopped { if !condition.wait(until: limit) { return stopped } }
            return true
        }
    }
}
