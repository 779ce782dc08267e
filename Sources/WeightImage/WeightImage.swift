import CLinux
import Foundation
import ModelFiles
import SystemSupport
import Transformer
#if canImport(Glibc)
import Glibc
#endif

/// A model's frozen parameters in sealed shared memory: one memfd holding the flat fp32 parameter
/// buffer (`LlamaLayout` order) or, for a bf16 image, the packed bf16 matrices and fp32 norms
/// (`BF16ImageLayout`), starting at byte 0, described by a manifest and hashed. Nothing can change
/// the bytes once built; processes share them by receiving the descriptor (see `WeightImageServer`)
/// and mapping it (`MappedWeightImage`).
public final class WeightImage: @unchecked Sendable {
    public let manifest: WeightImageManifest
    public let backing: ImageBacking
    /// The sealed memfd, owned by this object and closed with it.
    public let fd: Int32
    /// Size of the memfd: the data rounded up to whole pages.
    public let memoryBytes: Int
    public let statistics: BuildStatistics

    public var name: String { manifest.name }

    /// Why `name` cannot name an image (nil: it can): 1 to 128 letters, digits, '.', '_' or '-', so
    /// that it is safe in paths, logs and the socket protocol.
    public static func nameProblem(_ name: String) -> String? {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        guard (1...128).contains(name.count), name.allSatisfy(allowed.contains) else {
            return "image name '\(name)' must be 1 to 128 letters, digits, '.', '_' or '-'"
        }
        return nil
    }

    /// The name an image of the model at `path` gets by default: "models/SmolLM2.Q4_1.gguf" →
    /// "SmolLM2.Q4_1"; a folder keeps its name.
    public static func defaultName(forModelAt path: String) -> String {
        let file = (path as NSString).lastPathComponent
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue { return file }
        return (file as NSString).deletingPathExtension
    }

    /// How long building took, for operators and `srppo bench attach`.
    public struct BuildStatistics: Sendable {
        /// Filling the memory (copy from a loaded model, or read from an image file).
        public let fillSeconds: Double
        public let hashSeconds: Double
        public var hashBytesPerSecond: Double { hashSeconds > 0 ? Double(hashedBytes) / hashSeconds : 0 }
        let hashedBytes: Int
    }

    init(manifest: WeightImageManifest, backing: ImageBacking, fd: Int32, memoryBytes: Int, statistics: BuildStatistics) {
        self.manifest = manifest
        self.backing = backing
        self.fd = fd
        self.memoryBytes = memoryBytes
        self.statistics = statistics
    }

    deinit { SystemCall.close(fd) }

    /// An image of a model's current parameters, in fp32 or packed to bf16 (half the memory; models
    /// on it score like the in-process model with `weightPrecision = .bf16`).
    public convenience init(name: String, model: LlamaModel, dtype: WeightDType = .f32, source: WeightImageManifest.Source? = nil,
                            tokenizer: WeightImageManifest.Tokenizer? = nil, hugePages: HugePagePolicy = .try) throws {
        precondition(model.hasFP32Matrices, "an image is built from a model with fp32 weights")
        let template = WeightImageManifest(name: name, config: model.config, dtype: dtype, sha256: "", source: source, tokenizer: tokenizer)
        try self.init(template: template, hugePages: hugePages, expectedSHA256: nil) { memory in
            Self.writeData(of: model, dtype: dtype, into: memory)
        }
    }

    /// Writes the data region of an image of `model` in `dtype` into `memory` (zeroed, the manifest's
    /// `dataBytes` long).
    static func writeData(of model: LlamaModel, dtype: WeightDType, into memory: UnsafeMutableRawBufferPointer) {
        switch dtype {
        case .f32: memory.copyMemory(from: UnsafeRawBufferPointer(start: model.weights, count: memory.count))
        case .bf16: BF16ImageLayout(config: model.config).write(model, into: memory.baseAddress!)
        }
    }

    /// An image of a model loaded by `ModelLoader`, recording where it and its tokenizer came from.
    public convenience init(name: String, loaded: LoadedModel, dtype: WeightDType = .f32, hugePages: HugePagePolicy = .try) throws {
        let source: WeightImageManifest.Source
        let tokenizer: WeightImageManifest.Tokenizer
        switch loaded.source {
        case let .gguf(file):
            source = .init(format: "gguf", path: file.path)
            tokenizer = .init(kind: "gguf-metadata", path: file.path)
        case let .huggingFace(folder):
            source = .init(format: "huggingface", path: folder)
            tokenizer = .init(kind: "tokenizer.json", path: (folder as NSString).appendingPathComponent("tokenizer.json"))
        }
        try self.init(name: name, model: loaded.model, dtype: dtype, source: source, tokenizer: tokenizer, hugePages: hugePages)
    }

