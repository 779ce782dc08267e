/// How many tasks of each kind to generate.
public struct TaskSizes: Equatable, Sendable {
    public var demonstrations: Int
    public var ppoPrompts: Int
    public var evalOutOfDomain: Int
    public var evalInDomain: Int

    /// Sized for this project's small pipeline (SFT and PPO of a 135M model on 2 cores in about
    /// 20 minutes): references are 20–90 words.
    public static let small = TaskSizes(demonstrations: 320, ppoPrompts: 256, evalOutOfDomain: 100, evalInDomain: 50)

    public init(demonstrations: Int, ppoPrompts: Int, evalOutOfDomain: Int, evalInDomain: Int) {
        self.demonstrations = demonstrations
        self.ppoPrompts = ppoPrompts
        self.evalOutOfDomain = evalOutOfDomain
        self.evalInDomain = evalInDomain
    }
}

/// One generated task: an IFEval row and a reference response that follows all its instructions.
public struct GeneratedTask: Equatable, Sendable {
    public let row: IFEvalRow
    public let reference: String
}

public struct GeneratedTaskData: Sendable {
    public var demonstrations: [GeneratedTask]
    public var ppoPrompts: [GeneratedTask]
    /// Tasks whose instruction combinations never occur in the two training sets.
    public var evalOutOfDomain: [GeneratedTask]
    /// New tasks drawn from the training combinations.
    public var evalInDomain: [GeneratedTask]
    public var trainingCombinations: [[String]]
    public var heldOutCombinations: [[String]]
}

public enum GenerationError: Error, CustomStringConvertible {
    case referenceFails(instructions: [String], prompt: String, response: String)
    case tooFewDistinctPrompts(set: String)

    public var description: String {
        switch self {
        case .referenceFails(let ids, let prompt, let response):
            return "generated reference does not follow \(ids.joined(separator: ", ")): prompt \(prompt.debugDescription), response \(response.debugDescription)"
        case .tooFewDistinctPrompts(let set):
            return "\(set): cannot draw enough distinct prompts; ask for fewer tasks"
        }
    }
}

/// Writes verifiable instruction-following tasks in IFEval format, deterministically from a seed.
///
/// Every combination of one to three compatible instructions is enumerated; a fifth of the
/// combinations of two or three (chosen by the seed) is held out for the out-of-domain
/// evaluation set, so those exact combinations never occur in the demonstrations or PPO prompts,
/// while every single instruction does. Each task is a request about a topic plus the
/// instructions; its reference response is written to follow them and checked with the same
/// checkers `srppo eval` uses.
public struct TaskGenerator: Sendable {
    public let seed: UInt64
    public static let heldOutFraction = 0.2

    public init(seed: UInt64) { self.seed = seed }

    /// The instruction ids the generator writes (every id `srppo eval` checks).
    public static var instructionIDs: [String] { GeneratedInstruction.all.keys.sorted() }

    /// All compatible combinations of one to three instructions, each sorted, in a fixed order.
    public static func combinations() -> [[String]] {
        let ids = instructionIDs
        var result: [[String]] = ids.map { [$0] }
        for i in ids.indices {
            for j in ids.indices where j > i {
                let pair = [ids[i], ids[j]]
                guard GeneratedInstruction.compatible(pair) else { continue }
                result.append(pair)
                for k in ids.indices where k > j {
                    let triple = pair + [ids[k]]
                    if GeneratedInstruction.compatible(triple) { result.append(triple) }
                }
            }
        }
        return result
    }

    /// Training and held-out combinations: singles always train; a seeded fifth of the rest is held out.
    public func splitCombinations() -> (training: [[String]], heldOut: [[String]]) {
        let all = Self.combinations()
        let multi = SeededRandom(seed: seed, stream: "split").shuffled(all.filter { $0.count > 1 })
        let heldOutCount = Int(Double(multi.count) * Self.heldOutFraction)
        let heldOut = Set(multi.prefix(heldOutCount))
        return (all.filter { !heldOut.contains($0) }, all.filter { heldOut.contains($0) })
    }

