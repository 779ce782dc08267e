import CLinux
import Foundation
import SystemSupport
import WeightImage
#if canImport(Glibc)
import Glibc
#endif

/// Keeps the daemon's images in systemd's file descriptor store (`FDSTORE=1`, `FDNAME=…`;
/// `FileDescriptorStoreMax=` in the unit), so that after a restart the new process gets the sealed
/// memfds back (with LISTEN_FDS) and re-maps them instead of loading the checkpoints again.
///
/// Stored descriptors:
///   - `image-<first 16 hex digits of sha256>`: one per distinct image (PT and SFT share one when equal);
///   - `srppod-state`: a sealed memfd holding `StoredState` as JSON: each role's descriptor name,
///     manifest, source stamp and revision.
public final class ImageStore: @unchecked Sendable {
    static let stateName = "srppod-state"
    static let imagePrefix = "image-"

    struct StoredState: Codable {
        var version = 1
        var roles: [StoredRole]
    }

    struct StoredRole: Codable {
        var role: String
        var fdName: String
        var manifest: WeightImageManifest
        var source: SourceStamp
        var revision: Int

        enum CodingKeys: String, CodingKey {
            case role, fdName = "fd_name", manifest, source, revision
        }
    }

    private let log: DaemonLog
    private let lock = NSLock()
    /// Image descriptor names currently in the store.
    private var storedImages: Set<String> = []

    public init(log: DaemonLog) {
        self.log = log
    }

    static func fdName(sha256: String) -> String { imagePrefix + sha256.prefix(16) }

    // MARK: Saving

    /// Puts the pair's images and their description in the store, and takes out images no role uses
    /// any more (after a reload). Without a service manager this does nothing.
    public func save(_ pair: ModelPair) {
        guard ServiceManager.isSupervised else { return }
        lock.withLock {
            var wanted: [String: WeightImage] = [:]
            for model in [pair.pt, pair.sft] { wanted[Self.fdName(sha256: model.identity.sha256)] = model.image }
            for (name, image) in wanted.sorted(by: { $0.key < $1.key }) where !storedImages.contains(name) {
                if ServiceManager.notify("FDSTORE=1\nFDNAME=\(name)", passing: [image.fd]) {
                    storedImages.insert(name)
                } else {
                    log.warning("could not put image in the fd store", ["fd_name": name])
                }
            }
            let state = StoredState(roles: [pair.pt, pair.sft].map {
                StoredRole(role: $0.role, fdName: Self.fdName(sha256: $0.identity.sha256), manifest: $0.image.manifest,
                           source: $0.source, revision: $0.identity.revision)
            })
            do {
                let stateFD = try Self.sealedMemory(name: Self.stateName, contents: try JSONEncoder().encode(state))
                defer { SystemCall.close(stateFD) }
                ServiceManager.notify("FDSTOREREMOVE=1\nFDNAME=\(Self.stateName)")
                ServiceManager.notify("FDSTORE=1\nFDNAME=\(Self.stateName)", passing: [stateFD])
            } catch {
                log.warning("could not put the image description in the fd store: \(error)")
            }
            for name in storedImages.subtracting(wanted.keys).sorted() {
                ServiceManager.notify("FDSTOREREMOVE=1\nFDNAME=\(name)")
                storedImages.remove(name)
            }
        }
    }

