import Foundation

/// The files `srppo data generate` writes, as bytes (sorted keys, one object per line), so that
/// the same seed and sizes give byte-identical files.
///
/// - demos.jsonl: IFEval fields + "response" (the reference): SFT demonstrations.
/// - ppo_prompts.jsonl: IFEval fields only: prompts for PPO, no demonstrations.
/// - eval_ood.jsonl: IFEval fields + "reference": combinations never seen in training.
/// - eval_in_domain.jsonl: IFEval fields + "reference": new tasks with training combinations.
/// - manifest.json: seed, sizes and the training / held-out combinations.
extension GeneratedTaskData {
    public static let demonstrationsFile = "demos.jsonl"
    public static let ppoPromptsFile = "ppo_prompts.jsonl"
    public static let evalOutOfDomainFile = "eval_ood.jsonl"
    public static let evalInDomainFile = "eval_in_domain.jsonl"
    public static let manifestFile = "manifest.json"

    private struct Record: Encodable {
        let key: Int?
        let prompt: String
        let instructionIDs: [String]
        let kwargs: [[String: JSONValue]]
        let response: String?
        let reference: String?

        enum CodingKeys: String, CodingKey {
            case key, prompt, kwargs, response, reference
            case instructionIDs = "instruction_id_list"
        }
    }

    private struct Manifest: Encodable {
        let seed: UInt64
        let sizes: [String: Int]
        let instructionIDs: [String]
        let trainingCombinations: [[String]]
        let heldOutCombinations: [[String]]

        enum CodingKeys: String, CodingKey {
            case seed, sizes
            case instructionIDs = "instruction_ids"
            case trainingCombinations = "training_combinations"
            case heldOutCombinations = "held_out_combinations"
        }
    }

    private static func encoder(pretty: Bool) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted] : [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    private static func lines(_ tasks: [GeneratedTask], field: KeyPath<Record, String?>?) throws -> Data {
        let encoder = encoder(pretty: false)
        var data = Data()
        for task in tasks {
            let record = Record(key: task.row.key, prompt: task.row.prompt, instructionIDs: task.row.instructionIDs,
                                kwargs: task.row.kwargs, response: field == \Record.response ? task.reference : nil,
                                reference: field == \Record.reference ? task.reference : nil)
            data.append(try encoder.encode(record))
            data.append(0x0A)
        }
        return data
    }

    /// File name and contents of every file, in a fixed order.
    public func files(seed: UInt64) throws -> [(name: String, data: Data)] {
        let manifest = Manifest(
            seed: seed,
            sizes: ["demonstrations": demonstrations.count, "ppo_prompts": ppoPrompts.count,
                    "eval_out_of_domain": evalOutOfDomain.count, "eval_in_domain": evalInDomain.count],
            instructionIDs: TaskGenerator.instructionIDs,
            trainingCombinations: trainingCombinations, heldOutCombinations: heldOutCombinations)
        var manifestData = try Self.encoder(pretty: true).encode(manifest)
        manifestData.append(0x0A)
        return [
            (Self.demonstrationsFile, try Self.lines(demonstrations, field: \Record.response)),
            (Self.ppoPromptsFile, try Self.lines(ppoPrompts, field: nil)),
            (Self.evalOutOfDomainFile, try Self.lines(evalOutOfDomain, field: \Record.reference)),
            (Self.evalInDomainFile, try Self.lines(evalInDomain, field: \Record.reference)),
            (Self.manifestFile, manifestData),
        ]
    }
}
