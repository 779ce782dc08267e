import Foundation
import ModelFiles
import Compute
import TestSupport
import Transformer
import XCTest

/// Both checkpoint formats, written by the project: a model saved and reloaded scores identically,
/// and every malformed variant fails with a message naming the file and tensor.
final class CheckpointFormatTests: XCTestCase {
    var directory: String!

    override func setUpWithError() throws { directory = try temporaryFolder(self) }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    private func scores(_ model: LlamaModel) throws -> [Float] {
        let tokens = TinyModels.randomTokens(30, vocab: model.config.vocabSize, seed: 5)
        return try model.logProbs([ScoringRequest(tokens: tokens, firstScored: 1)])[0]
    }

    func testHuggingFaceAndGGUFRoundTrips() throws {
        for config in [TinyModels.config(), TinyModels.config(.qwen2, tied: false)] {
            let model = TinyModels.model(config, seed: 11)
            let expected = try scores(model)

            let folder = directory + "/hf-\(config.architecture)"
            try HuggingFaceExport.save(model, to: folder)
            let fromFolder = try ModelLoader.load(path: folder).model
            XCTAssertEqual(fromFolder.config, config)
            XCTAssertEqual(try scores(fromFolder), expected)
            XCTAssertEqual(try scores(ModelLoader.load(path: folder + "/model.safetensors").model), expected)

            let gguf = directory + "/m-\(config.architecture).gguf"
            try GGUFExport.save(model, to: gguf)
            let fromGGUF = try ModelLoader.load(path: gguf).model
            XCTAssertEqual(fromGGUF.config.numKVHeads, config.numKVHeads)
            XCTAssertEqual(try scores(fromGGUF), expected)
        }
    }

    func testGGUFStoresLlamaQKRowsInLlamaCppOrder() throws {
        let config = TinyModels.config()
        let model = TinyModels.model(config)
        let path = directory + "/order.gguf"
        try GGUFExport.save(model, to: path)
        let stored = try GGUFFile(path: path)
        let q = try stored.dequantize(stored.tensor(named: "blk.0.attn_q.weight")!)
        let e = config.headDim, d = config.hiddenSize
        let hf = model.layout.tensor(named: "model.layers.0.self_attn.q_proj.weight")!
        // GGUF row 2i + j of head 1 is HF row j·e/2 + i of head 1.
        for i in 0..<e / 2 {
            for j in 0..<2 {
                let ggufRow = e + 2 * i + j, hfRow = e + j * e / 2 + i
                XCTAssertEqual(q[ggufRow * d], model.weights[hf.offset + hfRow * d])
            }
        }
        // Norms are F32, matrices the requested type.
        try GGUFExport.save(model, to: path, type: .f16)
        let f16 = try GGUFFile(path: path)
        XCTAssertEqual(f16.tensor(named: "blk.0.attn_norm.weight")?.type, .f32)
        XCTAssertEqual(f16.tensor(named: "blk.0.ffn_up.weight")?.type, .f16)
    }

    func testHalfPrecisionExportsStayClose() throws {
        let model = TinyModels.model(TinyModels.config(), seed: 2)
        let expected = try scores(model)
        for dtype in [SafetensorsDType.f16, .bf16] {
            let folder = directory + "/\(dtype.rawValue)"
            try HuggingFaceExport.save(model, to: folder, dtype: dtype)
            let got = try scores(ModelLoader.load(path: folder).model)
            let worst = zip(got, expected).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(worst, dtype == .f16 ? 0.01 : 0.1)
            XCTAssertGreaterThan(worst, 0)
        }
    }

    // MARK: Malformed checkpoints

