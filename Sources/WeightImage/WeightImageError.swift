/// Everything that can be wrong when building, loading or attaching a weight image. `image` names the
/// image (its name, or the file it came from) so one line tells the operator what to fix.
public enum WeightImageError: Error, CustomStringConvertible, Equatable {
    /// The manifest is not valid JSON of the expected shape.
    case badManifest(image: String, problem: String)
    /// The manifest disagrees with itself, with the memory it describes, or with this engine's layout.
    case manifestMismatch(image: String, field: String, problem: String)
    /// Written by an engine whose manifest format this one does not read.
    case unsupportedFormatVersion(image: String, found: Int, supported: Int)
    /// Written by an engine that lays parameters out differently (`LlamaLayout.version`).
    case layoutVersionMismatch(image: String, imageLayout: Int, engineLayout: Int)
    case hashMismatch(image: String, expected: String, actual: String)
    /// The memory is not sealed against writes and resizing, so its hash could go stale.
    case notSealed(image: String, missing: [String])
    /// `--hugepages=require` and the pool could not back the image.
    case noHugePages(bytes: Int, pageSize: Int?, available: Int?, reason: String)
    case outOfMemory(bytes: Int, backing: String, reason: String)
    /// A private mapping of a huge page image: the kernel reserves pool pages for all its possible copies.
    case copyOnWriteNeedsHugePages(image: String, pages: Int, pageSize: Int, available: Int?)
    case badImageFile(path: String, problem: String)

    public var description: String {
        switch self {
        case let .badManifest(image, problem):
            return "weight image '\(image)': bad manifest: \(problem)"
        case let .manifestMismatch(image, field, problem):
            return "weight image '\(image)': manifest field '\(field)': \(problem)"
        case let .unsupportedFormatVersion(image, found, supported):
            return "weight image '\(image)': manifest format version \(found), this engine reads version \(supported)"
        case let .layoutVersionMismatch(image, imageLayout, engineLayout):
            return "weight image '\(image)' was built for parameter layout version \(imageLayout), this engine uses version \(engineLayout): rebuild the image"
        case let .hashMismatch(image, expected, actual):
            return "weight image '\(image)': content hash is sha256:\(actual), expected sha256:\(expected)"
        case let .notSealed(image, missing):
            return "weight image '\(image)': memory is not sealed (missing \(missing.joined(separator: ", ")))"
        case let .noHugePages(bytes, pageSize, available, reason):
            let size = pageSize.map { "\($0 / 1024) KiB" } ?? "unknown size"
            let needed = pageSize.map { " (\((bytes + $0 - 1) / $0) needed, \(available.map(String.init) ?? "?") available)" } ?? ""
            return "huge pages required but unavailable: \(bytes) bytes in \(size) pages\(needed): \(reason); reserve them with 'echo N > /proc/sys/vm/nr_hugepages' or use --hugepages try"
        case let .outOfMemory(bytes, backing, reason):
            return "out of memory: cannot commit \(bytes) bytes of \(backing) for the weight image: \(reason)"
        case let .copyOnWriteNeedsHugePages(image, pages, pageSize, available):
            return "weight image '\(image)' is in \(pageSize / 1024) KiB huge pages: a private (copy-on-write) mapping reserves \(pages) more for its copies, the pool has \(available.map(String.init) ?? "?") available; reserve more in /proc/sys/vm/nr_hugepages, map it shared, or serve it with --hugepages off"
        case let .badImageFile(path, problem):
            return "\(path): not a usable weight image file: \(problem)"
        }
    }
}
