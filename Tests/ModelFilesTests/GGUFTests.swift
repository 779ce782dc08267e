import Foundation
import ModelFiles
import XCTest

final class GGUFTests: XCTestCase {
    var directory: String!

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "gguf-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func path(_ name: String) -> String { directory + "/" + name }

    /// A small valid file: every metadata type, three tensors of the unquantized types.
    private func writeSample(to file: String) throws -> [Float] {
        let values: [Float] = (0..<24).map { Float($0) * 0.25 - 3 }
        var writer = GGUFWriter()
        writer.metadata = [
            ("general.architecture", .string("llama")),
            ("u8", .uint8(200)), ("i8", .int8(-5)), ("u16", .uint16(60000)), ("i16", .int16(-300)),
            ("u32", .uint32(4_000_000_000)), ("i32", .int32(-7)), ("u64", .uint64(1 << 40)), ("i64", .int64(-(1 << 40))),
            ("f32", .float32(1.5)), ("f64", .float64(-2.25)), ("flag", .bool(true)),
            ("names", .array([.string("a"), .string("ü"), .string("")])),
            ("numbers", .array([.int32(1), .int32(-2)])),
        ]
        try values.withUnsafeBufferPointer { buffer in
            writer.tensors = [
                .init(name: "a", shape: [4, 6], type: .f32, values: buffer, owner: nil),
                .init(name: "b", shape: [24], type: .f16, values: buffer, owner: nil),
                .init(name: "c", shape: [2, 3, 4], type: .bf16, values: buffer, owner: nil),
            ]
            try writer.write(to: file)
        }
        return values
    }

    func testWriteThenReadRoundTripsMetadataAndTensors() throws {
        let file = path("sample.gguf")
        let values = try writeSample(to: file)
        let gguf = try GGUFFile(path: file)
        XCTAssertEqual(gguf.version, 3)
        XCTAssertEqual(gguf.metadata["u8"], .uint8(200))
        XCTAssertEqual(gguf.metadata["i8"], .int8(-5))
        XCTAssertEqual(gguf.metadata["u16"], .uint16(60000))
        XCTAssertEqual(gguf.metadata["i16"], .int16(-300))
        XCTAssertEqual(gguf.metadata["u32"], .uint32(4_000_000_000))
        XCTAssertEqual(gguf.metadata["i32"], .int32(-7))
        XCTAssertEqual(gguf.metadata["u64"], .uint64(1 << 40))
        XCTAssertEqual(gguf.metadata["i64"], .int64(-(1 << 40)))
        XCTAssertEqual(gguf.metadata["f32"], .float32(1.5))
        XCTAssertEqual(gguf.metadata["f64"], .float64(-2.25))
        XCTAssertEqual(gguf.metadata["flag"], .bool(true))
        XCTAssertEqual(gguf.metadata["names"], .array([.string("a"), .string("ü"), .string("")]))
        XCTAssertEqual(gguf.metadata["numbers"], .array([.int32(1), .int32(-2)]))
        XCTAssertEqual(gguf.metadataKeys.first, "general.architecture")

        XCTAssertEqual(gguf.tensors.map(\.name), ["a", "b", "c"])
        XCTAssertEqual(gguf.tensor(named: "a")?.shape, [4, 6])
        XCTAssertEqual(gguf.tensor(named: "a")?.ne, [6, 4])
        XCTAssertEqual(gguf.tensor(named: "c")?.shape, [2, 3, 4])
        // These values are exact in f16 and bf16.
        for name in ["a", "b", "c"] {
            XCTAssertEqual(try gguf.dequantize(gguf.tensor(named: name)!), values, name)
        }
        XCTAssertEqual(gguf.dataOffset % gguf.alignment, 0)
    }

    func testVersion2IsAccepted() throws {
        let file = path("v2.gguf")
        _ = try writeSample(to: file)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        bytes[4] = 2
        try bytes.write(to: URL(fileURLWithPath: file))
        XCTAssertEqual(try GGUFFile(path: file).version, 2)
    }

    // MARK: Malformed files: each gives its typed error and a message naming the file and the problem.

    func assertError(_ bytes: Data, _ expected: (String) -> ModelFileError, file: StaticString = #filePath, line: UInt = #line) throws {
        let target = path("bad-\(UUID().uuidString).gguf")
        try bytes.write(to: URL(fileURLWithPath: target))
        XCTAssertThrowsError(try GGUFFile(path: target), file: file, line: line) { error in
            XCTAssertEqual(error as? ModelFileError, expected(target), file: file, line: line)
            XCTAssertTrue("\(error)".hasPrefix(target + ": "), "\(error)", file: file, line: line)
        }
    }

    func testBadMagic() throws {
        try assertError(Data("PK\u{3}\u{4}rest of a zip file".utf8)) { .badMagic(path: $0, found: "50 4b 03 04") }
        XCTAssertEqual("\(ModelFileError.badMagic(path: "m.gguf", found: "50 4b 03 04"))",
                       "m.gguf: not a recognized model file (magic bytes 50 4b 03 04)")
    }

