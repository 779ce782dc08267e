import ArgumentParser
import Benchmarks

/// `srppo bench daemon`: scoring throughput and latency through srppod with 1, 4, 16 concurrent
/// clients, against scoring in-process; and whether batching across clients is what helps.
struct BenchDaemonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon",
        abstract: "Throughput and p50/p99 latency of srppod with concurrent clients vs in-process scoring.",
        discussion: """
        Makes --requests random requests per client (one item of --prompt-tokens + --response-tokens \
        tokens each, the same for every series), scores them in-process one at a time (EmbeddedScorer), \
        then starts srppod (beside this srppo, on a temporary socket) and sends them from each number \
        of --clients at once, every client waiting for each answer before sending the next (as a PPO \
        trainer does). With --unbatched-control the multi-client series run again against an srppod \
        that puts one item per forward pass (--batch-tokens 1): the difference is what batching across \
        clients buys. One JSON line per series: tokens/s (prompt + response, each scored under PT and \
        SFT), requests/s, latency p50/p99, mean items per batch, and the speed-up over one client.

        Example:
          srppo bench daemon --pt SmolLM2-135M-Instruct.Q4_1.gguf --sft SmolLM2-135M-Instruct.Q4_1.gguf --clients 1,4,16
        """
    )

    @Option(help: "Pretrained model.") var pt: String
    @Option(help: "SFT model.") var sft: String
    @Option(help: "Comma-separated numbers of concurrent clients.") var clients: String = "1,4,16"
    @Option(help: "Requests per client per series.") var requests: Int = 8
    @Option(help: "Prompt tokens per request.") var promptTokens: Int = 32
    @Option(help: "Response tokens per request.") var responseTokens: Int = 32
    @OptionGroup var threading: ThreadOptions
    @Option(help: "srppod executable (default: beside this srppo).") var srppod: String?
    @Flag(help: "Also run the multi-client series against srppod with --batch-tokens 1.") var unbatchedControl = false

    func validate() throws {
        guard !clientCounts.isEmpty, clientCounts.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--clients must list positive numbers, like 1,4,16") }
        guard requests >= 1, promptTokens >= 1, responseTokens >= 1 else {
            throw ValidationError("--requests, --prompt-tokens and --response-tokens must be at least 1")
        }
    }

    var clientCounts: [Int] { BenchCommand.integers(clients) }

    func run() throws {
        threading.apply()
        let srppodPath = srppod ?? BenchCommand.executable.deletingLastPathComponent().appendingPathComponent("srppod").path
        let settings = DaemonBenchmark.Settings(pt: pt, sft: sft, clients: clientCounts, requests: requests, promptTokens: promptTokens,
                                                responseTokens: responseTokens, srppod: srppodPath, unbatchedControl: unbatchedControl)
        try BenchCommand.report(DaemonBenchmark(settings).run)
    }
}
