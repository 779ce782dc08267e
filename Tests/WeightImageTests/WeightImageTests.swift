import CLinux
import Foundation
import ModelFiles
import Transformer
import WeightImage
import TestSupport
import XCTest

func bitPatterns(_ values: [[Float]]) -> [[UInt32]] { values.map { $0.map(\.bitPattern) } }

/// Images in real memfds: determinism, seals, shared and copy-on-write mappings, manifest checks,
/// image files, huge page policy.
final class WeightImageTests: XCTestCase {
    func testSHA256MatchesPublishedTestVectors() {
        // FIPS 180-2 examples.
        XCTAssertEqual(Array("abc".utf8).withUnsafeBytes(SHA256.hex),
                       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8).withUnsafeBytes(SHA256.hex),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual([UInt8]().withUnsafeBytes(SHA256.hex), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    func testBuildingIsDeterministicAndHashesTheParameterBytes() throws {
        let model = tinyModel()
        let first = try WeightImage(name: "a", model: model, hugePages: .off)
        let second = try WeightImage(name: "b", model: tinyModel(), hugePages: .off)
        XCTAssertEqual(first.manifest.sha256, second.manifest.sha256)
        let expected = SHA256.hex(UnsafeRawBufferPointer(start: model.weights, count: model.layout.parameterCount * 4))
        XCTAssertEqual(first.manifest.sha256, expected)
        XCTAssertNotEqual(try WeightImage(name: "c", model: tinyModel(seed: 2), hugePages: .off).manifest.sha256, expected)

        XCTAssertEqual(first.manifest.dataBytes, model.layout.parameterCount * 4)
        XCTAssertEqual(first.manifest.tensors.map(\.name), model.layout.tensors.map(\.name))
        XCTAssertEqual(first.manifest.tensors.map(\.offset), model.layout.tensors.map { $0.offset * 4 })
        XCTAssertEqual(first.backing.kind, .normal)
        XCTAssertEqual(first.memoryBytes % Int(sysconf(Int32(_SC_PAGESIZE))), 0)
        // The manifest JSON is canonical: same image, same bytes.
        XCTAssertEqual(first.manifest.jsonData(), try WeightImage(name: "a", model: model, hugePages: .off).manifest.jsonData())
    }

    func testImageIsSealedAndRefusesWritableSharedMappings() throws {
        let image = try WeightImage(name: "tiny", model: tinyModel(), hugePages: .off)
        let seals = srppo_get_seals(image.fd)
        for seal in [srppo_f_seal_write, srppo_f_seal_shrink, srppo_f_seal_grow, srppo_f_seal_seal] {
            XCTAssertNotEqual(seals & seal, 0, "seal \(seal) missing")
        }
        XCTAssertEqual(mmapErrno(image.fd, bytes: image.memoryBytes, protection: PROT_READ | PROT_WRITE, flags: MAP_SHARED), EPERM)
        XCTAssertEqual(mmapErrno(image.fd, bytes: image.memoryBytes, protection: PROT_READ, flags: MAP_SHARED), 0)
        var byte: UInt8 = 1
        XCTAssertEqual(pwrite(image.fd, &byte, 1, 0), -1)
        XCTAssertEqual(errno, EPERM)
        XCTAssertEqual(ftruncate(image.fd, 0), -1)
        XCTAssertEqual(errno, EPERM)
        XCTAssertEqual(ftruncate(image.fd, off_t(image.memoryBytes * 2)), -1)
        XCTAssertEqual(errno, EPERM)
    }

    func testPrivateMappingIsCopyOnWriteAndLeavesTheImageUnchanged() throws {
        let model = tinyModel()
        let image = try WeightImage(name: "tiny", model: model, hugePages: .off)
        let original = try model.logProbs(tinyRequests)
        let actor = try image.map(mode: .private)
        for i in 0..<actor.floatCount { actor.floats[i] *= 0.5 }
        XCTAssertEqual(actor.floats[100], model.weights[100] * 0.5)
        XCTAssertNotEqual(try actor.makeModel().logProbs(tinyRequests), original)

        let frozen = try image.map(mode: .shared, verifyHash: true)
        XCTAssertEqual(memcmp(frozen.floats, model.weights, image.manifest.dataBytes), 0)
        XCTAssertEqual(try frozen.makeModel().logProbs(tinyRequests), original)
    }

    func testAttachedModelsScoreExactlyAsTheInProcessModel() throws {
        let model = tinyModel()
        let image = try WeightImage(name: "tiny", model: model, hugePages: .off)
        let expected = try model.logProbs(tinyRequests)
        for mode in AttachMode.allCases {
            for populate in [false, true] {
                let mapped = try image.map(mode: mode, populate: populate)
                XCTAssertEqual(try mapped.makeModel().logProbs(tinyRequests), expected, "\(mode), populate \(populate)")
            }
        }
    }

    func testSmolLM2AttachedImagesScoreBitForBitInF32AndBF16() throws {
        guard let path = smolLM2Path() else { throw XCTSkip("SmolLM2 model not downloaded (run scripts/setup.sh)") }
        let loaded = try ModelLoader.load(path: path)
        let requests = [ScoringRequest(tokens: [1, 9690, 28, 2641, 314, 253, 1345, 30, 2], firstScored: 3),
                        ScoringRequest(tokens: [1, 504, 3458, 282, 4649, 314], firstScored: 1)]
        let expected = try loaded.model.logProbs(requests)
        let image = try WeightImage(name: "smollm2", loaded: loaded, hugePages: .try)
        XCTAssertEqual(image.manifest.source, .init(format: "gguf", path: path))
        for mode in AttachMode.allCases {
            XCTAssertEqual(bitPatterns(try image.map(mode: mode).makeModel().logProbs(requests)), bitPatterns(expected), "\(mode)")
        }

        // bf16: half the bytes, and exactly what the loaded model computes in bf16.
        let bf16 = try WeightImage(name: "smollm2", loaded: loaded, dtype: .bf16, hugePages: .try)
        XCTAssertEqual(Double(bf16.manifest.dataBytes) / Double(image.manifest.dataBytes), 0.5, accuracy: 0.01)
        loaded.model.weightPrecision = .bf16
        XCTAssertEqual(bitPatterns(try bf16.map().makeModel().logProbs(requests)), bitPatterns(try loaded.model.logProbs(requests)))
    }

    // MARK: bf16 images

    func testBF16ImageIsDeterministicSmallerAndScoresBitForBitLikeInProcessBF16() throws {
        let model = tinyModel()
        let image = try WeightImage(name: "tiny", model: model, dtype: .bf16, hugePages: .off)
        XCTAssertEqual(try WeightImage(name: "other", model: tinyModel(), dtype: .bf16, hugePages: .off).manifest.sha256, image.manifest.sha256)
        XCTAssertEqual(image.manifest.sha256, WeightImage.contentHash(of: model, dtype: .bf16))
        let f32 = try WeightImage(name: "tiny", model: model, hugePages: .off)
        XCTAssertNotEqual(image.manifest.sha256, f32.manifest.sha256)
        XCTAssertEqual(image.manifest.dtype, .bf16)
        // Matrices packed to bf16, norms in fp32: on this tiny model the norms weigh more than on a real one.
        XCTAssertLessThan(Double(image.manifest.dataBytes), 0.6 * Double(f32.manifest.dataBytes))
        for entry in image.manifest.tensors {
            XCTAssertEqual(entry.encoding, entry.shape.count == 2 ? "bf16-panels" : "f32", entry.name)
            XCTAssertEqual(entry.offset % 64, 0, entry.name)
        }
        XCTAssertEqual(image.manifest.tensors.filter { $0.shape.count == 2 }.map(\.name).suffix(2),
                       ["model.embed_tokens.weight", "lm_head.weight"])

        let inProcess = tinyModel()
        inProcess.weightPrecision = .bf16
        let expected = try inProcess.logProbs(tinyRequests)
        let expectedShared = try inProcess.logProbs(tinyRequests, sharePrefixes: true)
        for mode in AttachMode.allCases {
            let attached = try image.map(mode: mode, verifyHash: true).makeModel()
            XCTAssertEqual(attached.weightPrecision, .bf16)
            XCTAssertFalse(attached.hasFP32Matrices)
            XCTAssertEqual(bitPatterns(try attached.logProbs(tinyRequests)), bitPatterns(expected), "\(mode)")
            XCTAssertEqual(bitPatterns(try attached.logProbs(tinyRequests, sharePrefixes: true)), bitPatterns(expectedShared), "\(mode)")
            let heads = try attached.headInputs(tinyRequests), inProcessHeads = try inProcess.headInputs(tinyRequests)
            XCTAssertEqual(memcmp(heads.pointer, inProcessHeads.pointer, heads.count * 4), 0)
        }
        // bf16 differs from fp32, as it should.
        XCTAssertNotEqual(bitPatterns(expected), bitPatterns(try model.logProbs(tinyRequests)))

        // Generation on the image runs in bf16: its tokens' raw log-probs are the image's own scores.
        let attached = try image.map().makeModel()
        let generated = try Generator(model: attached).generate([GenerationRequest(prompt: [1, 5], maxNewTokens: 6, seed: 4, endTokens: [])])[0]
        let scored = try attached.logProbs([ScoringRequest(prompt: [1, 5], response: generated.tokens)])[0]
        XCTAssertEqual(generated.rawLogProbs.count, 6)
        for (a, b) in zip(generated.rawLogProbs, scored) { XCTAssertEqual(a, b, accuracy: 1e-4) }
    }

    func testBF16ImageFilesRoundTripAndKeepTheirDType() throws {
        let directory = try temporaryFolder(self)
        let image = try WeightImage(name: "tiny", model: tinyModel(), dtype: .bf16, hugePages: .off)
        let path = directory + "/tiny-bf16.srppo-image"
        try WeightImageFile.write(image, to: path)
        let loaded = try WeightImage.load(name: "again", path: path, hugePages: .off)
        XCTAssertEqual(loaded.manifest.sha256, image.manifest.sha256)
        XCTAssertEqual(loaded.manifest.dtype, .bf16)
        XCTAssertEqual(bitPatterns(try loaded.map().makeModel().logProbs(tinyRequests)),
                       bitPatterns(try image.map().makeModel().logProbs(tinyRequests)))
        XCTAssertEqual(describe { _ = try WeightImage.load(name: "x", path: path, dtype: .f32, hugePages: .off) },
                       "\(path): not a usable weight image file: it holds bf16 weights, not f32; build a f32 image from the checkpoint instead")
    }

    // MARK: Refusals

    func testMapRefusesImagesThisEngineCannotRunOrTrust() throws {
        let image = try WeightImage(name: "tiny", model: tinyModel(), hugePages: .off)
        func mapError(_ edit: (inout WeightImageManifest) -> Void, fd: Int32? = nil, verify: Bool = false) -> WeightImageError? {
            var manifest = image.manifest
            edit(&manifest)
            do {
                _ = try MappedWeightImage.map(fd: fd ?? image.fd, manifest: manifest, mode: .shared, verifyHash: verify)
                return nil
            } catch {
                return error as? WeightImageError
            }
        }
        XCTAssertEqual(mapError { $0.layoutVersion = LlamaLayout.version + 1 },
                       .layoutVersionMismatch(image: "tiny", imageLayout: LlamaLayout.version + 1, engineLayout: LlamaLayout.version))
        XCTAssertEqual(mapError { $0.formatVersion = 2 }, .unsupportedFormatVersion(image: "tiny", found: 2, supported: 1))
        guard case .manifestMismatch(_, "data_bytes", _)? = mapError({ $0.dtype = .bf16 }) else {
            return XCTFail("an f32 image relabelled bf16 must be refused")
        }
        guard case .manifestMismatch(_, "tensors", _)? = mapError({ m in
            m.tensors[3] = .init(name: m.tensors[3].name, shape: m.tensors[3].shape, offset: m.tensors[3].offset + 64)
        }) else { return XCTFail("a moved tensor must be refused") }
        guard case .manifestMismatch(_, "data_bytes", _)? = mapError({ $0.dataBytes += 4 }) else {
            return XCTFail("a size that disagrees with the config must be refused")
        }
        var deeper = image.manifest.config
        deeper.numLayers += 10
        guard case .manifestMismatch(_, "data_bytes", _)? = mapError({ m in
            m = WeightImageManifest(name: m.name, config: deeper, sha256: m.sha256)
        }) else { return XCTFail("a manifest larger than the memory must be refused") }
        let wrongHash = String(repeating: "0", count: 64)
        XCTAssertEqual(mapError({ $0.sha256 = wrongHash }, verify: true),
                       .hashMismatch(image: "tiny", expected: wrongHash, actual: image.manifest.sha256))
        XCTAssertNil(mapError({ $0.sha256 = wrongHash }, verify: false), "without verification the hash is trusted")

        // The same bytes in a memfd that is not sealed.
        let unsealed = srppo_memfd_create("unsealed", srppo_mfd_cloexec | srppo_mfd_allow_sealing)
        defer { close(unsealed) }
        let mapped = try image.map()
        XCTAssertEqual(write(unsealed, mapped.floats, image.manifest.dataBytes), image.manifest.dataBytes)
        XCTAssertEqual(mapError({ _ in }, fd: unsealed),
                       .notSealed(image: "tiny", missing: ["F_SEAL_WRITE", "F_SEAL_SHRINK", "F_SEAL_GROW", "F_SEAL_SEAL"]))
    }

    func testManifestDecodingNamesTheBadField() throws {
        let image = try WeightImage(name: "tiny", model: tinyModel(), hugePages: .off)
        var json = try JSONSerialization.jsonObject(with: image.manifest.jsonData()) as! [String: Any]
        json["dtype"] = "f8"
        let error = describe { _ = try WeightImageManifest.decode(try JSONSerialization.data(withJSONObject: json), image: "tiny") }
        XCTAssertEqual(error, "weight image 'tiny': bad manifest: field \"dtype\": unknown element type 'f8' (known: f32, bf16)")
        json["dtype"] = "f32"
        json.removeValue(forKey: "sha256")
        XCTAssertEqual(describe { _ = try WeightImageManifest.decode(try JSONSerialization.data(withJSONObject: json), image: "tiny") },
                       "weight image 'tiny': bad manifest: missing field \"sha256\"")
        let decoded = try WeightImageManifest.decode(image.manifest.jsonData(), image: "tiny")
        XCTAssertEqual(decoded, image.manifest)
    }

    func testRequiringHugePagesFailsClearlyWhenThePoolIsShort() throws {
        let model = tinyModel()
        guard let pageSize = HugePages.defaultPageSize, let pool = HugePages.pool(pageSize: pageSize) else {
            throw XCTSkip("this kernel has no huge pages")
        }
        guard pool.available == 0 else {
            throw XCTSkip("the huge page pool has \(pool.available) free pages; this test needs an empty pool")
        }
        XCTAssertThrowsError(try WeightImage(name: "tiny", model: model, hugePages: .require)) { error in
            guard case let WeightImageError.noHugePages(bytes, size, available, reason) = error else {
                return XCTFail("expected noHugePages, got \(error)")
            }
            XCTAssertEqual(bytes, model.layout.parameterCount * 4)
            XCTAssertEqual(size, pageSize)
            XCTAssertEqual(available, 0)
            XCTAssertTrue(reason.contains("mmap"), reason)
        }
        let fallback = try WeightImage(name: "tiny", model: model, hugePages: .try)
        XCTAssertEqual(fallback.backing.kind, .normal)
        XCTAssertNotNil(fallback.backing.hugePageFallback)
        XCTAssertNil(try WeightImage(name: "tiny", model: model, hugePages: .off).backing.hugePageFallback)
    }

    func testHugePagePoolsAgreeWithProcMeminfo() throws {
        let meminfo = try String(contentsOfFile: "/proc/meminfo", encoding: .utf8)
        func field(_ name: String) -> Int? {
            meminfo.split(separator: "\n").first { $0.hasPrefix(name + ":") }
                .flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true)[1]) }
        }
        guard let pageKiB = field("Hugepagesize") else { throw XCTSkip("no huge pages in /proc/meminfo") }
        XCTAssertEqual(HugePages.defaultPageSize, pageKiB * 1024)
        let pool = try XCTUnwrap(HugePages.pool(pageSize: pageKiB * 1024))
        XCTAssertEqual(pool.total, field("HugePages_Total"))
        XCTAssertTrue(HugePages.pageSizes.contains(pageKiB * 1024))
    }

    // MARK: Image files

    func testImageFileRoundTripsAndDetectsCorruption() throws {
        let directory = try temporaryFolder(self)
        let model = tinyModel()
        let image = try WeightImage(name: "tiny", model: model, hugePages: .off)
        let path = directory + "/tiny.srppo-image"
        try WeightImageFile.write(image, to: path)
        XCTAssertTrue(WeightImageFile.isImageFile(path: path))

        let loaded = try WeightImageFile.load(path: path, name: "again", hugePages: .off)
        XCTAssertEqual(loaded.manifest.sha256, image.manifest.sha256)
        XCTAssertEqual(loaded.name, "again")
        XCTAssertEqual(try loaded.map().makeModel().logProbs(tinyRequests), try model.logProbs(tinyRequests))
        // The file's bytes are deterministic too.
        let second = directory + "/second.srppo-image"
        try WeightImageFile.write(try WeightImage(name: "tiny", model: tinyModel(), hugePages: .off), to: second)
        XCTAssertEqual(FileManager.default.contents(atPath: path), FileManager.default.contents(atPath: second))

        var bytes = try XCTUnwrap(FileManager.default.contents(atPath: path))
        bytes[bytes.count - 5] ^= 0x40
        try bytes.write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try WeightImageFile.load(path: path, hugePages: .off)) { error in
            guard case WeightImageError.hashMismatch(image: "tiny", expected: image.manifest.sha256, actual: _) = error else {
                return XCTFail("expected a hash mismatch, got \(error)")
            }
        }
        try bytes.prefix(bytes.count - 100).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(describe { _ = try WeightImageFile.load(path: path, hugePages: .off) }?.contains("the manifest needs"), true)
        try Data("GGUF and more".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertFalse(WeightImageFile.isImageFile(path: path))
        XCTAssertEqual(describe { _ = try WeightImageFile.load(path: path, hugePages: .off) },
                       "\(path): not a usable weight image file: shorter than its 32-byte header")
    }

    func testImageNamesAreCheckedAndDefaultToTheModelFilesName() throws {
        XCTAssertNil(WeightImage.nameProblem("SmolLM2-135M.Q4_1"))
        for bad in ["", "a/b", "name with space", String(repeating: "x", count: 129)] {
            XCTAssertEqual(WeightImage.nameProblem(bad), "image name '\(bad)' must be 1 to 128 letters, digits, '.', '_' or '-'")
        }
        XCTAssertEqual(WeightImage.defaultName(forModelAt: "models/SmolLM2.Q4_1.gguf"), "SmolLM2.Q4_1")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sft-model.d-\(getpid())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        XCTAssertEqual(WeightImage.defaultName(forModelAt: folder), "sft-model.d-\(getpid())")
    }
}
