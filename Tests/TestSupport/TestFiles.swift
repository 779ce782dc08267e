import Foundation
import XCTest

/// A temporary folder, removed when `test` ends.
public func temporaryFolder(_ test: XCTestCase) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("srppo-tests-\(getpid())-\(UUID().uuidString.prefix(8))").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
}

/// The path of the real SmolLM2 GGUF that scripts/setup.sh downloads, or nil: the caller skips its
/// test, except under CI, where a missing model fails it.
public func smolLM2Path() -> String? {
    let environment = ProcessInfo.processInfo.environment
    var path = environment["SRPPO_SMOLLM2"]
    if path == nil {
        let cache = environment["SRPPO_CACHE"] ?? NSHomeDirectory() + "/.cache/srppo"
        path = (try? String(contentsOfFile: cache + "/smollm2.path", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }
    if let path, FileManager.default.fileExists(atPath: path) { return path }
    if environment["CI"] != nil { XCTFail("SmolLM2 model missing: scripts/setup.sh should have downloaded it") }
    return nil
}
