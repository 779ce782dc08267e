import Daemon
import XCTest

/// Batch formation: round-robin between clients, token budget, one model pair per batch, order kept
/// within a client, cancellation.
final class FairQueueTests: XCTestCase {
    /// Groups stand for model pairs (reload revisions).
    final class Group {}
    static let first = Group(), second = Group()

    struct Item: Schedulable, Equatable {
        let client: String
        let number: Int
        let tokens: Int
        var revision = 1

        var group: ObjectIdentifier { ObjectIdentifier(revision == 1 ? FairQueueTests.first : FairQueueTests.second) }
    }

    func testClientsTakeTurnsAndEachKeepsItsOrder() {
        var queue = FairQueue<Item>()
        for n in 0..<6 { queue.append(Item(client: "a", number: n, tokens: 10)) }
        for n in 0..<2 { queue.append(Item(client: "b", number: n, tokens: 10)) }
        queue.append(Item(client: "c", number: 0, tokens: 10))
        XCTAssertEqual(queue.count, 9)
        XCTAssertEqual(queue.tokens, 90)
        XCTAssertEqual(queue.clients, 3)

        let batch = queue.nextBatch(tokenBudget: 60)
        // Clients take turns in the order they started waiting: a, b, c, then round again.
        XCTAssertEqual(batch.map { "\($0.client)\($0.number)" }, ["a0", "b0", "c0", "a1", "b1", "a2"])
        XCTAssertEqual(queue.count, 3)
        XCTAssertEqual(queue.tokens, 30)
        XCTAssertEqual(queue.nextBatch(tokenBudget: 60).map(\.number), [3, 4, 5])
        XCTAssertTrue(queue.isEmpty)
        XCTAssertEqual(queue.nextBatch(tokenBudget: 60), [])
    }

    func testABusyClientCannotStarveANewOne() {
        var queue = FairQueue<Item>()
        for n in 0..<100 { queue.append(Item(client: "busy", number: n, tokens: 100)) }
        _ = queue.nextBatch(tokenBudget: 1000)
        queue.append(Item(client: "late", number: 0, tokens: 100))
        let batch = queue.nextBatch(tokenBudget: 1000)
        XCTAssertEqual(batch.count, 10)
        XCTAssertTrue(batch.contains { $0.client == "late" }, "the late client waited a whole batch")
        XCTAssertEqual(batch.filter { $0.client == "busy" }.map(\.number), Array(10..<19))
    }

    /// Clients that each send one request at a time and send the next as soon as they are answered
    /// (PPO trainers) are served in turn even when a batch holds one item: a client just served does
    /// not overtake those waiting.
    func testAClientJustServedDoesNotOvertakeThoseWaiting() {
        var queue = FairQueue<Item>()
        for client in ["a", "b", "c", "d"] { queue.append(Item(client: client, number: 0, tokens: 100)) }
        var served: [String] = []
        var sent = ["a": 0, "b": 0, "c": 0, "d": 0]
        for _ in 0..<12 {
            let batch = queue.nextBatch(tokenBudget: 100)
            XCTAssertEqual(batch.count, 1)
            let client = batch[0].client
            served.append(client)
            sent[client]! += 1
            queue.append(Item(client: client, number: sent[client]!, tokens: 100))   // the next request at once
        }
        XCTAssertEqual(served, ["a", "b", "c", "d", "a", "b", "c", "d", "a", "b", "c", "d"])
    }

    func testTokenBudgetAndOversizedItems() {
        var queue = FairQueue<Item>()
        queue.append(Item(client: "a", number: 0, tokens: 700))
        queue.append(Item(client: "b", number: 0, tokens: 500))
        queue.append(Item(client: "a", number: 1, tokens: 5000))
        queue.append(Item(client: "b", number: 1, tokens: 200))
        // a0 (700) first, as a started waiting first; b0 does not fit beside it (1200 > 1000), nor a1.
        let first = queue.nextBatch(tokenBudget: 1000)
        XCTAssertEqual(first.map { "\($0.client)\($0.number)" }, ["a0"])
        XCTAssertEqual(queue.nextBatch(tokenBudget: 1000).map { "\($0.client)\($0.number)" }, ["b0", "b1"])
        XCTAssertEqual(queue.nextBatch(tokenBudget: 1000).map { "\($0.client)\($0.number)" }, ["a1"])
        XCTAssertTrue(queue.isEmpty)
    }

    func testABatchHoldsOneModelPair() {
        var queue = FairQueue<Item>()
        queue.append(Item(client: "a", number: 0, tokens: 10, revision: 1))
        queue.append(Item(client: "b", number: 0, tokens: 10, revision: 2))
        queue.append(Item(client: "a", number: 1, tokens: 10, revision: 1))
        queue.append(Item(client: "b", number: 1, tokens: 10, revision: 2))
        let first = queue.nextBatch(tokenBudget: 1000)
        let second = queue.nextBatch(tokenBudget: 1000)
        XCTAssertEqual(Set(first.map(\.revision)).count, 1)
        XCTAssertEqual(Set(second.map(\.revision)).count, 1)
        XCTAssertEqual(first.count + second.count, 4)
        XCTAssertNotEqual(first[0].revision, second[0].revision)
    }

    func testRemoveDropsItemsAndClients() {
        var queue = FairQueue<Item>()
        for n in 0..<3 { queue.append(Item(client: "a", number: n, tokens: 10)) }
        for n in 0..<3 { queue.append(Item(client: "b", number: n, tokens: 7)) }
        let removed = queue.remove { $0.client == "b" }
        XCTAssertEqual(removed.count, 3)
        XCTAssertEqual(queue.count, 3)
        XCTAssertEqual(queue.tokens, 30)
        XCTAssertEqual(queue.clients, 1)
        XCTAssertEqual(queue.nextBatch(tokenBudget: 100).map(\.client), ["a", "a", "a"])
    }
}
