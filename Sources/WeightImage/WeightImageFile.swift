import Foundation
import ModelFiles
#if canImport(Glibc)
import Glibc
import SystemSupport
#endif

/// A weight image saved to disk, so a server can start from it without converting the checkpoint
/// again (`srppo image build --out FILE`). Layout, little-endian:
///
///     0   8 bytes  magic "SRPPOWIM"
///     8   u32      file format version (1)
///     12  u32      0
///     16  u64      manifest length M
///     24  u64      data offset D (a multiple of 4096, at least 32 + M)
///     32  M bytes  manifest JSON (as on the wire)
///     ..  zeros up to D
///     D   the data region, manifest.data_bytes long
public enum WeightImageFile {
    static let magic = Array("SRPPOWIM".utf8)
    static let version: UInt32 = 1
    static let headerBytes = 32
    static let dataAlignment = 4096
    static let maxManifestBytes = 16 << 20

    /// Writes `image` atomically (temporary file, fsync, rename).
    public static func write(_ image: WeightImage, to path: String) throws {
        let manifest = image.manifest.jsonData()
        let dataOffset = roundUp(headerBytes + manifest.count, to: dataAlignment)
        var header = Data(magic)
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { header.append(contentsOf: $0) } }
        append(version)
        append(UInt32(0))
        append(UInt64(manifest.count))
        append(UInt64(dataOffset))
        let mapped = try image.map(mode: .shared)
        try AtomicFile.write(to: path) { out in
            try out.write(header + manifest + Data(count: dataOffset - headerBytes - manifest.count))
            try out.write(mapped.bytes)
        }
    }

    /// True when the file starts with the image magic (anything else is treated as a checkpoint).
    public static func isImageFile(path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        return (try? handle.read(upToCount: magic.count)).map(Array.init) == magic
    }

    /// Reads an image file into a new sealed memfd, checking the hash against its manifest.
    /// `name` replaces the name recorded in the file; `source` still names the original checkpoint.
    public static func load(path: String, name: String? = nil, hugePages: HugePagePolicy = .try) throws -> WeightImage {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ModelFileError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { SystemCall.close(fd) }
        func bad(_ problem: String) -> WeightImageError { .badImageFile(path: path, problem: problem) }

        var header = [UInt8](repeating: 0, count: headerBytes)
        guard try header.withUnsafeMutableBytes({ try readFully(fd, into: $0, at: 0) }) == headerBytes else {
            throw bad("shorter than its \(headerBytes)-byte header")
        }
        guard Array(header[0..<8]) == magic else { throw bad("wrong magic bytes (not made by 'srppo image build --out')") }
        func field<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
            header.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
        }
        guard field(UInt32.self, at: 8) == version else { throw bad("file format version \(field(UInt32.self, at: 8)), this engine reads \(version)") }
        let manifestBytes = Int(clamping: field(UInt64.self, at: 16))
        let dataOffset = Int(clamping: field(UInt64.self, at: 24))
        guard manifestBytes > 0, manifestBytes <= maxManifestBytes else {
            throw bad("manifest length \(manifestBytes) outside 1...\(maxManifestBytes)")
        }
        guard dataOffset >= headerBytes + manifestBytes, dataOffset % dataAlignment == 0 else {
            throw bad("data offset \(dataOffset) is not a multiple of \(dataAlignment) after the manifest")
        }
        var manifestData = Data(count: manifestBytes)
        let manifestRead = try manifestData.withUnsafeMutableBytes { try readFully(fd, into: $0, at: headerBytes) }
        guard manifestRead == manifestBytes else { throw bad("truncated in the manifest") }
        var manifest = try WeightImageManifest.decode(manifestData, image: path)
        if let name { manifest.name = name }
        try manifest.validateForEngine()
        var info = stat()
        try SystemCall.retrying("fstat") { fstat(fd, &info) }
        guard Int(info.st_size) >= dataOffset + manifest.dataBytes else {
            throw bad("\(info.st_size) bytes, the manifest needs \(dataOffset + manifest.dataBytes)")
        }
        return try WeightImage(template: manifest, hugePages: hugePages, expectedSHA256: manifest.sha256) { memory in
            guard try readFully(fd, into: memory, at: dataOffset) == memory.count else { throw bad("truncated in the data") }
        }
    }

    /// pread until `buffer` is full or the file ends; returns the bytes read.
    private static func readFully(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws -> Int {
        var done = 0
        while done < buffer.count {
            let n = try SystemCall.retrying("pread") {
                pread(fd, buffer.baseAddress! + done, min(buffer.count - done, 1 << 30), off_t(offset + done))
            }
            if n == 0 { break }
            done += n
        }
        return done
    }
}