    func testUnsupportedVersion() throws {
        var bytes = try Data(contentsOf: URL(fileURLWithPath: { let f = path("ok.gguf"); _ = try writeSample(to: f); return f }()))
        bytes[4] = 7
        try assertError(bytes) { .unsupportedVersion(path: $0, version: 7) }
    }

    func testTruncatedAnywhereFailsCleanly() throws {
        let file = path("whole.gguf")
        _ = try writeSample(to: file)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        let whole = try GGUFFile(path: file)
        let last = whole.tensor(named: "c")!
        let dataEnd = whole.dataOffset + last.relativeOffset + last.byteCount
        // Every cut before the end of the last tensor's data must throw a ModelFileError, never
        // crash (the alignment padding after it is optional).
        var truncatedErrors = 0
        for cut in stride(from: 0, to: dataEnd, by: 3) {
            let target = path("cut.gguf")
            try bytes.prefix(cut).write(to: URL(fileURLWithPath: target))
            XCTAssertThrowsError(try GGUFFile(path: target)) { error in
                guard let e = error as? ModelFileError else { return XCTFail("\(error)") }
                if case .truncated = e { truncatedErrors += 1 }
            }
        }
        XCTAssertGreaterThan(truncatedErrors, 50)
        let target = path("cut.gguf")
        try bytes.prefix(dataEnd - 1).write(to: URL(fileURLWithPath: target))
        XCTAssertThrowsError(try GGUFFile(path: target)) { error in
            XCTAssertEqual("\(error)", "\(target): file is truncated while reading data of tensor 'c'")
        }
    }

    func testHeaderClaimingHugeStringIsRejectedBeforeAllocating() throws {
        var bytes = Data("GGUF".utf8)
        bytes.append(contentsOf: [3, 0, 0, 0])                     // version
        bytes.append(contentsOf: [UInt8](repeating: 0, count: 8))  // tensors
        bytes.append(contentsOf: [1, 0, 0, 0, 0, 0, 0, 0])         // one key
        bytes.append(contentsOf: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0]) // key length 2^48 - 1
        try assertError(bytes) { .headerTooLarge(path: $0, what: "length of metadata key #0", size: (1 << 48) - 1, limit: GGUFFile.Limits.maxStringBytes) }
    }

    func testHeaderClaimingTooManyTensors() throws {
        var bytes = Data("GGUF".utf8)
        bytes.append(contentsOf: [3, 0, 0, 0])
        bytes.append(contentsOf: [0, 0, 0, 0, 0, 1, 0, 0])         // 2^40 tensors
        bytes.append(contentsOf: [UInt8](repeating: 0, count: 8))
        try assertError(bytes) { .headerTooLarge(path: $0, what: "tensor count", size: 1 << 40, limit: GGUFFile.Limits.maxTensors) }
    }

    func testUnsupportedTensorType() throws {
        let file = path("ok.gguf")
        _ = try writeSample(to: file)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        // The type field of tensor "a" follows its name and its two dimensions.
        let marker = Data([1, 0, 0, 0, 0, 0, 0, 0]) + Data("a".utf8) + Data([2, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0])
        let at = bytes.range(of: marker)!.upperBound
        bytes[at] = 99
        try assertError(bytes) { .unsupportedType(path: $0, tensor: "a", type: "ggml type 99") }
    }

    func testUnknownMetadataValueType() throws {
        var bytes = Data("GGUF".utf8)
        bytes.append(contentsOf: [3, 0, 0, 0])
        bytes.append(contentsOf: [UInt8](repeating: 0, count: 8))
        bytes.append(contentsOf: [1, 0, 0, 0, 0, 0, 0, 0])
        bytes.append(contentsOf: [1, 0, 0, 0, 0, 0, 0, 0])
        bytes.append(contentsOf: Array("k".utf8))
        bytes.append(contentsOf: [42, 0, 0, 0])
        try assertError(bytes) { .badMetadata(path: $0, key: "k", problem: "unknown value type 42") }
    }

    func testMissingFile() {
        XCTAssertThrowsError(try GGUFFile(path: path("nope.gguf"))) { error in
            XCTAssertEqual("\(error)", "\(path("nope.gguf")): cannot open: No such file or directory")
        }
    }
}

extension GGUFTests {
    /// Found by the gguf fuzz target (Fuzz/regressions/gguf): a tensor offset near Int.max made the
    /// bounds check itself overflow and trap.
    func testTensorOffsetNearIntMaxIsTruncationNotATrap() throws {
        var bytes = Data("GGUF".utf8)
        bytes.append(contentsOf: [3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])  // version, 1 tensor, 0 keys
        bytes.append(contentsOf: [1, 0, 0, 0, 0, 0, 0, 0] + Array("t".utf8))                    // name
        bytes.append(contentsOf: [1, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0])                          // 1 dim of 4
        bytes.append(contentsOf: [0, 0, 0, 0])                                                   // F32
        bytes.append(contentsOf: [0xF0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F])              // offset ≈ Int.max
        try assertError(bytes) { .truncated(path: $0, what: "data of tensor 't'") }
    }
}