    private func writeSafetensors(_ model: LlamaModel, folder: String, edit: (inout [(String, [Int], [Float])]) -> Void) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var tensors = model.layout.tensors.map { t in (t.name, t.shape, Array(UnsafeBufferPointer(start: model.weights + t.offset, count: t.count))) }
        edit(&tensors)
        let entries = tensors.map { SafetensorsWriter.Tensor(name: $0.0, shape: $0.1, buffer: AlignedBuffer(copying: $0.2)) }
        try SafetensorsWriter.write(entries, to: folder + "/model.safetensors")
        try model.config.huggingFaceJSON().write(to: URL(fileURLWithPath: folder + "/config.json"))
    }

    private func loadError(_ path: String) -> String {
        do { _ = try ModelLoader.load(path: path); return "no error" } catch { return "\(error)" }
    }

    func testSafetensorsMissingUnexpectedAndMisshapedTensors() throws {
        let model = TinyModels.model(TinyModels.config())
        let st = "/model.safetensors"
        try writeSafetensors(model, folder: directory + "/missing") { $0.removeAll { $0.0 == "model.layers.1.mlp.up_proj.weight" } }
        XCTAssertEqual(loadError(directory + "/missing"), "\(directory!)/missing\(st): missing tensor 'model.layers.1.mlp.up_proj.weight'")

        try writeSafetensors(model, folder: directory + "/extra") { $0.append(("model.layers.0.mlp.extra.weight", [2], [1, 2])) }
        XCTAssertEqual(loadError(directory + "/extra"),
                       "\(directory!)/extra\(st): unexpected tensor 'model.layers.0.mlp.extra.weight' (not part of this architecture)")

        try writeSafetensors(model, folder: directory + "/shape") { t in
            let i = t.firstIndex { $0.0 == "model.norm.weight" }!
            t[i] = (t[i].0, [31], Array(t[i].2.prefix(31)))
        }
        XCTAssertEqual(loadError(directory + "/shape"), "\(directory!)/shape\(st): tensor 'model.norm.weight' has shape [31], expected [32]")
    }

    func testGGUFMissingAndUnexpectedTensors() throws {
        let model = TinyModels.model(TinyModels.config())
        let good = directory + "/good.gguf"
        try GGUFExport.save(model, to: good)
        let file = try GGUFFile(path: good)

        func rewrite(_ path: String, _ edit: (inout [(String, [Int], [Float])]) -> Void) throws {
            var tensors = try file.tensors.map { ($0.name, $0.shape, try file.dequantize($0)) }
            edit(&tensors)
            var writer = GGUFWriter()
            writer.metadata = file.metadataKeys.map { ($0, file.metadata[$0]!) }
            writer.tensors = tensors.map { .init(name: $0.0, shape: $0.1, type: .f32, buffer: AlignedBuffer(copying: $0.2)) }
            try writer.write(to: path)
        }
        try rewrite(directory + "/missing.gguf") { $0.removeAll { $0.0 == "blk.1.attn_v.weight" } }
        XCTAssertEqual(loadError(directory + "/missing.gguf"),
                       "\(directory!)/missing.gguf: missing tensor 'blk.1.attn_v.weight (model.layers.1.self_attn.v_proj.weight)'")
        try rewrite(directory + "/extra.gguf") { $0.append(("blk.0.surprise", [4], [1, 2, 3, 4])) }
        XCTAssertEqual(loadError(directory + "/extra.gguf"),
                       "\(directory!)/extra.gguf: unexpected tensor 'blk.0.surprise' (not part of this architecture)")
        try rewrite(directory + "/shape.gguf") { t in
            let i = t.firstIndex { $0.0 == "output_norm.weight" }!
            t[i] = (t[i].0, [2, 16], t[i].2)
        }
        XCTAssertEqual(loadError(directory + "/shape.gguf"),
                       "\(directory!)/shape.gguf: tensor 'output_norm.weight' has shape [2, 16], expected [32]")
    }

    func testConfigErrorsNameTheKey() throws {
        let folder = directory + "/cfg"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let cases: [(String, String)] = [
            (#"{"architectures":["GPT2LMHeadModel"]}"#, "metadata 'architectures': unsupported model GPT2LMHeadModel; supported: LlamaForCausalLM, Qwen2ForCausalLM"),
            (#"{"architectures":["LlamaForCausalLM"],"vocab_size":10}"#, "metadata 'hidden_size': missing"),
            (#"{"architectures":["LlamaForCausalLM"],"vocab_size":10,"hidden_size":"big","intermediate_size":4,"num_hidden_layers":1,"num_attention_heads":2}"#,
             "metadata 'hidden_size': expected an integer"),
            (#"{"architectures":["LlamaForCausalLM"],"vocab_size":10,"hidden_size":8,"intermediate_size":4,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":3}"#,
             "metadata 'num_key_value_heads': 3 does not divide num_attention_heads 2"),
            (#"{"architectures":["LlamaForCausalLM"],"vocab_size":10,"hidden_size":8,"intermediate_size":4,"num_hidden_layers":1,"num_attention_heads":2,"rope_scaling":{"rope_type":"yarn","factor":4}}"#,
             "metadata 'rope_scaling': unsupported type 'yarn' (supported: linear, llama3)"),
        ]
        for (json, message) in cases {
            try Data(json.utf8).write(to: URL(fileURLWithPath: folder + "/config.json"))
            XCTAssertEqual(loadError(folder), "\(folder)/config.json: \(message)")
        }
        try FileManager.default.removeItem(atPath: folder + "/config.json")
        XCTAssertEqual(loadError(folder), "\(folder)/config.json: cannot open: missing (a Hugging Face model needs config.json beside its weights)")
    }
}
