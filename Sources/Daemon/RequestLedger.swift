import Foundation
import NIOCore
import Transformer
import WireProtocol

/// Score requests in flight and, for those with an id, their answers: a request repeated with the same
/// client and id (a client retrying after a timeout or a lost connection) joins the computation under
/// way or gets the stored answer, never a second computation. Answers are kept for the daemon's
/// lifetime up to `capacity` requests (oldest dropped first).
package final class RequestLedger: @unchecked Sendable {
    package typealias Delivery = @Sendable (Result<ScoreResponse, ErrorResponse>) -> Void

    /// One computation and everyone waiting for it.
    package final class Computation: @unchecked Sendable {
        let key: String?
        let items: [ScoringRequest]
        fileprivate var waiters: [Int: (delivery: Delivery, isRepeat: Bool)] = [:]
        /// Stops the computation when nobody waits any more (set once its job is submitted).
        fileprivate var cancel: (() -> Void)?

        fileprivate init(key: String?, items: [ScoringRequest]) {
            self.key = key
            self.items = items
        }
    }

    package enum Admission {
        /// Nothing known under this key: the caller computes (submits a job) and calls `finish`.
        case compute(Computation)
        /// Joined a computation under way; the answer arrives through the delivery.
        case joined(Computation)
        /// The stored answer (`replayed` already set).
        case replay(ScoreResponse)
        /// The id was used for different items.
        case conflict
    }

    package let capacity: Int
    private let lock = NSLock()
    private var running: [String: Computation] = [:]
    private var answers: [String: (items: [ScoringRequest], response: ScoreResponse)] = [:]
    /// Keys of `answers`, oldest first (a ring: dropping the oldest must not shift 10 000 keys).
    private var answerOrder = CircularBuffer<String>()
    private var nextWaiter = 0

    package init(capacity: Int) {
        self.capacity = capacity
    }

    package static func key(client: String, id: String) -> String { client + "\u{0}" + id }

    /// Registers a request; `delivery` gets the answer unless the result is `.replay` or `.conflict`.
    /// Returns the waiter number to pass to `leave` when the requester goes away.
    package func admit(key: String?, items: [ScoringRequest], delivery: @escaping Delivery) -> (Admission, waiter: Int) {
        lock.withLock {
            nextWaiter += 1
            let waiter = nextWaiter
            if let key {
                if let stored = answers[key] {
                    guard stored.items == items else { return (.conflict, waiter) }
                    var response = stored.response
                    response.replayed = true
                    return (.replay(response), waiter)
                }
                if let computation = running[key] {
                    guard computation.items == items else { return (.conflict, waiter) }
                    computation.waiters[waiter] = (delivery, true)
                    return (.joined(computation), waiter)
                }
            }
            let computation = Computation(key: key, items: items)
            computation.waiters[waiter] = (delivery, false)
            if let key { running[key] = computation }
            return (.compute(computation), waiter)
        }
    }

    /// Sets how to stop `computation` when its last waiter leaves.
    package func setCancel(_ computation: Computation, _ cancel: @escaping () -> Void) {
        lock.withLock { computation.cancel = cancel }
    }

    /// A requester went away (connection closed). When nobody else waits, the computation stops.
    package func leave(_ computation: Computation, waiter: Int) {
        let cancel: (() -> Void)? = lock.withLock {
            guard computation.waiters.removeValue(forKey: waiter) != nil, computation.waiters.isEmpty else { return nil }
            if let key = computation.key, running[key] === computation { running[key] = nil }
            return computation.cancel
        }
        cancel?()
    }

    /// Delivers the result to every waiter; a successful answer with an id is kept for repeats.
    package func finish(_ computation: Computation, _ result: Result<ScoreResponse, ErrorResponse>) {
        let waiters: [(delivery: Delivery, isRepeat: Bool)] = lock.withLock {
            if let key = computation.key, running[key] === computation {
                running[key] = nil
                if case let .success(response) = result { store(key, items: computation.items, response: response) }
            }
            // The cancel closure holds the job, whose completion holds this computation: let go of it.
            defer { computation.waiters = [:]; computation.cancel = nil }
            return Array(computation.waiters.values)
        }
        for waiter in waiters {
            guard waiter.isRepeat, case var .success(response) = result else {
                waiter.delivery(result)
                continue
            }
            response.replayed = true
            waiter.delivery(.success(response))
        }
    }

    private func store(_ key: String, items: [ScoringRequest], response: ScoreResponse) {
        answers[key] = (items, response)
        answerOrder.append(key)
        while answerOrder.count > capacity { answers[answerOrder.removeFirst()] = nil }
    }
}
