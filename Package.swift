// swift-tools-version:6.0
// SRPPO: Self-Rewarding PPO for language models. See README.md and DESIGN notes in the issues.
import PackageDescription

// C kernels are always built optimized: tests and debug builds would otherwise spend minutes in them.
let optimizedC: [CSetting] = [.unsafeFlags(["-O3", "-fno-math-errno"])]

let package = Package(
    name: "SRPPO",
    products: [
        .executable(name: "srppo", targets: ["srppo"]),
        .executable(name: "srppo-fuzz", targets: ["srppo-fuzz"]),
        .executable(name: "srppod", targets: ["srppod"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        // MARK: C shims (CSupport/)
        .systemLibrary(name: "CBLAS", path: "CSupport/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .target(name: "CKernels", path: "CSupport/CKernels", cSettings: optimizedC),
        .target(name: "CFuzz", path: "CSupport/CFuzz"),
        .target(name: "CLinux", path: "CSupport/CLinux"),
        .target(name: "CHugetlbfs", path: "CSupport/CHugetlbfs", linkerSettings: [.linkedLibrary("dl")]),
        .systemLibrary(name: "COpenSSLCrypto", path: "CSupport/COpenSSLCrypto", pkgConfig: "libcrypto",
                       providers: [.apt(["libssl-dev"])]),
        .target(name: "CSystemd", path: "CSupport/CSystemd", linkerSettings: [.linkedLibrary("systemd")]),
        .target(name: "CMPI", path: "CSupport/CMPI", linkerSettings: [.linkedLibrary("dl")]),

        // MARK: Swift modules, lowest layer first
        .target(name: "SystemSupport"),
        .target(name: "Compute", dependencies: ["CBLAS", "CKernels"]),
        .target(name: "ModelFiles", dependencies: ["Compute", "SystemSupport"]),
        .target(name: "Tokenizer", dependencies: ["ModelFiles"]),
        .target(name: "Transformer", dependencies: ["Compute", "ModelFiles"]),
        .target(name: "Reward"),
        .target(name: "Training", dependencies: [
            "CKernels", "Compute", "ModelFiles", "SystemSupport", "Tokenizer", "Transformer", "Reward", "Evaluation",
        ]),
        .target(name: "Evaluation", dependencies: ["ModelFiles"]),
        .target(name: "Workflow", dependencies: ["Evaluation", "ModelFiles", "Compute"]),
        .target(name: "Report", dependencies: ["Evaluation", "Workflow"]),
        .target(name: "WeightImage", dependencies: ["ModelFiles", "Transformer", "SystemSupport", "CLinux", "CHugetlbfs", "COpenSSLCrypto"]),
        .target(name: "WireProtocol", dependencies: ["Reward", "Tokenizer", "Transformer"]),
        .target(name: "Daemon", dependencies: [
            "CSystemd", "CLinux", "ModelFiles", "Reward", "SystemSupport", "Tokenizer", "Transformer", "WeightImage", "WireProtocol",
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        ]),
        .target(name: "Client", dependencies: [
            "ModelFiles", "Reward", "Training", "Transformer", "WeightImage", "WireProtocol",
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        .target(name: "Cluster", dependencies: ["CMPI", "Training"]),
        .target(name: "Benchmarks", dependencies: [
            "CKernels", "Compute", "ModelFiles", "Tokenizer", "Transformer", "Reward", "Training", "WeightImage", "Client",
        ]),
        .executableTarget(name: "srppo", dependencies: [
            "Compute", "ModelFiles", "Tokenizer", "Transformer", "Reward", "Training", "Evaluation", "WeightImage", "Client", "Report",
            "WireProtocol", "Cluster", "Workflow", "SystemSupport", "Benchmarks",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "srppod", dependencies: [
            "Daemon", "Compute", "WeightImage", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .executableTarget(name: "srppo-fuzz", dependencies: [
            "CFuzz", "CLinux", "ModelFiles", "Tokenizer", "Transformer", "Training", "WeightImage", "Daemon", "WireProtocol",
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),

        // MARK: Tests
        // Tiny random models and temporary folders for the tests of every module (linked by tests only).
        .target(name: "TestSupport", dependencies: ["Compute", "Transformer"], path: "Tests/TestSupport"),
        .testTarget(name: "ComputeTests", dependencies: ["Compute", "CKernels"]),
        .testTarget(name: "ModelFilesTests", dependencies: ["ModelFiles"]),
        .testTarget(name: "TransformerTests", dependencies: ["Transformer", "ModelFiles", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Transformer", "ModelFiles", "Compute", "Reward", "Client",
                                                         "WeightImage", "Evaluation", "TestSupport"]),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "ModelFiles", "Compute", "TestSupport"]),
        .testTarget(name: "RewardTests", dependencies: ["Reward"]),
        .testTarget(name: "ReportTests", dependencies: ["Report"]),
        .testTarget(name: "WorkflowTests", dependencies: ["Workflow"]),
        .testTarget(name: "WeightImageTests", dependencies: ["WeightImage", "Transformer", "CLinux", "TestSupport"]),
        .testTarget(name: "TokenizerTests", dependencies: ["Tokenizer", "ModelFiles", "TestSupport"]),
        .testTarget(name: "BenchmarksTests", dependencies: ["Benchmarks", "Compute"]),
        .testTarget(name: "DaemonTests", dependencies: ["Daemon", "Client", "WireProtocol", "Reward", "Tokenizer", "Transformer", "WeightImage",
                                                      "Compute", "TestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
