import ArgumentParser
import Benchmarks
import WeightImage

/// `srppo bench attach`: how fast a process gets a usable model from a served weight image, against
/// loading the checkpoint cold.
struct BenchAttachCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attach",
        abstract: "Attach-and-ready time of a served weight image vs a cold load of the checkpoint.",
        discussion: """
        Builds an image of the model, serves it on a temporary Unix socket in this process and \
        attaches it --repeats times per mode, each time over a new connection and a new mapping. \
        Times per attach:
          handout  connect → reply and descriptor received
          ready    descriptor received → model ready to compute log-probs
                   (manifest decoded and checked, seals, mmap, model set-up)
          first    the first scoring call on the new mapping (page faults included)
        Modes: shared (read-only), shared with --populate, private (copy-on-write), and shared from \
        new processes (`srppo image attach`; handout and ready only). The cold-load \
        series loads the checkpoint with ModelLoader --cold-repeats times (ready = load time). One \
        JSON line per series with median, min and max.

        Example:
          srppo bench attach --model SmolLM2.gguf --repeats 20 --cold-repeats 3
        """
    )

    @Option(help: "Model: a GGUF file, a safetensors file or a Hugging Face model folder.")
    var model: String

    @Option(help: "Attaches per mode.")
    var repeats: Int = 20

    @Option(help: "Cold loads of the checkpoint.")
    var coldRepeats: Int = 3

    @Option(help: "Huge pages for the image: off, try or require.")
    var hugepages: HugePagePolicy = .try

    @Option(help: "Image dtype: f32, or bf16 (attached models score in bf16, compared with the loaded model in bf16).")
    var dtype: WeightDType = .f32

    @Option(help: "Tokens in the probe sequence scored after each attach.")
    var probeTokens: Int = 16

    @OptionGroup var threading: ThreadOptions

    func validate() throws {
        guard repeats >= 1, coldRepeats >= 1 else { throw ValidationError("--repeats and --cold-repeats must be at least 1") }
        guard probeTokens >= 2 else { throw ValidationError("--probe-tokens must be at least 2") }
    }

    func run() throws {
        threading.apply()
        let settings = AttachBenchmark.Settings(model: model, repeats: repeats, coldRepeats: coldRepeats, hugePages: hugepages, dtype: dtype,
                                                probeTokens: probeTokens, srppo: BenchCommand.executable.path)
        try BenchCommand.report(AttachBenchmark(settings).run)
    }
}
