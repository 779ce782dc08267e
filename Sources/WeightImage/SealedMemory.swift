import CLinux
import Foundation
#if canImport(Glibc)
import Glibc
import SystemSupport
#endif

/// Whether an image may, must or must not live in huge pages (`--hugepages off|try|require`).
public enum HugePagePolicy: String, CaseIterable, Codable, Sendable {
    case off, `try`, require
}

/// The memory behind an image, as reported to operators and clients.
public struct ImageBacking: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        /// Huge pages from the kernel's reserved pool (memfd with MFD_HUGETLB).
        case hugetlb
        /// Ordinary shared memory pages, with transparent-huge-page advice.
        case normal
    }

    public let kind: Kind
    public let pageSize: Int
    /// Normal pages: the kernel's THP mode for shared memory, which decides whether MADV_HUGEPAGE has any
    /// effect (it does under advise, within_size and always).
    public let shmemTransparentHugePages: String?
    /// Huge pages were asked for (`try`) but not used: why.
    public let hugePageFallback: String?

    enum CodingKeys: String, CodingKey {
        case kind, pageSize = "page_size", shmemTransparentHugePages = "shmem_thp", hugePageFallback = "hugepage_fallback"
    }

    /// One line for logs: "hugetlb, 2048 KiB pages" or "normal, 4 KiB pages, THP advised (shmem_enabled: never)".
    public var summary: String {
        var text = "\(kind.rawValue), \(pageSize / 1024) KiB pages"
        if kind == .normal { text += ", THP advised (shmem_enabled: \(shmemTransparentHugePages ?? "unknown"))" }
        if let hugePageFallback { text += "; huge pages not used: \(hugePageFallback)" }
        return text
    }
}

/// Seals that make a memfd immutable: no writes (nor writable shared mappings), no resizing, no
/// further seal changes.
enum Seals {
    static let required: [(flag: Int32, name: String)] = [
        (srppo_f_seal_write, "F_SEAL_WRITE"), (srppo_f_seal_shrink, "F_SEAL_SHRINK"),
        (srppo_f_seal_grow, "F_SEAL_GROW"), (srppo_f_seal_seal, "F_SEAL_SEAL"),
    ]

    /// Names of the required seals `fd` lacks.
    static func missing(on fd: Int32) throws -> [String] {
        let present = try SystemCall.retrying("fcntl(F_GET_SEALS)") { srppo_get_seals(fd) }
        return required.filter { present & $0.flag == 0 }.map(\.name)
    }
}

/// A memfd being filled with an image through a writable shared mapping. `seal()` unmaps it and seals
/// the memfd; from then on nobody, the builder included, can change the bytes.
final class MemoryFileBuilder {
    let fd: Int32
    /// The memfd's size: the data rounded up to whole pages.
    let size: Int
    let bytes: UnsafeMutableRawBufferPointer
    let backing: ImageBacking
    private var sealed = false

    private init(fd: Int32, size: Int, mapping: UnsafeMutableRawPointer, backing: ImageBacking) {
        self.fd = fd
        self.size = size
        bytes = UnsafeMutableRawBufferPointer(start: mapping, count: size)
        self.backing = backing
    }

    deinit {
        if !sealed {
            munmap(bytes.baseAddress, size)
            SystemCall.close(fd)
        }
    }

    /// A memfd of at least `dataBytes`, its memory committed (so running out of memory is an error here,
    /// not a SIGBUS later). Huge pages are tried first unless `hugePages` is `.off`; whether the pool can
    /// back the image is decided by trying, since an empty pool lets memfd_create and ftruncate succeed.
    static func create(name: String, dataBytes: Int, hugePages: HugePagePolicy) throws -> MemoryFileBuilder {
        precondition(dataBytes > 0)
        var fallback: String?
        if hugePages != .off {
            switch tryHugePages(name: name, dataBytes: dataBytes) {
            case let .success(builder):
                return builder
            case let .failure(reason):
                if hugePages == .require {
                    let pageSize = HugePages.defaultPageSize
                    throw WeightImageError.noHugePages(bytes: dataBytes, pageSize: pageSize,
                                                       available: pageSize.flatMap(HugePages.pool(pageSize:))?.available,
                                                       reason: reason.text)
                }
                fallback = reason.text
            }
        }
        return try normalPages(name: name, dataBytes: dataBytes, hugePageFallback: fallback)
    }

