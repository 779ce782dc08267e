import NIOCore

/// Something the scheduler can put in a batch: which client it belongs to, how many tokens it costs,
/// and a group it can only share a forward pass with (the model pair it must be scored with).
package protocol Schedulable {
    var client: String { get }
    var tokens: Int { get }
    var group: ObjectIdentifier { get }
}

/// Waiting work of all clients: one FIFO per client, and batches formed round-robin across clients so
/// that a client with a long queue cannot starve one that just arrived (it waits at most one round,
/// one item of each waiting client), and a client that returns right after being served cannot
/// overtake those still waiting. Each client keeps its order.
package struct FairQueue<Item: Schedulable> {
    private var queues: [String: CircularBuffer<Item>] = [:]
    /// Clients with waiting items, in the order they take turns.
    private var ring: [String] = []
    /// The client whose turn is next.
    private var cursor = 0
    package private(set) var count = 0
    package private(set) var tokens = 0

    package init() {}

    package var isEmpty: Bool { count == 0 }
    package var clients: Int { ring.count }

    package mutating func append(_ item: Item) {
        if queues[item.client] == nil {
            queues[item.client] = CircularBuffer()
            // A client with nothing waiting (new, or just served: a trainer sends its next request
            // when the last is answered) joins at the end of the round, after every client already
            // waiting. Joining at the front would let one closed-loop client be served again and
            // again while others wait, whenever a batch holds fewer items than there are clients.
            ring.insert(item.client, at: cursor)
            if ring.count > 1 { cursor += 1 }
        }
        queues[item.client]!.append(item)
        count += 1
        tokens += item.tokens
    }

    /// Removes every waiting item matching `predicate` (a cancelled or expired request); returns them.
    @discardableResult
    package mutating func remove(where predicate: (Item) -> Bool) -> [Item] {
        var removed: [Item] = []
        for client in ring {
            guard var queue = queues[client], queue.contains(where: predicate) else { continue }
            removed += queue.filter(predicate)
            queue.removeAll(where: predicate)
            queues[client] = queue
        }
        for item in removed {
            count -= 1
            tokens -= item.tokens
        }
        dropEmptyClients()
        return removed
    }

    /// The next batch: clients take turns, one item per turn, while the items fit `tokenBudget` and
    /// belong to the group of the batch's first item. A client whose next item does not fit (or is of
    /// another group) sits the batch out, keeping its order. An item larger than the budget forms a
    /// batch of its own. Empty only when the queue is.
    package mutating func nextBatch(tokenBudget: Int) -> [Item] {
        var batch: [Item] = []
        var used = 0
        var group: ObjectIdentifier?
        var skippedInARow = 0
        while !ring.isEmpty, skippedInARow < ring.count, used < tokenBudget {
            cursor %= ring.count
            let client = ring[cursor]
            let head = queues[client]!.first!
            let fits = batch.isEmpty || (used + head.tokens <= tokenBudget && head.group == group)
            guard fits else {
                cursor += 1
                skippedInARow += 1
                continue
            }
            _ = queues[client]!.removeFirst()
            batch.append(head)
            used += head.tokens
            group = head.group
            count -= 1
            tokens -= head.tokens
            skippedInARow = 0
            if queues[client]!.isEmpty {
                queues[client] = nil
                ring.remove(at: cursor)
            } else {
                cursor += 1
            }
        }
        if !ring.isEmpty { cursor %= ring.count } else { cursor = 0 }
        return batch
    }

    private mutating func dropEmptyClients() {
        var index = 0
        while index < ring.count {
            let client = ring[index]
            if queues[client]!.isEmpty {
                queues[client] = nil
                ring.remove(at: index)
                if index < cursor { cursor -= 1 }
            } else {
                index += 1
            }
        }
        if ring.isEmpty { cursor = 0 } else { cursor %= ring.count }
    }
}
