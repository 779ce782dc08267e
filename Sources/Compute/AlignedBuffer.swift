#if canImport(Glibc)
import Glibc
#endif

/// A heap block of `count` elements aligned to 64 bytes (one cache line, one AVX-512 vector),
/// zero-initialized and freed with the object. The base of parameter, gradient and activation storage.
public final class AlignedBuffer<Element> {
    public let pointer: UnsafeMutablePointer<Element>
    public let count: Int

    public init(count: Int) {
        precondition(count >= 0)
        let bytes = max(count * MemoryLayout<Element>.stride, 64)
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, 64, bytes) == 0, let raw else {
            fatalError("out of memory allocating \(bytes) bytes")
        }
        memset(raw, 0, bytes)
        pointer = raw.bindMemory(to: Element.self, capacity: max(count, 1))
        self.count = count
    }

    /// A buffer holding a copy of `values`.
    public convenience init(copying values: [Element]) {
        self.init(count: values.count)
        _ = UnsafeMutableBufferPointer(start: pointer, count: count).initialize(from: values)
    }

    deinit { free(pointer) }

    public var buffer: UnsafeMutableBufferPointer<Element> {
        UnsafeMutableBufferPointer(start: pointer, count: count)
    }

    public func zero() {
        memset(pointer, 0, count * MemoryLayout<Element>.stride)
    }
}