    /// A memfd holding `contents`, sealed.
    static func sealedMemory(name: String, contents: Data) throws -> Int32 {
        let fd = try SystemCall.retrying("memfd_create") { srppo_memfd_create(name, srppo_mfd_cloexec | srppo_mfd_allow_sealing) }
        do {
            try contents.withUnsafeBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    offset += try SystemCall.retrying("write") { write(fd, bytes.baseAddress! + offset, bytes.count - offset) }
                }
            }
            try SystemCall.retrying("fcntl(F_ADD_SEALS)") {
                srppo_add_seals(fd, srppo_f_seal_write | srppo_f_seal_shrink | srppo_f_seal_grow | srppo_f_seal_seal)
            }
            return fd
        } catch {
            SystemCall.close(fd)
            throw error
        }
    }

    // MARK: Restoring

    /// What a restart found in the store.
    public struct Restored {
        /// Images by role, adopted and verified, with their revision and the stamp of the checkpoint
        /// they were built from.
        var images: [String: (image: WeightImage, revision: Int, source: SourceStamp)] = [:]
    }

    /// Takes the stored descriptors out of `passed`, and adopts the image of each role whose
    /// configured path still names the checkpoint it was built from (same stamp; a checkpoint that has
    /// disappeared counts as unchanged, since the stored image is then the only copy). An image that
    /// fails its checks (manifest, seals, hash), or is not of the configured `dtype`, is dropped with a
    /// warning: that role loads from disk.
    public func restore(from passed: inout PassedDescriptors, paths: [String: String], dtype: WeightDType? = nil) -> Restored {
        var restored = Restored()
        let stateFD = (try? passed.take(Self.stateName)) ?? nil
        let imageFDs = Dictionary(passed.take(prefix: Self.imagePrefix).map { ($0.name, $0.fd) }, uniquingKeysWith: { first, second in
            SystemCall.close(second)
            return first
        })
        defer { imageFDs.values.forEach(SystemCall.close) }
        guard let stateFD else {
            if !imageFDs.isEmpty { log.warning("fd store holds images but no \(Self.stateName): loading from disk") }
            return restored
        }
        defer { SystemCall.close(stateFD) }
        let state: StoredState
        do {
            state = try JSONDecoder().decode(StoredState.self, from: try Self.contents(of: stateFD))
        } catch {
            log.warning("unreadable \(Self.stateName) in the fd store (\(error)): loading from disk")
            return restored
        }
        var adopted: [String: WeightImage] = [:]
        for stored in state.roles {
            guard let path = paths[stored.role] else { continue }
            let fields: KeyValuePairs<String, String> = ["role": stored.role, "fd_name": stored.fdName]
            if let dtype, stored.manifest.dtype != dtype {
                log.info("stored image is \(stored.manifest.dtype.rawValue), --dtype \(dtype.rawValue) asked: loading from disk", fields)
                continue
            }
            if let now = SourceStamp.of(path) {
                guard now.sameCheckpoint(as: stored.source) else {
                    log.info("stored image is stale (\(path) changed since it was built): loading from disk", fields)
                    continue
                }
            } else {
                log.warning("\(path) is gone: serving the image kept in the fd store", fields)
            }
            do {
                let image: WeightImage
                if let shared = adopted[stored.fdName] {
                    image = try shared.renamed(stored.role)
                } else {
                    guard let fd = imageFDs[stored.fdName] else {
                        log.warning("fd store lacks the image descriptor: loading from disk", fields)
                        continue
                    }
                    var manifest = stored.manifest
                    manifest.name = stored.role
                    let copy = try SystemCall.retrying("dup") { srppo_dup_cloexec(fd) }
                    do {
                        image = try WeightImage.adopt(fd: copy, manifest: manifest)
                    } catch {
                        SystemCall.close(copy)
                        throw error
                    }
                    adopted[stored.fdName] = image
                }
                restored.images[stored.role] = (image, stored.revision, stored.source)
            } catch {
                log.warning("stored image refused (\(error)): loading from disk", fields)
            }
        }
        return restored
    }

    /// The whole contents of a (small) memfd.
    static func contents(of fd: Int32) throws -> Data {
        var info = stat()
        try SystemCall.retrying("fstat") { fstat(fd, &info) }
        let size = Int(info.st_size)
        guard size <= 64 << 20 else { throw DaemonError.startup("\(stateName) is \(size) bytes; at most 64 MiB expected") }
        var data = Data(count: size)
        try data.withUnsafeMutableBytes { bytes in
            var offset = 0
            while offset < size {
                let n = try SystemCall.retrying("pread") { pread(fd, bytes.baseAddress! + offset, size - offset, off_t(offset)) }
                guard n > 0 else { throw DaemonError.startup("\(stateName) ended after \(offset) of \(size) bytes") }
                offset += n
            }
        }
        return data
    }
}
