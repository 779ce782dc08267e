import CHugetlbfs
import Foundation

/// One size of the kernel's huge page pool (/sys/kernel/mm/hugepages/hugepages-<size>kB).
public struct HugePagePool: Codable, Sendable, Equatable {
    public let pageSize: Int
    /// Pages reserved for huge page use (`nr_hugepages`).
    public let total: Int
    /// Pages not yet handed to any mapping (`free_hugepages`); `reserved` of them are promised already.
    public let free: Int
    public let reserved: Int
    /// Where a hugetlbfs of this size is mounted, when libhugetlbfs is present and one is.
    public let mount: String?

    /// Pages a new mapping can still get.
    public var available: Int { max(0, free - reserved) }

    enum CodingKeys: String, CodingKey {
        case pageSize = "page_size", total, free, reserved, mount
    }
}

/// What the machine offers in huge pages. Counts come from /sys and /proc; libhugetlbfs, when it is
/// installed, adds the page sizes it knows and hugetlbfs mount points. It is loaded with dlopen, so
/// srppo runs without it.
public enum HugePages {
    static let sysfs = "/sys/kernel/mm/hugepages"

    public static var libhugetlbfsAvailable: Bool { srppo_hugetlbfs_available() != 0 }

    /// The default huge page size (the one `MFD_HUGETLB` without a size flag uses), in bytes.
    public static var defaultPageSize: Int? {
        let fromLibrary = srppo_hugetlbfs_default_page_size()
        if fromLibrary > 0 { return fromLibrary }
        guard let meminfo = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        for line in meminfo.split(separator: "\n") where line.hasPrefix("Hugepagesize:") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count >= 2, let kib = Int(fields[1]) { return kib * 1024 }
        }
        return nil
    }

    /// Huge page sizes the kernel supports, smallest first.
    public static var pageSizes: [Int] {
        var sizes = [Int](repeating: 0, count: 16)
        let count = Int(srppo_hugetlbfs_page_sizes(&sizes, Int32(sizes.count)))
        if count > 0 { return Array(sizes[0..<count]).sorted() }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: sysfs)) ?? []
        return entries.compactMap(pageSize(directory:)).sorted()
    }

    /// The pool of every supported page size.
    public static func pools() -> [HugePagePool] {
        pageSizes.compactMap(pool(pageSize:))
    }

    public static func pool(pageSize: Int) -> HugePagePool? {
        let directory = "\(sysfs)/hugepages-\(pageSize / 1024)kB"
        func count(_ file: String) -> Int? {
            guard let text = try? String(contentsOfFile: "\(directory)/\(file)", encoding: .utf8) else { return nil }
            return Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        guard let total = count("nr_hugepages"), let free = count("free_hugepages") else { return nil }
        let mount = srppo_hugetlbfs_mount_for_size(pageSize).map { String(cString: $0) }
        return HugePagePool(pageSize: pageSize, total: total, free: free, reserved: count("resv_hugepages") ?? 0, mount: mount)
    }

    /// The kernel's transparent-huge-page mode for shared memory (memfd and tmpfs): the bracketed word of
    /// /sys/kernel/mm/transparent_hugepage/shmem_enabled. MADV_HUGEPAGE only has an effect under
    /// `advise`, `within_size` or `always`.
    public static var shmemTransparentHugePageMode: String? {
        guard let text = try? String(contentsOfFile: "/sys/kernel/mm/transparent_hugepage/shmem_enabled", encoding: .utf8),
              let open = text.firstIndex(of: "["), let close = text.firstIndex(of: "]"), open < close else { return nil }
        return String(text[text.index(after: open)..<close])
    }

    /// "hugepages-2048kB" → 2 MiB.
    private static func pageSize(directory: String) -> Int? {
        guard directory.hasPrefix("hugepages-"), directory.hasSuffix("kB"),
              let kib = Int(directory.dropFirst("hugepages-".count).dropLast(2)) else { return nil }
        return kib * 1024
    }
}
