import CLinux
import Foundation
#if canImport(Glibc)
import Glibc
import SystemSupport
#endif

extension WeightImage {
    /// Takes over an image memfd that outlived the process that built it (a daemon's image kept in
    /// systemd's fd store across a restart): checks the manifest against this engine, the memory's
    /// size and seals. The seals already guarantee the bytes are the ones hashed when the image was
    /// built; `verifyHash` re-hashes them anyway against `manifest.sha256` (about 0.3 s per 500 MB,
    /// most of a restart). On success the returned image owns `fd`; on failure `fd` is left open for
    /// the caller.
    public static func adopt(fd: Int32, manifest: WeightImageManifest, verifyHash: Bool = false) throws -> WeightImage {
        // `map` checks the manifest against this engine and the memory's size and seals (and the hash
        // when asked); the mapping itself is not kept.
        let hashStart = DispatchTime.now()
        _ = try MappedWeightImage.map(fd: fd, manifest: manifest, mode: .shared, verifyHash: verifyHash)
        let hashEnd = DispatchTime.now()
        var info = stat()
        try SystemCall.retrying("fstat") { fstat(fd, &info) }
        let size = Int(info.st_size)
        // hugetlbfs reports its page size as the block size.
        let systemPage = Int(sysconf(Int32(_SC_PAGESIZE)))
        let pageSize = Int(info.st_blksize)
        let backing = pageSize > systemPage
            ? ImageBacking(kind: .hugetlb, pageSize: pageSize, shmemTransparentHugePages: nil, hugePageFallback: nil)
            : ImageBacking(kind: .normal, pageSize: systemPage, shmemTransparentHugePages: HugePages.shmemTransparentHugePageMode,
                           hugePageFallback: nil)
        let statistics = BuildStatistics(fillSeconds: 0, hashSeconds: seconds(hashStart, hashEnd), hashedBytes: manifest.dataBytes)
        return WeightImage(manifest: manifest, backing: backing, fd: fd, memoryBytes: size, statistics: statistics)
    }

    /// The same memory offered under another name (a duplicated descriptor): a daemon serving one
    /// checkpoint as both PT and SFT keeps one physical copy.
    public func renamed(_ name: String) throws -> WeightImage {
        let copy = try SystemCall.retrying("fcntl(F_DUPFD_CLOEXEC)") { srppo_dup_cloexec(fd) }
        var manifest = self.manifest
        manifest.name = name
        return WeightImage(manifest: manifest, backing: backing, fd: copy, memoryBytes: memoryBytes, statistics: statistics)
    }
}
