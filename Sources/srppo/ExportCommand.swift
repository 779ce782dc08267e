import ArgumentParser
import Foundation
import Transformer

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Convert a model to a Hugging Face folder (safetensors) or a GGUF file.",
        discussion: """
        The output format follows --out: a path ending in .gguf writes GGUF for llama.cpp (tokenizer
        metadata copied from a GGUF source), anything else a Hugging Face folder (config.json +
        model.safetensors) that transformers loads.

        Examples:
          srppo export --model SmolLM2-135M-Instruct.Q4_1.gguf --out smollm2-hf
          srppo export --model runs/sft/checkpoint --out sft.gguf --dtype f16
        """
    )

    @Option(help: "Model: a GGUF file, a safetensors file or a Hugging Face model folder.")
    var model: String

    @Option(help: "Output: a folder, or a file ending in .gguf.")
    var out: String

    @Option(help: "Storage type of the weight matrices: f32, f16 or bf16.")
    var dtype: ModelExport.MatrixType = .f32

    func run() throws {
        try CLI.orExit {
            try ModelExport.save(try ModelLoader.load(path: model), to: out, matrices: dtype)
        }
    }
}

extension ModelExport.MatrixType: ExpressibleByArgument {}
