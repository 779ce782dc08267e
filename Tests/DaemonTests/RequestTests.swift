import Daemon
import Foundation
import Transformer
import WireProtocol
import XCTest

/// Request checking (every malformed body gets its typed error, naming the field) and the idempotency
/// ledger (replay, join, conflict, cancel when the last waiter leaves).
final class RequestTests: XCTestCase {
    let validator = RequestValidator(
        limits: Limits(maxBodyBytes: 1 << 20, maxItems: 4, maxRequestTokens: 40, maxSequenceTokens: 16, maxJSONDepth: 5,
                       batchTokens: 64, maxQueueTokens: 1000, defaultDeadlineMs: 1000, maxDeadlineMs: 5000,
                       maxRewardBodyBytes: 1 << 20, maxRewardQueries: 100, maxRewardTokens: 400),
        vocabSize: 50, eosTokenIDs: [2])

    private func code(_ body: String) -> (ErrorCode?, String?) {
        do {
            _ = try validator.validateScore(Data(body.utf8))
            return (nil, nil)
        } catch let error as ErrorResponse {
            return (error.error.code, error.error.field)
        } catch {
            return (.internal, "\(error)")
        }
    }

    func testMalformedBodiesGetTypedErrorsNamingTheField() {
        let cases: [(String, ErrorCode, String?)] = [
            ("", .badJSON, nil),
            ("{", .badJSON, nil),
            ("{\"items\": [}", .badJSON, nil),
            ("nonsense", .badJSON, nil),
            ("[]", .badRequest, nil),
            ("{}", .badRequest, "items"),
            ("{\"items\": 3}", .badRequest, "items"),
            ("{\"items\": [{\"prompt_ids\": \"1 2\", \"response_ids\": []}]}", .badRequest, "items.0.prompt_ids"),
            ("{\"items\": [{\"prompt_ids\": [1.5], \"response_ids\": []}]}", .badRequest, "items.0.prompt_ids"),
            ("{\"items\": [{\"prompt_ids\": [1e30], \"response_ids\": []}]}", .badRequest, "items.0.prompt_ids"),
            ("{\"items\": [{\"prompt_ids\": [null], \"response_ids\": []}]}", .badRequest, "items.0.prompt_ids.0"),
            ("{\"items\": [{\"response_ids\": [3]}]}", .badRequest, "items.0.prompt_ids"),
            ("{\"items\": [{\"prompt_ids\": [3]}]}", .badRequest, "items.0.response_ids"),
            ("{\"items\": []}", .noItems, "items"),
            ("{\"items\": [{\"prompt_ids\": [], \"response_ids\": [3]}]}", .emptyPrompt, "items.0.prompt_ids"),
            ("{\"items\": [{\"prompt_ids\": [1, -4], \"response_ids\": [3]}]}", .invalidToken, "items.0.prompt_ids.1"),
            ("{\"items\": [{\"prompt_ids\": [1], \"response_ids\": [3, 50]}]}", .invalidToken, "items.0.response_ids.1"),
            ("{\"items\": [{\"prompt_ids\": [1,1,1,1,1,1,1,1,1], \"response_ids\": [3,3,3,3,3,3,3,3]}]}", .tooLong, "items.0"),
            ("{\"items\": [{\"prompt\": \"hello\", \"response\": \"hi\"}]}", .textUnsupported, "items.0"),
            ("{\"items\": [{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"response\": \"x\"}]}", .textUnsupported, "items.0"),
            ("{\"items\": [{\"prompt_ids\": [1], \"response_ids\": []}, {\"prompt_ids\": [1], \"response_ids\": []}, {\"prompt_ids\": [1], \"response_ids\": []}, {\"prompt_ids\": [1], \"response_ids\": []}, {\"prompt_ids\": [1], \"response_ids\": []}]}", .tooManyItems, "items"),
            ("{\"items\": [{\"prompt_ids\": [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1], \"response_ids\": []}, {\"prompt_ids\": [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1], \"response_ids\": []}, {\"prompt_ids\": [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1], \"response_ids\": []}]}", .tooManyTokens, "items.2"),
            ("{\"id\": \"has space\", \"items\": [{\"prompt_ids\": [1], \"response_ids\": []}]}", .badRequest, "id"),
            ("{\"id\": \"\", \"items\": [{\"prompt_ids\": [1], \"response_ids\": []}]}", .badRequest, "id"),
            ("{\"client\": 7, \"items\": [{\"prompt_ids\": [1], \"response_ids\": []}]}", .badRequest, "client"),
            ("{\"deadline_ms\": 0, \"items\": [{\"prompt_ids\": [1], \"response_ids\": []}]}", .badRequest, "deadline_ms"),
            ("{\"deadline_ms\": 99999, \"items\": [{\"prompt_ids\": [1], \"response_ids\": []}]}", .badRequest, "deadline_ms"),
            ("{\"items\": [[[[[[1]]]]]]}", .tooDeep, nil),
            (String(repeating: "[", count: 100_000), .tooDeep, nil),
        ]
        for (body, expected, field) in cases {
            let (got, gotField) = code(body)
            XCTAssertEqual(got, expected, "body \(body.prefix(80))")
            XCTAssertEqual(gotField, field, "body \(body.prefix(80))")
        }
    }

