import Client
import Daemon
import Foundation
import Reward
import Transformer
import WeightImage
import WireProtocol
import TestSupport
import XCTest

/// srppod in this process on real Unix sockets, used through the Swift client: answers against the
/// engine scoring the same request alone in this process (bit for bit), identities, the same-image
/// case, idempotent ids, reload of a new SFT revision and the image socket.
final class DaemonServiceTests: XCTestCase {
    func testDaemonScorerEqualsEmbeddedScorerBitForBit() throws {
        let folder = try temporaryFolder(self)
        let pt = try TinyCheckpoint.write(seed: 1, to: folder + "/pt")
        let sft = try TinyCheckpoint.write(seed: 2, to: folder + "/sft")
        let running = try RunningDaemon(self, folder: folder, pt: pt, sft: sft)

        let embedded = try EmbeddedScorer(pt: try ModelLoader.load(path: pt).model, sft: try ModelLoader.load(path: sft).model)
        let daemon = try DaemonScorer(socketPath: running.socket, clientName: "test")
        XCTAssertEqual(daemon.models, embedded.models, "content hashes: the image's sha256 is the hash of the flat parameters")
        XCTAssertEqual(daemon.identity.sft.revision, 1)

        let requests = tinyRequests(count: 40, seed: 7).map { TokenPair(prompt: $0.prompt, response: $0.response) }
        let expected = try embedded.score(requests)
        let results = try daemon.scoreResults(requests)
        XCTAssertEqual(results.map { RewardScores(pt: $0.ptLogprobs, sft: $0.sftLogprobs) }, expected)
        for (request, result) in zip(requests, results) {
            XCTAssertEqual(result.truncated, request.response.last != 2)
            XCTAssertEqual(result.n, request.response.count)
            XCTAssertEqual(result.reward, CoherentReward().compute(sft: result.sftLogprobs, pt: result.ptLogprobs, endedWithEOS: true).sum)
        }
        XCTAssertTrue(results.contains { $0.reward != 0 }, "different models give non-zero rewards")
    }

    func testBF16DaemonServesHalfSizeImagesAndScoresLikeInProcessBF16() throws {
        let folder = try temporaryFolder(self)
        let pt = try TinyCheckpoint.write(seed: 1, to: folder + "/pt")
        let sft = try TinyCheckpoint.write(seed: 2, to: folder + "/sft")
        let running = try RunningDaemon(self, folder: folder, pt: pt, sft: sft) { $0.dtype = .bf16 }

        let ptModel = try ModelLoader.load(path: pt).model, sftModel = try ModelLoader.load(path: sft).model
        let daemon = try DaemonScorer(socketPath: running.socket, clientName: "bf16")
        XCTAssertEqual(daemon.sftDType, .bf16)
        XCTAssertEqual(daemon.models, FrozenModels(pt: WeightImage.contentHash(of: ptModel, dtype: .bf16),
                                                   sft: WeightImage.contentHash(of: sftModel, dtype: .bf16)))
        let described = try DaemonClient(socketPath: running.socket, clientName: "models").models().models
        XCTAssertEqual(described.map(\.dtype), ["bf16", "bf16"])
        XCTAssertEqual(described[0].dataBytes, BF16ImageLayout(config: ptModel.config).byteCount)

        ptModel.weightPrecision = .bf16
        sftModel.weightPrecision = .bf16
        let embedded = try EmbeddedScorer(pt: ptModel, sft: sftModel)
        let requests = tinyRequests(count: 20, seed: 5).map { TokenPair(prompt: $0.prompt, response: $0.response) }
        XCTAssertEqual(try daemon.score(requests), try embedded.score(requests))
    }

