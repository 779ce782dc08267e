import ArgumentParser
import Cluster
import Foundation
import Tensor
import Training

/// Shared command-line conventions: one-line errors on stderr, exit 1 for runtime failures
/// (usage errors exit 2, see main.swift).
enum CLI {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Runs `body`; on error prints "srppo: <message>" to stderr and exits 1.
    static func orExit<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            FileHandle.standardError.write(Data("srppo: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

extension CLI {
    /// `orExit` for a command that may run as MPI ranks (`mpirun -np N srppo ppo|sft …`): `body` gets
    /// the ranks (one process alone without a launcher); a rank's error ends the whole job.
    static func ranks(_ body: (Collective) throws -> Void) throws {
        try orExit {
            try MPICollective.run(report: { FileHandle.standardError.write(Data("srppo: \($0)\n".utf8)) }) { collective in
                if collective.size > 1, collective.isLeader {
                    FileHandle.standardError.write(Data("srppo: data-parallel over \(collective.size) MPI ranks\n".utf8))
                }
                try body(collective)
            }
        }
    }
}

/// `--threads`, the same for every command that computes: the engine's worker count (kernels,
/// GEMMs, attention); per rank under mpirun.
struct ThreadOptions: ParsableArguments {
    @Option(help: "Worker threads (default: all cores).") var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    /// Sets the worker count when --threads was given.
    func apply() {
        if let threads { Parallel.threads = threads }
    }
}

/// JSONL input and output: one JSON object per line.
enum JSONLines {
    struct Line {
        let source: String
        let number: Int
        let data: Data

        func error(_ problem: String) -> CLI.Failure {
            CLI.Failure(description: "\(source):\(number): \(problem)")
        }

        /// Decodes the line, turning decoding errors into one line naming the field.
        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            do {
                return try JSONDecoder().decode(type, from: data)
            } catch let DecodingError.keyNotFound(key, _) {
                throw error("missing field \"\(key.stringValue)\"")
            } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
                throw error("field \"\(context.codingPath.map(\.stringValue).joined(separator: "."))\": \(context.debugDescription)")
            } catch let DecodingError.dataCorrupted(context) {
                let path = context.codingPath.map(\.stringValue).joined(separator: ".")
                throw error(path.isEmpty ? "not valid JSON" : "field \"\(path)\": \(context.debugDescription)")
            }
        }
    }

    /// Reads a JSONL file (or stdin when `path` is nil); blank lines are skipped unless
    /// `keepingBlankLines` (for plain text input, where an empty line is an empty text).
    static func read(_ path: String?, maxBytes: Int = 1 << 30, keepingBlankLines: Bool = false) throws -> [Line] {
        let source = path ?? "<stdin>"
        let data: Data
        if let path {
            guard let d = FileManager.default.contents(atPath: path) else {
                throw CLI.Failure(description: "\(path): cannot read file")
            }
            data = d
        } else {
            data = FileHandle.standardInput.readDataToEndOfFile()
        }
        guard data.count <= maxBytes else { throw CLI.Failure(description: "\(source): larger than \(maxBytes) bytes") }
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
    final class Writer {
        private let handle: FileHandle

        init(path: String?) throws {
            if let path {
                guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
                    throw CLI.Failure(description: "\(path): cannot create file")
                }
                handle = h
            } else {
                handle = FileHandle.standardOutput
            }
        }

        /// Writes to an open handle (standard error, for reports beside data on standard output).
        init(handle: FileHandle) {
            self.handle = handle
        }

        func write(_ object: [String: Any]) throws {
            var data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
            data.append(0x0A)
            handle.write(data)
        }

        /// Writes `{"<key>":[…]}` for an integer array without going through JSONSerialization,
        /// which boxes every element and costs far more than producing the ids did.
        func write<T: BinaryInteger>(key: String, integers: [T]) {
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