    public func generate(_ sizes: TaskSizes) throws -> GeneratedTaskData {
        let (training, heldOut) = splitCombinations()
        var usedPrompts = Set<String>()
        var nextKey = 1
        func draw(_ count: Int, from pool: [[String]], sizeWeights: [Int: Double], stream: String) throws -> [GeneratedTask] {
            let random = SeededRandom(seed: seed, stream: stream)
            let bySize = Dictionary(grouping: pool, by: \.count)
            var tasks: [GeneratedTask] = []
            var attempts = 0
            while tasks.count < count {
                attempts += 1
                if attempts > count * 20 + 100 { throw GenerationError.tooFewDistinctPrompts(set: stream) }
                let size = Self.pickSize(sizeWeights, available: bySize, random: random)
                let task = try makeTask(random.pick(bySize[size]!), key: nextKey, random: random)
                guard usedPrompts.insert(task.row.prompt).inserted else { continue }
                tasks.append(task)
                nextKey += 1
            }
            return tasks
        }
        let trainingWeights: [Int: Double] = [1: 0.3, 2: 0.45, 3: 0.25]
        let demonstrations = try draw(sizes.demonstrations, from: training, sizeWeights: trainingWeights, stream: "demonstrations")
        let ppoPrompts = try draw(sizes.ppoPrompts, from: training, sizeWeights: trainingWeights, stream: "ppo")
        let inDomain = try draw(sizes.evalInDomain, from: training, sizeWeights: trainingWeights, stream: "eval-in-domain")
        let outOfDomain = try draw(sizes.evalOutOfDomain, from: heldOut, sizeWeights: [2: 0.6, 3: 0.4], stream: "eval-out-of-domain")
        return GeneratedTaskData(demonstrations: demonstrations, ppoPrompts: ppoPrompts, evalOutOfDomain: outOfDomain,
                                 evalInDomain: inDomain, trainingCombinations: training, heldOutCombinations: heldOut)
    }

    private static func pickSize(_ weights: [Int: Double], available: [Int: [[String]]], random: SeededRandom) -> Int {
        let sizes = weights.keys.sorted().filter { available[$0] != nil }
        let total = sizes.reduce(0) { $0 + weights[$1]! }
        var roll = Double(random.next() >> 11) / Double(1 << 53) * total
        for size in sizes {
            roll -= weights[size]!
            if roll < 0 { return size }
        }
        return sizes.last!
    }

    /// One task for `combination` (as `generate` would write it, for tests and tools): `variant`
    /// picks the draw.
    public func makeTask(_ combination: [String], key: Int, variant: UInt64) throws -> GeneratedTask {
        try makeTask(combination, key: key, random: SeededRandom(seed: seed, stream: "variant \(variant)"))
    }

    /// One task for `combination`: topic, request, instruction order and arguments drawn from `random`.
    func makeTask(_ combination: [String], key: Int, random: SeededRandom) throws -> GeneratedTask {
        let ids = random.shuffled(combination)
        let instructions = ids.map { GeneratedInstruction.all[$0]! }
        let topic = random.pick(TaskVocabulary.topics)
        let yesNo = ids.contains("detectable_format:constrained_response")
        let request = TaskVocabulary.fill(random.pick(yesNo ? TaskVocabulary.yesNoRequests : TaskVocabulary.requests), topic: topic)
        let setting = TaskSetting(topic: topic, request: TaskVocabulary.capitalizedFirst(request))

        var draft = ResponseDraft()
        var arguments = instructions.map { $0.shape(&draft, setting, random) }
        let needed: Int
        switch draft.layout {
        case .paragraphs(let count, _): needed = random.int(in: max(count, 2)...(count + 2))
        case .bullets(let count): needed = count
        case .sections(_, let count): needed = random.int(in: count...(count + 1))
        case .fixedAnswer: needed = 1
        case .json: needed = random.int(in: 2...3)
        }
        let sentences = random.sample(TaskVocabulary.sentences, count: needed * 2).map {
            TaskVocabulary.capitalizedFirst(TaskVocabulary.fill($0, topic: topic))
        }
        draft.sentences = Array(sentences.prefix(needed))
        draft.alternative = Array(sentences.suffix(needed))
        let reference = draft.render()
        for index in instructions.indices {
            arguments[index] = instructions[index].measure(reference, arguments[index], random)
        }
        let descriptions = instructions.indices.map { instructions[$0].describe(arguments[$0], random) }
        let prompt = ([setting.request] + descriptions).joined(separator: " ")
        let row = IFEvalRow(key: key, prompt: prompt, instructionIDs: ids, kwargs: arguments)
        guard let verdict = try IFEvalScorer().score(row, response: reference), verdict.followsAllStrict else {
            throw GenerationError.referenceFails(instructions: ids, prompt: prompt, response: reference)
        }
        return GeneratedTask(row: row, reference: reference)
    }
}