    func testConcurrentClientsEachGetWhatScoringAloneGives() throws {
        let folder = try temporaryFolder(self)
        let pt = try TinyCheckpoint.write(seed: 3, to: folder + "/pt")
        let sft = try TinyCheckpoint.write(seed: 4, to: folder + "/sft")
        let running = try RunningDaemon(self, folder: folder, pt: pt, sft: sft)
        let ptModel = try ModelLoader.load(path: pt).model, sftModel = try ModelLoader.load(path: sft).model

        let clients = 8, perClient = 12
        let requests = tinyRequests(count: clients * perClient, seed: 11)
        let answers = Answers(count: requests.count)
        let group = DispatchGroup()
        for c in 0..<clients {
            group.enter()
            Thread {
                defer { group.leave() }
                do {
                    let client = try DaemonClient(socketPath: running.socket, clientName: "client-\(c)")
                    for i in stride(from: c, to: requests.count, by: clients) {
                        let item = ScoreItem(promptIDs: requests[i].prompt.map(Int.init), responseIDs: requests[i].response.map(Int.init))
                        answers.set(i, try client.score([item]).results[0])
                    }
                } catch {
                    answers.fail(error)
                }
            }.start()
        }
        group.wait()
        XCTAssertNil(answers.failure)
        for (i, request) in requests.enumerated() {
            let alone = [ScoringRequest(prompt: request.prompt, response: request.response)]
            XCTAssertEqual(answers.results[i]?.ptLogprobs, try ptModel.logProbs(alone)[0], "request \(i) under PT")
            XCTAssertEqual(answers.results[i]?.sftLogprobs, try sftModel.logProbs(alone)[0], "request \(i) under SFT")
        }
    }

    func testOneCheckpointAsBothModelsIsOneImageAndRewardsAreExactlyZero() throws {
        let folder = try temporaryFolder(self)
        let model = try TinyCheckpoint.write(seed: 5, to: folder + "/model")
        let running = try RunningDaemon(self, folder: folder, pt: model, sft: model)
        let scorer = try DaemonScorer(socketPath: running.socket, clientName: "same")
        XCTAssertEqual(scorer.identity.pt.sha256, scorer.identity.sft.sha256)
        XCTAssertEqual([scorer.identity.pt.image, scorer.identity.sft.image], ["pt", "sft"])
        let requests = tinyRequests(count: 20, seed: 13).map { TokenPair(prompt: $0.prompt, response: $0.response) }
        for result in try scorer.scoreResults(requests) {
            XCTAssertEqual(result.reward, 0)
            XCTAssertEqual(result.ptLogprobs, result.sftLogprobs)
        }
        // Both names on the image socket are the same memory.
        let ptImage = try WeightImageClient(socketPath: running.imageSocket).fetch(name: "pt")
        let sftImage = try WeightImageClient(socketPath: running.imageSocket).fetch(name: "sft")
        var ptStat = stat(), sftStat = stat()
        XCTAssertEqual(fstat(ptImage.fd, &ptStat), 0)
        XCTAssertEqual(fstat(sftImage.fd, &sftStat), 0)
        XCTAssertEqual(ptStat.st_ino, sftStat.st_ino)
    }

    func testRepeatedIDsAreAnsweredFromTheStoreAndReusedIDsRefused() throws {
        let folder = try temporaryFolder(self)
        let pt = try TinyCheckpoint.write(seed: 1, to: folder + "/pt")
        let sft = try TinyCheckpoint.write(seed: 2, to: folder + "/sft")
        let running = try RunningDaemon(self, folder: folder, pt: pt, sft: sft)
        let client = try DaemonClient(socketPath: running.socket, clientName: "retrier")
        let items = [ScoreItem(promptIDs: [1, 4, 5], responseIDs: [6, 7, 2])]

        let first = try client.score(items, id: "req-1")
        let again = try client.score(items, id: "req-1")
        XCTAssertFalse(first.replayed)
        XCTAssertTrue(again.replayed)
        XCTAssertEqual(again.results, first.results)
        XCTAssertEqual(try scoredTokens(client), 6, "the repeat was not computed again")

        // The same id from another client is another request.
        let other = try DaemonClient(socketPath: running.socket, clientName: "other")
        XCTAssertFalse(try other.score(items, id: "req-1").replayed)

        XCTAssertThrowsError(try client.score([ScoreItem(promptIDs: [1], responseIDs: [3])], id: "req-1")) { error in
            guard case let DaemonClientError.server(detail, status) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(detail.code, .idConflict)
            XCTAssertEqual(status, 409)
        }
    }