    /// A checkpoint (GGUF, safetensors, Hugging Face folder) converted to an image of `dtype`, or an
    /// image file loaded as it is (`dtype`, when given, must be the file's).
    public static func load(name: String, path: String, dtype: WeightDType? = nil, hugePages: HugePagePolicy = .try) throws -> WeightImage {
        guard WeightImageFile.isImageFile(path: path) else {
            return try WeightImage(name: name, loaded: try ModelLoader.load(path: path), dtype: dtype ?? .f32, hugePages: hugePages)
        }
        let image = try WeightImageFile.load(path: path, name: name, hugePages: hugePages)
        if let dtype, dtype != image.manifest.dtype {
            throw WeightImageError.badImageFile(path: path, problem: "it holds \(image.manifest.dtype.rawValue) weights, not \(dtype.rawValue); build a \(dtype.rawValue) image from the checkpoint instead")
        }
        return image
    }

    /// Creates the memfd, lets `fill` write the data region, hashes it (and compares with
    /// `expectedSHA256` when given), then seals. `template` supplies everything but the hash.
    convenience init(template: WeightImageManifest, hugePages: HugePagePolicy, expectedSHA256: String?,
                     fill: (UnsafeMutableRawBufferPointer) throws -> Void) throws {
        let builder = try MemoryFileBuilder.create(name: "srppo-image-\(template.name)", dataBytes: template.dataBytes,
                                                   hugePages: hugePages)
        let data = UnsafeMutableRawBufferPointer(rebasing: builder.bytes[0..<template.dataBytes])
        let fillStart = DispatchTime.now()
        try fill(data)
        let hashStart = DispatchTime.now()
        let sha256 = SHA256.hex(UnsafeRawBufferPointer(data))
        let hashEnd = DispatchTime.now()
        if let expectedSHA256, expectedSHA256 != sha256 {
            throw WeightImageError.hashMismatch(image: template.name, expected: expectedSHA256, actual: sha256)
        }
        var manifest = template
        manifest.sha256 = sha256
        let statistics = BuildStatistics(fillSeconds: seconds(fillStart, hashStart), hashSeconds: seconds(hashStart, hashEnd),
                                         hashedBytes: template.dataBytes)
        self.init(manifest: manifest, backing: builder.backing, fd: try builder.seal(), memoryBytes: builder.size,
                  statistics: statistics)
    }

    /// The sha256 an image of `model` in `dtype` carries, computed without building one (to check that
    /// a daemon serves the checkpoint a trainer holds).
    public static func contentHash(of model: LlamaModel, dtype: WeightDType = .f32) -> String {
        let bytes = WeightImageManifest(name: "", config: model.config, dtype: dtype, sha256: "").dataBytes
        // fp32: the parameters are the data region as they are.
        if dtype == .f32 { return SHA256.hex(UnsafeRawBufferPointer(start: model.weights, count: bytes)) }
        let region = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes, alignment: 64)
        defer { region.deallocate() }
        region.initializeMemory(as: UInt8.self, repeating: 0)
        writeData(of: model, dtype: dtype, into: region)
        return SHA256.hex(UnsafeRawBufferPointer(region))
    }

    /// Maps this image into the current process (see `MappedWeightImage.map`).
    public func map(mode: AttachMode = .shared, verifyHash: Bool = false, populate: Bool = false) throws -> MappedWeightImage {
        try MappedWeightImage.map(fd: fd, manifest: manifest, mode: mode, verifyHash: verifyHash, populate: populate)
    }
}

/// How a process maps an image.
public enum AttachMode: String, Codable, CaseIterable, Sendable {
    /// Read-only MAP_SHARED: every process uses the one physical copy. For frozen models (reference and
    /// reward scoring). Writing through the mapping faults.
    case shared
    /// Writable MAP_PRIVATE: copy-on-write. Pages this process writes become its own; the image and
    /// every other process are unaffected. A PPO actor or critic starting from SFT weights.
    case `private`
}

