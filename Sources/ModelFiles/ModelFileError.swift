/// Everything that can be wrong with a checkpoint file. Every case names the file, and the tensor or
/// key where there is one, so the message alone tells the user what to fix.
public enum ModelFileError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, reason: String)
    case badMagic(path: String, found: String)
    case unsupportedVersion(path: String, version: UInt32)
    case truncated(path: String, what: String)
    case headerTooLarge(path: String, what: String, size: Int, limit: Int)
    case badMetadata(path: String, key: String, problem: String)
    case unsupportedType(path: String, tensor: String, type: String)
    case missingTensor(path: String, tensor: String)
    case unexpectedTensor(path: String, tensor: String)
    case wrongShape(path: String, tensor: String, expected: [Int], found: [Int])
    case badTensorData(path: String, tensor: String, problem: String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason):
            return "\(path): cannot open: \(reason)"
        case let .badMagic(path, found):
            return "\(path): not a recognized model file (magic bytes \(found))"
        case let .unsupportedVersion(path, version):
            return "\(path): unsupported GGUF version \(version) (supported: 2, 3)"
        case let .truncated(path, what):
            return "\(path): file is truncated while reading \(what)"
        case let .headerTooLarge(path, what, size, limit):
            return "\(path): \(what) is \(size), above the limit of \(limit)"
        case let .badMetadata(path, key, problem):
            return "\(path): metadata '\(key)': \(problem)"
        case let .unsupportedType(path, tensor, type):
            return "\(path): tensor '\(tensor)' has unsupported type \(type)"
        case let .missingTensor(path, tensor):
            return "\(path): missing tensor '\(tensor)'"
        case let .unexpectedTensor(path, tensor):
            return "\(path): unexpected tensor '\(tensor)' (not part of this architecture)"
        case let .wrongShape(path, tensor, expected, found):
            return "\(path): tensor '\(tensor)' has shape \(found), expected \(expected)"
        case let .badTensorData(path, tensor, problem):
            return "\(path): tensor '\(tensor)': \(problem)"
        }
    }
}