    /// srppod_tokens_scored_total from the daemon's metrics.
    private func scoredTokens(_ client: DaemonClient) throws -> Int {
        let line = try client.metrics().split(separator: "\n").first { $0.hasPrefix("srppod_tokens_scored_total ") }
        return Int(line?.split(separator: " ")[1] ?? "") ?? -1
    }

    func testReloadServesTheNewRevisionWhileOldMappingsKeepTheirBytes() throws {
        let folder = try temporaryFolder(self)
        let pt = try TinyCheckpoint.write(seed: 1, to: folder + "/pt")
        let revisionA = try TinyCheckpoint.write(seed: 2, to: folder + "/sft-a")
        let revisionB = try TinyCheckpoint.write(seed: 9, to: folder + "/sft-b")
        let link = folder + "/sft"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: revisionA)
        let running = try RunningDaemon(self, folder: folder, pt: pt, sft: link)

        let before = try DaemonScorer(socketPath: running.socket, clientName: "before")
        let oldMapping = try WeightImageClient.attach(socketPath: running.imageSocket, name: "sft")
        let request = [TokenPair(prompt: [1, 8, 9], response: [10, 11, 2])]
        let scoredA = try before.score(request)

        try FileManager.default.removeItem(atPath: link)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: revisionB)
        running.daemon.reload()

        let after = try DaemonScorer(socketPath: running.socket, clientName: "after")
        XCTAssertEqual(after.identity.sft.revision, 2)
        XCTAssertEqual(after.identity.pt, before.identity.pt)
        let modelB = try ModelLoader.load(path: revisionB).model
        XCTAssertEqual(after.models.sft, WeightImage.contentHash(of: modelB))
        XCTAssertEqual(try after.score(request)[0].sft, try modelB.logProbs([ScoringRequest(prompt: request[0].prompt, response: request[0].response)])[0])
        XCTAssertEqual(try after.score(request)[0].pt, scoredA[0].pt)

        // A run that started on revision 1 is told, rather than given rewards of another model.
        XCTAssertThrowsError(try before.score(request)) { error in
            guard case DaemonClientError.modelsChanged = error else { return XCTFail("\(error)") }
        }
        // The image socket hands out the new revision; the mapping taken before still holds revision 1.
        XCTAssertEqual(try WeightImageClient(socketPath: running.imageSocket).fetch(name: "sft").manifest.sha256, after.models.sft)
        XCTAssertEqual(SHA256.hex(UnsafeRawBufferPointer(start: oldMapping.floats, count: oldMapping.manifest.dataBytes)), before.models.sft)
        XCTAssertEqual(try oldMapping.makeModel().logProbs([ScoringRequest(prompt: request[0].prompt, response: request[0].response)])[0],
                       scoredA[0].sft)
    }

    func testAllowListRefusesOtherPeersButNotProbes() throws {
        let folder = try temporaryFolder(self)
        let pt = try TinyCheckpoint.write(seed: 1, to: folder + "/pt")
        // Only uid 4242 is allowed, and the daemon's own uid, which is this test's: allowed.
        let running = try RunningDaemon(self, folder: folder, pt: pt, sft: pt) { $0.allowedUIDs = [4242] }
        let client = try DaemonClient(socketPath: running.socket, clientName: "own-uid")
        XCTAssertEqual(try client.score([ScoreItem(promptIDs: [1], responseIDs: [2])]).results.count, 1)
        XCTAssertTrue(running.daemon.service.isAllowed(PeerCredentials(pid: 1, uid: 4242, gid: 7)))
        XCTAssertFalse(running.daemon.service.isAllowed(PeerCredentials(pid: 1, uid: 4343, gid: 7)))
        XCTAssertFalse(running.daemon.service.isAllowed(nil), "TCP peers have no credentials")
    }
}

/// Results gathered from several threads.
private final class Answers: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var results: [ScoreResult?]
    private(set) var failure: Error?

    init(count: Int) { results = Array(repeating: nil, count: count) }
    func set(_ index: Int, _ result: ScoreResult) { lock.withLock { results[index] = result } }
    func fail(_ error: Error) { lock.withLock { failure = error } }
}