    struct Reason: Error { let text: String }

    private static func tryHugePages(name: String, dataBytes: Int) -> Result<MemoryFileBuilder, Reason> {
        guard let pageSize = HugePages.defaultPageSize else { return .failure(Reason(text: "the kernel reports no huge page size")) }
        let size = roundUp(dataBytes, to: pageSize)
        let fd = srppo_memfd_create(name, srppo_mfd_cloexec | srppo_mfd_allow_sealing | srppo_mfd_hugetlb)
        guard fd >= 0 else { return .failure(Reason(text: "memfd_create(MFD_HUGETLB): \(String(cString: strerror(errno)))")) }
        do {
            let mapping = try mapAndCommit(fd: fd, size: size, adviseTransparentHugePages: false)
            return .success(MemoryFileBuilder(fd: fd, size: size, mapping: mapping,
                                              backing: ImageBacking(kind: .hugetlb, pageSize: pageSize,
                                                                    shmemTransparentHugePages: nil, hugePageFallback: nil)))
        } catch {
            SystemCall.close(fd)
            let pool = HugePages.pool(pageSize: pageSize)
            let counts = pool.map { "; pool of \(pageSize / 1024) KiB pages: \($0.available) available, \(size / pageSize) needed" } ?? ""
            return .failure(Reason(text: "\(error)\(counts)"))
        }
    }

    private static func normalPages(name: String, dataBytes: Int, hugePageFallback: String?) throws -> MemoryFileBuilder {
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let size = roundUp(dataBytes, to: pageSize)
        let fd = try SystemCall.retrying("memfd_create") { srppo_memfd_create(name, srppo_mfd_cloexec | srppo_mfd_allow_sealing) }
        do {
            let mapping = try mapAndCommit(fd: fd, size: size, adviseTransparentHugePages: true)
            return MemoryFileBuilder(fd: fd, size: size, mapping: mapping,
                                     backing: ImageBacking(kind: .normal, pageSize: pageSize,
                                                           shmemTransparentHugePages: HugePages.shmemTransparentHugePageMode,
                                                           hugePageFallback: hugePageFallback))
        } catch let error as SystemCallError where error.errno == ENOMEM || error.errno == ENOSPC {
            SystemCall.close(fd)
            throw WeightImageError.outOfMemory(bytes: size, backing: "shared memory", reason: "\(error)")
        } catch {
            SystemCall.close(fd)
            throw error
        }
    }

    /// ftruncate, map writable shared and fault every page in with MADV_POPULATE_WRITE, which reports
    /// ENOMEM instead of raising SIGBUS on a later write. THP advice, when asked, comes before the faults
    /// so that the kernel can use huge pages for them.
    private static func mapAndCommit(fd: Int32, size: Int, adviseTransparentHugePages: Bool) throws -> UnsafeMutableRawPointer {
        try SystemCall.retrying("ftruncate") { ftruncate(fd, off_t(size)) }
        guard let mapping = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), mapping != MAP_FAILED else {
            throw SystemCallError(call: "mmap", errno: errno)
        }
        do {
            // Advice only: kernels without THP for shared memory reject or ignore it.
            if adviseTransparentHugePages { _ = madvise(mapping, size, MADV_HUGEPAGE) }
            try SystemCall.retrying("madvise(MADV_POPULATE_WRITE)") { madvise(mapping, size, srppo_madv_populate_write) }
        } catch {
            munmap(mapping, size)
            throw error
        }
        return mapping
    }

    /// Unmaps the writable mapping (F_SEAL_WRITE is refused while one exists) and seals the memfd.
    /// Returns the descriptor, which the caller now owns.
    func seal() throws -> Int32 {
        precondition(!sealed)
        munmap(bytes.baseAddress, size)
        sealed = true
        let all = Seals.required.reduce(Int32(0)) { $0 | $1.flag }
        do {
            try SystemCall.retrying("fcntl(F_ADD_SEALS)") { srppo_add_seals(fd, all) }
        } catch {
            SystemCall.close(fd)
            throw error
        }
        return fd
    }
}

func roundUp(_ value: Int, to multiple: Int) -> Int {
    (value + multiple - 1) / multiple * multiple
}
