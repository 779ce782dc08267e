import Foundation

/// What is wrong with a JSONL file or one of its lines: "SOURCE:LINE: problem", or "SOURCE: problem"
/// for the file as a whole.
public struct JSONLinesError: Error, CustomStringConvertible, Equatable {
    public let source: String
    public let line: Int?
    public let problem: String

    public init(source: String, line: Int?, problem: String) {
        self.source = source
        self.line = line
        self.problem = problem
    }

    public var description: String { line.map { "\(source):\($0): \(problem)" } ?? "\(source): \(problem)" }
}

/// JSONL input and output: one JSON object per line.
public enum JSONLines {
    public struct Line {
        public let source: String
        public let number: Int
        public let data: Data

        /// An error about this line: "SOURCE:LINE: problem".
        public func error(_ problem: String) -> JSONLinesError {
            JSONLinesError(source: source, line: number, problem: problem)
        }

        /// Decodes the line, turning decoding errors into one line naming the field.
        public func decode<T: Decodable>(_ type: T.Type) throws -> T {
            do {
                return try JSONDecoder().decode(type, from: data)
            } catch {
                throw self.error(DecodingProblem(error).description)
            }
        }
    }

    /// Reads a JSONL file (or stdin when `path` is nil); blank lines are skipped unless
    /// `keepingBlankLines` (for plain text input, where an empty line is an empty text).
    public static func read(_ path: String?, maxBytes: Int = 1 << 30, keepingBlankLines: Bool = false) throws -> [Line] {
        let source = path ?? "<stdin>"
        let data: Data
        if let path {
            guard let d = FileManager.default.contents(atPath: path) else {
                throw JSONLinesError(source: path, line: nil, problem: "cannot read file")
            }
            data = d
        } else {
            data = FileHandle.standardInput.readDataToEndOfFile()
        }
        guard data.count <= maxBytes else { throw JSONLinesError(source: source, line: nil, problem: "larger than \(maxBytes) bytes") }
        var lines: [Line] = []
        var number = 0
        var rawLines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        if keepingBlankLines, rawLines.last?.isEmpty == true { rawLines.removeLast() }  // after the final newline
        for raw in rawLines {
            number += 1
            if !keepingBlankLines && raw.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            lines.append(Line(source: source, number: number, data: Data(raw)))
        }
        return lines
    }

    /// Writes JSON objects one per line to a file or stdout.
    public final class Writer {
        private let handle: FileHandle

        public init(path: String?) throws {
            if let path {
                guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
                    throw JSONLinesError(source: path, line: nil, problem: "cannot create file")
                }
                handle = h
            } else {
                handle = FileHandle.standardOutput
            }
        }

        /// Writes to an open handle (standard error, for reports beside data on standard output).
        public init(handle: FileHandle) {
            self.handle = handle
        }

        public func write(_ object: [String: Any]) throws {
            var data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
            data.append(0x0A)
            handle.write(data)
        }

        /// Writes `{"<key>":[…]}` for an integer array without going through JSONSerialization,
        /// which boxes every element and costs far more than producing the ids did.
        public func write<T: BinaryInteger>(key: String, integers: [T]) {
            var line = Array("{\"\(key)\":[".utf8)
            line.reserveCapacity(line.count + integers.count * 7 + 3)
            var digits: [UInt8] = []
            for (index, value) in integers.enumerated() {
                if index > 0 { line.append(UInt8(ascii: ",")) }
                if value < 0 { line.append(UInt8(ascii: "-")) }
                var magnitude = value.magnitude
                digits.removeAll(keepingCapacity: true)
                repeat {
                    digits.append(UInt8(ascii: "0") + UInt8(magnitude % 10))
                    magnitude /= 10
                } while magnitude > 0
                line.append(contentsOf: digits.reversed())
            }
            line.append(contentsOf: Array("]}\n".utf8))
            handle.write(Data(line))
        }
    }
}