/// An image mapped into this process. For an f32 image it is the `ParameterStorage` of the models
/// made on it, so `LlamaModel` runs on it as on any buffer.
public final class MappedWeightImage: ParameterStorage, @unchecked Sendable {
    public let manifest: WeightImageManifest
    public let mode: AttachMode
    /// The data region (`manifest.dataBytes`), as fp32 values.
    public let floats: UnsafeMutablePointer<Float>
    public let floatCount: Int
    /// The data region, as bytes.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: manifest.dataBytes) }
    private let base: UnsafeMutableRawPointer
    private let mappedBytes: Int

    private init(manifest: WeightImageManifest, mode: AttachMode, base: UnsafeMutableRawPointer, mappedBytes: Int) {
        self.manifest = manifest
        self.mode = mode
        self.base = base
        self.mappedBytes = mappedBytes
        floatCount = manifest.dataBytes / MemoryLayout<Float>.size
        floats = base.bindMemory(to: Float.self, capacity: floatCount)
    }

    deinit { munmap(base, mappedBytes) }

    /// A model over this mapping: on the fp32 parameters, or on the packed bf16 matrices (a frozen
    /// scorer in bf16; see `LlamaModel.init(config:bf16Region:owner:)`).
    public func makeModel() -> LlamaModel {
        switch manifest.dtype {
        case .f32: return LlamaModel(config: manifest.config, storage: self)
        case .bf16: return LlamaModel(config: manifest.config, bf16Region: UnsafeRawPointer(base), owner: self)
        }
    }

    /// Maps an image memfd after checking the manifest against this engine and the memory against the
    /// manifest (size, seals). The descriptor is not kept: the mapping holds the memory on its own.
    ///
    /// - verifyHash: re-hash the data (about 0.3 s per 500 MB). Not needed for trust between processes,
    ///   since the seals guarantee nobody changed the bytes after the builder hashed them.
    /// - populate: fault every page in now (MADV_POPULATE_READ; never breaks copy-on-write) instead of
    ///   on first use.
    public static func map(fd: Int32, manifest: WeightImageManifest, mode: AttachMode, verifyHash: Bool = false,
                           populate: Bool = false) throws -> MappedWeightImage {
        try manifest.validateForEngine()
        var info = stat()
        try SystemCall.retrying("fstat") { fstat(fd, &info) }
        let size = Int(info.st_size)
        guard size >= manifest.dataBytes else {
            throw WeightImageError.manifestMismatch(image: manifest.name, field: "data_bytes",
                                                    problem: "\(manifest.dataBytes), but the memory holds only \(size) bytes")
        }
        let missing = try Seals.missing(on: fd)
        guard missing.isEmpty else { throw WeightImageError.notSealed(image: manifest.name, missing: missing) }

        let protection = mode == .shared ? PROT_READ : PROT_READ | PROT_WRITE
        let flags = mode == .shared ? MAP_SHARED : MAP_PRIVATE
        guard let base = mmap(nil, size, protection, flags, fd, 0), base != MAP_FAILED else {
            let error = SystemCallError(call: "mmap(\(mode == .shared ? "PROT_READ, MAP_SHARED" : "PROT_READ|PROT_WRITE, MAP_PRIVATE"))", errno: errno)
            guard error.errno == ENOMEM else { throw error }
            // hugetlbfs reports its page size as the block size.
            let pageSize = Int(info.st_blksize)
            if mode == .private, pageSize > Int(sysconf(Int32(_SC_PAGESIZE))) {
                throw WeightImageError.copyOnWriteNeedsHugePages(image: manifest.name, pages: size / pageSize, pageSize: pageSize,
                                                                 available: HugePages.pool(pageSize: pageSize)?.available)
            }
            throw WeightImageError.outOfMemory(bytes: size, backing: "address space", reason: "\(error)")
        }
        let mapped = MappedWeightImage(manifest: manifest, mode: mode, base: base, mappedBytes: size)
        if populate {
            try SystemCall.retrying("madvise(MADV_POPULATE_READ)") { madvise(base, size, srppo_madv_populate_read) }
        }
        if verifyHash {
            let actual = SHA256.hex(mapped.bytes)
            guard actual == manifest.sha256 else {
                throw WeightImageError.hashMismatch(image: manifest.name, expected: manifest.sha256, actual: actual)
            }
        }
        return mapped
    }
}

func seconds(_ start: DispatchTime, _ end: DispatchTime) -> Double {
    Double(end.uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
}
