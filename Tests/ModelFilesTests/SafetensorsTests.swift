import Foundation
import ModelFiles
import XCTest

final class SafetensorsTests: XCTestCase {
    var directory: String!

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "st-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    func testRoundTripEachDType() throws {
        let values: [Float] = (0..<12).map { Float($0) * 0.5 - 2 }
        for dtype in [SafetensorsDType.f32, .f16, .bf16] {
            let file = directory + "/m-\(dtype.rawValue).safetensors"
            try values.withUnsafeBufferPointer {
                try SafetensorsWriter.write([.init(name: "w", shape: [3, 4], values: $0, owner: nil),
                                             .init(name: "b", shape: [12], values: $0, owner: nil)],
                                            dtype: dtype, metadata: ["format": "pt"], to: file)
            }
            let st = try SafetensorsFile(path: file)
            XCTAssertEqual(st.tensorNames, ["w", "b"])
            XCTAssertEqual(st.tensors["w"]?.shape, [3, 4])
            XCTAssertEqual(st.tensors["w"]?.dtype, dtype)
            XCTAssertEqual(st.metadata, ["format": "pt"])
            XCTAssertEqual(try st.read(st.tensors["w"]!), values)
            XCTAssertEqual(try st.read(st.tensors["b"]!), values)
        }
    }

    func testRoundingToHalfTypes() throws {
        let values: [Float] = [1.0 / 3.0, -1e-3, 65504, 3.14159]
        let file = directory + "/r.safetensors"
        try values.withUnsafeBufferPointer { try SafetensorsWriter.write([.init(name: "x", shape: [4], values: $0, owner: nil)], dtype: .bf16, to: file) }
        let back = try SafetensorsFile(path: file).read(SafetensorsFile(path: file).tensors["x"]!)
        for (a, b) in zip(values, back) { XCTAssertEqual(a, b, accuracy: abs(a) / 128) }
    }

    private func write(header: String, data: [UInt8] = [], declaredSize: UInt64? = nil) throws -> String {
        let file = directory + "/bad-\(UUID().uuidString).safetensors"
        var bytes = Data()
        var size = (declaredSize ?? UInt64(header.utf8.count)).littleEndian
        withUnsafeBytes(of: &size) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: Array(header.utf8))
        bytes.append(contentsOf: data)
        try bytes.write(to: URL(fileURLWithPath: file))
        return file
    }

    private func assertMessage(_ file: String, _ message: String, line: UInt = #line) {
        XCTAssertThrowsError(try SafetensorsFile(path: file), line: line) { error in
            XCTAssertTrue(error is ModelFileError, line: line)
            XCTAssertEqual("\(error)", "\(file): \(message)", line: line)
        }
    }

    func testMalformedHeaders() throws {
        assertMessage(try write(header: "{", declaredSize: 1 << 40),
                      "safetensors header is 1099511627776, above the limit of 100000000")
        assertMessage(try write(header: "{\"a\":", declaredSize: 100), "file is truncated while reading safetensors header")
        assertMessage(try write(header: "not json"), "metadata 'header': not valid JSON")
        assertMessage(try write(header: "[1,2]"), "metadata 'header': expected a JSON object")
        assertMessage(try write(header: #"{"w":{"dtype":"F32","shape":[2]}}"#),
                      "tensor 'w': header entry needs dtype, shape and two data_offsets")
        assertMessage(try write(header: #"{"w":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}}"#, data: [UInt8](repeating: 0, count: 16)),
                      "tensor 'w' has unsupported type I64")
        assertMessage(try write(header: #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8)),
                      "tensor 'w': data_offsets [0, 8] do not match 3 elements of F32")
        assertMessage(try write(header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: [UInt8](repeating: 0, count: 8)),
                      "file is truncated while reading data of tensor 'w'")
        assertMessage(try write(header: #"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}"#),
                      "tensor 'w': invalid shape [-1]")
    }

    func testNonFiniteValuesAreRejected() throws {
        let file = directory + "/nan.safetensors"
        let values: [Float] = [1, .nan]
        try values.withUnsafeBufferPointer { try SafetensorsWriter.write([.init(name: "x", shape: [2], values: $0, owner: nil)], to: file) }
        let st = try SafetensorsFile(path: file)
        XCTAssertThrowsError(try st.read(st.tensors["x"]!)) { error in
            XCTAssertEqual("\(error)", "\(file): tensor 'x': value #1 is not finite")
        }
    }
}