    func testAValidRequestBecomesEngineRequests() throws {
        let body = #"{"id":"a-1","client":"ppo:seed=3","deadline_ms":2000,"items":[{"prompt_ids":[1,4],"response_ids":[5,2]},{"prompt_ids":[7],"response_ids":[]},{"prompt_ids":[7],"response_ids":[8]}],"future_field":{"x":1}}"#
        let request = try validator.validateScore(Data(body.utf8))
        XCTAssertEqual(request.id, "a-1")
        XCTAssertEqual(request.client, "ppo:seed=3")
        XCTAssertEqual(request.deadlineMs, 2000)
        XCTAssertEqual(request.items, [ScoringRequest(prompt: [1, 4], response: [5, 2]), ScoringRequest(prompt: [7], response: []),
                                       ScoringRequest(prompt: [7], response: [8])])
        XCTAssertEqual(request.truncated, [false, true, true])
        XCTAssertEqual(request.tokens, 7)
    }

    func testNestingIgnoresBracketsInsideStrings() {
        XCTAssertNil(RequestValidator.nestingBeyond(2, in: Data(#"{"a":"[[[[{{{{\"]]"}"#.utf8)))
        XCTAssertEqual(RequestValidator.nestingBeyond(2, in: Data(#"{"a":[{"b":1}]}"#.utf8)), 3)
    }

    // MARK: Ledger

    final class Inbox: @unchecked Sendable {
        private let lock = NSLock()
        private var received: [Result<ScoreResponse, ErrorResponse>] = []
        func put(_ result: Result<ScoreResponse, ErrorResponse>) { lock.withLock { received.append(result) } }
        var all: [Result<ScoreResponse, ErrorResponse>] { lock.withLock { received } }
    }

    private let items = [ScoringRequest(prompt: [1], response: [2])]
    private func answer(id: String) -> ScoreResponse {
        let identity = ModelIdentity(image: "x", sha256: "00", revision: 1)
        return ScoreResponse(id: id, client: "c", models: ModelPairIdentity(pt: identity, sft: identity),
                             results: [ScoreResult(ptLogprobs: [-1], sftLogprobs: [-2], truncated: false)], queueMs: 0, totalMs: 1)
    }

    func testLedgerJoinsRepeatsThenReplaysAndRefusesOtherItems() {
        let ledger = RequestLedger(capacity: 10)
        let key = RequestLedger.key(client: "c", id: "r")
        let first = Inbox(), second = Inbox()
        guard case let (.compute(computation), _) = ledger.admit(key: key, items: items, delivery: { first.put($0) }) else { return XCTFail() }
        guard case (.joined, _) = ledger.admit(key: key, items: items, delivery: { second.put($0) }) else { return XCTFail() }
        guard case (.conflict, _) = ledger.admit(key: key, items: [ScoringRequest(prompt: [1], response: [3])], delivery: { _ in }) else {
            return XCTFail()
        }
        ledger.finish(computation, .success(answer(id: "r")))
        XCTAssertEqual(try first.all.map { try $0.get().replayed }, [false])
        XCTAssertEqual(try second.all.map { try $0.get().replayed }, [true])
        guard case let (.replay(stored), _) = ledger.admit(key: key, items: items, delivery: { _ in }) else { return XCTFail() }
        XCTAssertTrue(stored.replayed)
        XCTAssertEqual(stored.results, answer(id: "r").results)
    }

    func testLedgerCancelsOnlyWhenTheLastWaiterLeavesAndForgetsFailures() {
        let ledger = RequestLedger(capacity: 10)
        let key = RequestLedger.key(client: "c", id: "r")
        guard case let (.compute(computation), firstWaiter) = ledger.admit(key: key, items: items, delivery: { _ in }),
              case let (.joined, secondWaiter) = ledger.admit(key: key, items: items, delivery: { _ in }) else { return XCTFail() }
        let cancelled = Inbox()
        ledger.setCancel(computation) { cancelled.put(.failure(ErrorResponse(.internal, "cancelled"))) }
        ledger.leave(computation, waiter: firstWaiter)
        XCTAssertTrue(cancelled.all.isEmpty, "someone still waits")
        ledger.leave(computation, waiter: secondWaiter)
        XCTAssertEqual(cancelled.all.count, 1)
        // A cancelled or failed computation is not stored: the next request computes.
        guard case (.compute, _) = ledger.admit(key: key, items: items, delivery: { _ in }) else { return XCTFail() }
    }

    func testLedgerKeepsAtMostCapacityAnswers() {
        let ledger = RequestLedger(capacity: 2)
        for id in ["a", "b", "c"] {
            guard case let (.compute(computation), _) = ledger.admit(key: id, items: items, delivery: { _ in }) else { return XCTFail() }
            ledger.finish(computation, .success(answer(id: id)))
        }
        guard case (.compute, _) = ledger.admit(key: "a", items: items, delivery: { _ in }) else { return XCTFail("oldest kept") }
        guard case (.replay, _) = ledger.admit(key: "c", items: items, delivery: { _ in }) else { return XCTFail("newest dropped") }
    }
}
