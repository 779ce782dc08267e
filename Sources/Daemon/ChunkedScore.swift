import Foundation
import Transformer
import WireProtocol

/// One admitted score request on its way through the scheduler, in consecutive pieces of at most
/// `maxItems` items and `maxRequestTokens` tokens, one piece queued at a time. A `/v1/score` request
/// is within those limits and so is one piece; OpenRLHF sends a whole rollout batch to `/get_reward`,
/// often far larger, and cannot split it itself. Streaming it piece by piece keeps the queue bound
/// (it never holds more of such a request than one ordinary request) and lets other clients take
/// turns with it. The answer holds every piece's results in order, as if scored at once; all pieces
/// use the model pair the request was admitted with.
///
/// Pieces of a request that may wait (`waitsForRoom`) wait for room in a full queue instead of
/// being refused `busy`: used for `/get_reward`, whose client retries only a few times, 1 s apart.
final class ChunkedScore: @unchecked Sendable {
    private let scheduler: Scheduler
    private let client: String
    private let id: String?
    private let pair: ModelPair
    private let items: [ScoringRequest]
    private let truncated: [Bool]
    private let pieces: [Range<Int>]
    private let deadline: DispatchTime
    private let waitsForRoom: Bool
    private let admitted = DispatchTime.now()
    private let completion: @Sendable (Result<ScoreResponse, ErrorResponse>) -> Void

    /// Guards everything below.
    private let lock = NSLock()
    private var next = 0
    private var results: [ScoreResult] = []
    private var queueMs: Double?
    /// The piece in the scheduler now (nil between pieces and after the end).
    private var current: ScoreJob?
    private var ended = false

    init(scheduler: Scheduler, client: String, id: String?, pair: ModelPair, items: [ScoringRequest], truncated: [Bool],
         limits: Limits, deadline: DispatchTime, waitsForRoom: Bool,
         completion: @escaping @Sendable (Result<ScoreResponse, ErrorResponse>) -> Void) {
        self.scheduler = scheduler
        self.client = client
        self.id = id
        self.pair = pair
        self.items = items
        self.truncated = truncated
        pieces = consecutiveRanges(items.map(\.tokens.count), maxTokens: limits.maxRequestTokens, maxItems: limits.maxItems)
        self.deadline = deadline
        self.waitsForRoom = waitsForRoom
        self.completion = completion
        results.reserveCapacity(items.count)
    }

    /// Number of pieces the request is scored in.
    var pieceCount: Int { pieces.count }

    /// Queues the first piece; the rest follow one by one as each finishes. A request without items
    /// (OpenRLHF sends an empty slice to all but the first of several reward URLs) is answered at once.
    func start() {
        guard !pieces.isEmpty else {
            lock.withLock { ended = true }
            return completion(.success(ScoreResponse(id: id, client: client, models: pair.identity, results: [], queueMs: 0, totalMs: 0)))
        }
        submitNext()
    }

    /// Ends the request with `error` unless it already ended; the piece in the scheduler is dropped.
    func cancel(with error: ErrorResponse) {
        let (first, piece): (Bool, ScoreJob?) = lock.withLock {
            guard !ended else { return (false, nil) }
            ended = true
            defer { current = nil }
            return (true, current)
        }
        guard first else { return }
        if let piece { scheduler.cancel(piece, with: error) }  // its completion finds the request ended
        completion(.failure(error))
    }

    private func submitNext() {
        let job: ScoreJob? = lock.withLock {
            guard !ended else { return nil }
            let range = pieces[next]
            next += 1
            let job = ScoreJob(client: client, id: id, pair: pair, items: Array(items[range]), truncated: Array(truncated[range]),
                               deadline: deadline) { [self] result in pieceFinished(result) }
            current = job
            return job
        }
        guard let job else { return }
        do {
            try scheduler.submit(job, waitingForRoom: waitsForRoom)
        } catch let error as ErrorResponse {
            fail(error)
        } catch {
            fail(ErrorResponse(.internal, "\(error)"))
        }
    }

    /// A piece's answer, on the scheduler's thread (or a canceller's).
    private func pieceFinished(_ result: Result<ScoreResponse, ErrorResponse>) {
        let response: ScoreResponse
        switch result {
        case let .failure(error): return fail(error)
        case let .success(piece): response = piece
        }
        enum Step { case ignore, more, done(ScoreResponse) }
        let step: Step = lock.withLock {
            guard !ended else { return .ignore }  // cancelled meanwhile
            results.append(contentsOf: response.results)
            if queueMs == nil { queueMs = response.queueMs }
            guard next == pieces.count else { return .more }
            ended = true
            current = nil
            let total = Double(DispatchTime.now().uptimeNanoseconds - admitted.uptimeNanoseconds) / 1e6
            return .done(ScoreResponse(id: id, client: client, models: pair.identity, results: results, queueMs: queueMs ?? 0,
                                       totalMs: total))
        }
        switch step {
        case .ignore: break
        case .more: submitNext()
        case let .done(answer): completion(.success(answer))
        }
    }

    private func fail(_ error: ErrorResponse) {
        let first: Bool = lock.withLock {
            guard !ended else { return false }
            ended = true
            current = nil
            return true
        }
        if first { completion(.failure(error)) }
    }
}
