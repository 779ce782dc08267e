import ArgumentParser
import Daemon
import Foundation
import Compute
import WeightImage
#if canImport(Glibc)
import Glibc
#endif

extension HugePagePolicy: ExpressibleByArgument {}
extension WeightDType: ExpressibleByArgument {}

/// `srppod`: the reward daemon. Under systemd it takes its sockets from socket activation and reports
/// through sd_notify (systemd/srppod.service); by hand it binds --socket/--image-socket and runs in the
/// foreground until SIGTERM or SIGINT.
struct SRPPOD: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "srppod",
        abstract: "Serve coherent rewards and per-token log-probs of frozen PT and SFT models over a Unix socket.",
        discussion: """
        HTTP/1.1 + JSON on the HTTP socket (docs/daemon-api.md: POST /v1/score, /v1/tokenize, \
        /v1/detokenize, /get_reward (OpenRLHF), GET /v1/models, /v1/health, /v1/ready, /metrics); the weight images by file descriptor on the image socket \
        (docs/weight-image-protocol.md). Under systemd the sockets come from socket activation, named \
        'http' and 'images' (and 'tcp' for an optional TCP socket); the images are kept in systemd's fd \
        store, so a restart re-maps them instead of loading the checkpoints again. SIGHUP loads the SFT \
        checkpoint again from --sft (point it at the new revision first); SIGTERM stops after queued work.

        Prints one JSON line when listening and one when ready ({"event":"ready",...}); logs go to \
        journald under systemd, else to stderr.

        Example:
          srppod --pt SmolLM2-135M-Instruct.Q4_1.gguf --sft runs/sft/model \\
                 --socket /tmp/srppod.sock --image-socket /tmp/srppod-images.sock
          curl --unix-socket /tmp/srppod.sock http://srppod/v1/models
        """
    )

    @Option(help: "Pretrained model: GGUF file, safetensors file, Hugging Face folder or weight image file.")
    var pt: String
    @Option(help: "SFT model (reloaded from this path on SIGHUP).")
    var sft: String

    @Option(help: "HTTP socket to bind when systemd passes none.")
    var socket: String?
    @Option(help: "Weight image socket to bind when systemd passes none.")
    var imageSocket: String?
    @Option(help: "Mode of socket files srppod binds itself (octal).")
    var socketMode: String = "0660"
    @Option(help: "Group (name or number) of socket files srppod binds itself.")
    var socketGroup: String?
    @Option(help: "Also listen on TCP at this port (none by default), for trainers that only speak TCP URLs (OpenRLHF's --remote_rm_url http://127.0.0.1:PORT/get_reward).")
    var tcpPort: Int?
    @Option(help: "Address of the TCP listener: a loopback address unless --tcp-allow-remote.")
    var tcpHost: String = "127.0.0.1"
    @Flag(help: "Allow a --tcp-host that is not a loopback address (TCP peers have no credentials to check).")
    var tcpAllowRemote = false
    @Option(help: "Tokenizer for text requests: a model path (default: the SFT checkpoint's, else PT's).")
    var tokenizer: String?
    @Option(help: "Jinja chat template file for chat requests, instead of the model's own.")
    var chatTemplate: String?
    @Option(help: "What /get_reward gives a response cut off before EOS: minus this.")
    var truncationPenalty: Double = 1.0
    @Option(name: .customLong("allow-uid"), help: "Allow this user id (repeatable); with any --allow-uid/--allow-gid, other peers are refused.")
    var allowUIDs: [UInt32] = []
    @Option(name: .customLong("allow-gid"), help: "Allow this group id (repeatable).")
    var allowGIDs: [UInt32] = []

    @Option(help: "Worker threads for scoring (default: all cores).")
    var threads: Int?
    @Option(help: "Huge pages for the images: off, try or require.")
    var hugepages: HugePagePolicy = .try
    @Option(help: "Images built from checkpoints in f32 or bf16 (half the memory; scoring in bf16). Default: f32, image files as they are.")
    var dtype: WeightDType?
    @Option(help: "Tokens per forward batch.")
    var batchTokens: Int = 2048
    @Option(help: "Tokens waiting in the queue before requests are refused as busy.")
    var maxQueueTokens: Int = 262_144
    @Option(help: "Largest request body in bytes.")
    var maxBodyBytes: Int = 8 << 20
    @Option(help: "Most items per score request.")
    var maxItems: Int = 512
    @Option(help: "Most tokens per score request (and per piece of a /get_reward batch).")
    var maxRequestTokens: Int = 131_072
    @Option(help: "/get_reward (OpenRLHF sends whole rollout batches): largest body in bytes.")
    var maxRewardBodyBytes: Int = 128 << 20
    @Option(help: "/get_reward: most queries per request.")
    var maxRewardQueries: Int = 32_768
    @Option(help: "/get_reward: most tokens per request (scored in pieces of --max-items and --max-request-tokens).")
    var maxRewardTokens: Int = 8 << 20
    @Option(help: "Deadline of a request that gives none (ms).")
    var defaultDeadlineMs: Int = 300_000
    @Option(help: "Longest deadline a request may ask for (ms).")
    var maxDeadlineMs: Int = 3_600_000
    @Option(help: "Seconds a request may take to arrive completely.")
    var requestReadTimeout: Double = 10
    @Option(help: "Seconds an idle connection stays open.")
    var idleTimeout: Double = 120
    @Option(help: "Most open HTTP connections.")
    var maxConnections: Int = 512
    @Option(help: "Seconds queued work may take to finish on SIGTERM.")
    var stopGrace: Double = 30
    @Option(help: "Log to journal, stderr, or auto (journal when stderr is the journal).")
    var log: String = "auto"
    @Flag(help: "Log every connection and request error.")
    var verbose = false

    func validate() throws {
        guard UInt32(socketMode, radix: 8) != nil else { throw ValidationError("--socket-mode must be octal, like 0660") }
        guard DaemonLog.Destination(rawValue: log) != nil else { throw ValidationError("--log must be auto, journal or stderr") }
        for (name, value) in [("--batch-tokens", batchTokens), ("--max-queue-tokens", maxQueueTokens), ("--max-body-bytes", maxBodyBytes),
                              ("--max-items", maxItems), ("--max-request-tokens", maxRequestTokens),
                              ("--max-reward-body-bytes", maxRewardBodyBytes), ("--max-reward-queries", maxRewardQueries),
                              ("--max-reward-tokens", maxRewardTokens),
                              ("--default-deadline-ms", defaultDeadlineMs), ("--max-deadline-ms", maxDeadlineMs),
                              ("--max-connections", maxConnections)] where value < 1 {
            throw ValidationError("\(name) must be at least 1")
        }
        guard maxRequestTokens <= maxQueueTokens else {
            throw ValidationError("--max-request-tokens (\(maxRequestTokens)) must not exceed --max-queue-tokens (\(maxQueueTokens)): such a request could never be admitted")
        }
        guard defaultDeadlineMs <= maxDeadlineMs else { throw ValidationError("--default-deadline-ms must not exceed --max-deadline-ms") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if let tcpPort, !(1...65535).contains(tcpPort) { throw ValidationError("--tcp-port must be 1 to 65535") }
        if !tcpAllowRemote && !Self.isLoopback(tcpHost) {
            throw ValidationError("--tcp-host \(tcpHost) is not a loopback address; add --tcp-allow-remote to listen there")
        }
    }

    func run() throws {
        if let threads { Parallel.threads = threads }
        var configuration = DaemonConfiguration(ptPath: pt, sftPath: sft)
        configuration.socketPath = socket
        configuration.imageSocketPath = imageSocket
        configuration.socketMode = UInt32(socketMode, radix: 8)!
        configuration.socketGroup = try socketGroup.map(Self.groupID)
        configuration.tcpPort = tcpPort
        configuration.tcpHost = tcpHost
        configuration.tokenizerPath = tokenizer
        configuration.chatTemplatePath = chatTemplate
        configuration.truncationPenalty = truncationPenalty
        configuration.allowedUIDs = Set(allowUIDs)
        configuration.allowedGIDs = Set(allowGIDs)
        configuration.hugePages = hugepages
        configuration.dtype = dtype
        configuration.limits.batchTokens = batchTokens
        configuration.limits.maxQueueTokens = maxQueueTokens
        configuration.limits.maxBodyBytes = maxBodyBytes
        configuration.limits.maxItems = maxItems
        configuration.limits.maxRequestTokens = maxRequestTokens
        configuration.limits.maxRewardBodyBytes = maxRewardBodyBytes
        configuration.limits.maxRewardQueries = maxRewardQueries
        configuration.limits.maxRewardTokens = maxRewardTokens
        configuration.limits.defaultDeadlineMs = defaultDeadlineMs
        configuration.limits.maxDeadlineMs = maxDeadlineMs
        configuration.requestReadTimeout = requestReadTimeout
        configuration.idleTimeout = idleTimeout
        configuration.maxConnections = maxConnections
        configuration.stopGracePeriod = stopGrace

        let logger = DaemonLog(destination: DaemonLog.Destination(rawValue: log)!, minimum: verbose ? .debug : .info)
        let daemon = ScoringDaemon(configuration: configuration, log: logger, passed: .fromEnvironment())
        let out = JSONEvents()
        do {
            try DaemonSignals.install(reload: { daemon.reload() }, stop: { daemon.stop() })
            try daemon.listen()
            out.write(["event": "listening", "pid": Int(getpid()), "sockets": daemon.socketDescriptions])
            let report = try daemon.loadModels()
            out.write(["event": "ready", "pid": Int(getpid()), "startup_seconds": report.seconds,
                       "models": report.models.map { ["role": $0.role, "sha256": $0.identity.sha256, "revision": $0.identity.revision,
                                                      "loaded_from": $0.loadedFrom, "backing": $0.backing] as [String: Any] }])
        } catch {
            logger.error("cannot start: \(error)")
            FileHandle.standardError.write(Data("srppod: \(error)\n".utf8))
            daemon.stop()  // closes what was opened and removes the socket files it bound
            ServiceManager.notify("STATUS=Failed: \(error)")
            throw ExitCode(1)
        }
        daemon.waitUntilStopped()
        out.write(["event": "stopped", "pid": Int(getpid())])
    }

    /// 127.0.0.0/8, ::1 or localhost.
    static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" || host == "::1" || host == "[::1]" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    static func groupID(_ text: String) throws -> UInt32 {
        if let number = UInt32(text) { return number }
        guard let entry = getgrnam(text) else { throw ValidationError("no group named '\(text)'") }
        return entry.pointee.gr_gid
    }
}

/// Start-up events on stdout, one JSON object per line.
struct JSONEvents {
    func write(_ object: [String: Any]) {
        guard var data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        data.append(0x0A)
        FileHandle.standardOutput.write(data)
    }
}

// A usage error exits 2 with one line on stderr, as srppo does.
do {
    var command = try SRPPOD.parseAsRoot()
    try command.run()
} catch {
    if SRPPOD.exitCode(for: error) == .validationFailure {
        FileHandle.standardError.write(Data("srppod: \(SRPPOD.message(for: error)) (see --help)\n".utf8))
        exit(2)
    }
    SRPPOD.exit(withError: error)
}
