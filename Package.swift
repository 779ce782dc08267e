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
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
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

        // MARK: Swift modules, lowest layer first
        .target(name: "Tensor", dependencies: ["CBLAS", "CKernels"]),
        .target(name: "ModelFiles", dependencies: ["Tensor"]),
        .target(name: "Tokenizer", dependencies: ["ModelFiles"]),
        .target(name: "Transformer", dependencies: ["Tensor", "ModelFiles"]),
        .target(name: "Reward"),
        .target(name: "Training", dependencies: ["CKernels", "Tensor", "ModelFiles", "Transformer", "Reward"]),
        .target(name: "Evaluation"),
        .target(name: "Report"),
        .target(name: "WeightImage", dependencies: ["Transformer", "CLinux", "CHugetlbfs", "COpenSSLCrypto"]),
        .target(name: "Client", dependencies: ["Reward", "Transformer", "WeightImage"]),
        .executableTarget(name: "srppo", dependencies: [
            "Tensor", "ModelFiles", "Tokenizer", "Transformer", "Reward", "Training", "Evaluation", "WeightImage", "Client", "Report",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .executableTarget(name: "srppo-fuzz", dependencies: ["CFuzz", "CLinux", "ModelFiles", "Transformer", "Training", "WeightImage"]),

        // MARK: Tests
        .testTarget(name: "TensorTests", dependencies: ["Tensor", "CKernels"]),
        .testTarget(name: "ModelFilesTests", dependencies: ["ModelFiles"]),
        .testTarget(name: "TransformerTests", dependencies: ["Transformer", "ModelFiles"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Transformer", "ModelFiles", "Tensor"]),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation"]),
        .testTarget(name: "RewardTests", dependencies: ["Reward"]),
        .testTarget(name: "ReportTests", dependencies: ["Report"]),
        .testTarget(name: "WeightImageTests", dependencies: ["WeightImage", "Transformer", "CLinux"]),
        .testTarget(name: "TokenizerTests", dependencies: ["Tokenizer", "ModelFiles"]),
    ],
    swiftLanguageModes: [.v5]
)
