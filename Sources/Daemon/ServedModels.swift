import Foundation
import Transformer
import WeightImage
import WireProtocol

/// One frozen model as the daemon serves it: its sealed image (handed out on the image socket) and a
/// model running on a read-only shared mapping of that same image, so the daemon and every client
/// share one physical copy.
public final class ServedModel: @unchecked Sendable {
    public enum Origin: String, Sendable {
        /// Loaded from the checkpoint (or an image file) at start or reload.
        case file
        /// Re-mapped from the image systemd kept in its fd store for the previous run.
        case fdStore = "fd-store"
    }

    public let role: String
    public let image: WeightImage
    public let model: LlamaModel
    public let identity: ModelIdentity
    /// The path as configured, and a stamp of the file it named when loaded (to tell whether an image
    /// kept across a restart still matches it).
    public let source: SourceStamp
    public let origin: Origin
    private let mapping: MappedWeightImage

    public init(role: String, image: WeightImage, revision: Int, source: SourceStamp, origin: Origin) throws {
        self.role = role
        self.image = image
        mapping = try image.map(mode: .shared)
        model = mapping.makeModel()
        identity = ModelIdentity(image: image.name, sha256: image.manifest.sha256, revision: revision)
        self.source = source
        self.origin = origin
    }

    public var description: ModelDescription {
        ModelDescription(role: role, identity: identity, source: source.path, loadedFrom: origin.rawValue,
                         dataBytes: image.manifest.dataBytes, dtype: image.manifest.dtype.rawValue, backing: image.backing.summary,
                         config: image.manifest.config)
    }
}

/// The PT and SFT models one request is scored with. A reload makes a new pair; requests admitted
/// before it keep the pair they were admitted with, so no request mixes revisions.
public final class ModelPair: @unchecked Sendable {
    public let pt: ServedModel
    public let sft: ServedModel
    public let identity: ModelPairIdentity
    /// Token ids that end a response: the text codec's (EOS and the chat template's end-of-turn),
    /// else the SFT model's EOS ids. A response not ending with one was cut off.
    public let eosTokenIDs: Set<Int32>
    /// The tokenizer for text requests (nil: ids only).
    public let text: TextCodec?

    public init(pt: ServedModel, sft: ServedModel, text: TextCodec? = nil) throws {
        guard pt.model.config.vocabSize == sft.model.config.vocabSize else {
            throw DaemonError.configuration("PT and SFT have different vocabularies (\(pt.model.config.vocabSize) and \(sft.model.config.vocabSize) tokens): the coherent reward needs one tokenizer")
        }
        self.pt = pt
        self.sft = sft
        identity = ModelPairIdentity(pt: pt.identity, sft: sft.identity)
        eosTokenIDs = text?.stopIDs ?? Set(sft.model.config.eosTokenIds.map(Int32.init))
        self.text = text
    }

    /// Same bytes: one forward pass serves both, and every reward is exactly 0.
    public var sameWeights: Bool { pt.identity.sha256 == sft.identity.sha256 }

    public var vocabSize: Int { pt.model.config.vocabSize }
    public var maxPositions: Int { min(pt.model.config.maxPositions, sft.model.config.maxPositions) }

    /// Log-probs of each request's scored tokens under PT and SFT.
    func logProbs(_ requests: [ScoringRequest]) throws -> (pt: [[Float]], sft: [[Float]]) {
        try LlamaModel.pairLogProbs(pt: pt.model, sft: sft.model, sameWeights: sameWeights, requests)
    }
}

/// What a configured model path named when it was loaded: enough to tell, after a restart, whether the
/// image kept in the fd store is still that checkpoint (same resolved path, size and modification time;
/// for a folder, its regular files' total size and latest modification).
public struct SourceStamp: Codable, Equatable, Sendable {
    public var path: String
    public var resolved: String
    public var bytes: Int
    public var modifiedNanoseconds: Int

    enum CodingKeys: String, CodingKey {
        case path, resolved, bytes, modifiedNanoseconds = "modified_ns"
    }

    /// The stamp of `path` now; nil when it cannot be read.
    public static func of(_ path: String) -> SourceStamp? {
        let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        var info = stat()
        guard stat(resolved, &info) == 0 else { return nil }
        if info.st_mode & S_IFMT != S_IFDIR {
            return SourceStamp(path: path, resolved: resolved, bytes: Int(info.st_size), modifiedNanoseconds: nanoseconds(info.st_mtim))
        }
        var bytes = 0, newest = nanoseconds(info.st_mtim)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: resolved)) ?? [] {
            var entry = stat()
            guard stat(resolved + "/" + name, &entry) == 0, entry.st_mode & S_IFMT == S_IFREG else { continue }
            bytes += Int(entry.st_size)
            newest = max(newest, nanoseconds(entry.st_mtim))
        }
        return SourceStamp(path: path, resolved: resolved, bytes: bytes, modifiedNanoseconds: newest)
    }

    /// The same file contents as far as the stamp tells (the configured spelling of the path aside).
    public func sameCheckpoint(as other: SourceStamp) -> Bool {
        resolved == other.resolved && bytes == other.bytes && modifiedNanoseconds == other.modifiedNanoseconds
    }

    private static func nanoseconds(_ time: timespec) -> Int {
        time.tv_sec * 1_000_000_000 + time.tv_nsec
    }
}
