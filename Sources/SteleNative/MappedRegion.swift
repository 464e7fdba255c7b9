#if canImport(Glibc)
import Glibc
#endif
import CSteleSys

/// A memory mapping of a file, unmapped when the last reference goes away.
///
/// Invariant: `base ..< base + count` stays mapped for the lifetime of this object, so any
/// ``ByteView`` or ``ByteWriter`` made from it is valid while the caller holds the region.
/// Readers take a strong reference before they touch the bytes; that is what lets a segment be
/// sealed and remapped while a reader or a sync is still using the old mapping.
@usableFromInline package final class MappedRegion: @unchecked Sendable {
    @usableFromInline package let base: UnsafeMutableRawPointer
    @usableFromInline package let count: Int
    @usableFromInline package let writable: Bool
    /// The path of the mapped file, for error messages.
    package let path: String
    private let release: @Sendable (UnsafeMutableRawPointer, Int) -> Void

    package init(base: UnsafeMutableRawPointer, count: Int, writable: Bool, path: String,
                 release: @escaping @Sendable (UnsafeMutableRawPointer, Int) -> Void) {
        self.base = base
        self.count = count
        self.writable = writable
        self.path = path
        self.release = release
    }

    deinit { release(base, count) }

    /// A bounds-checked read view of `range`.
    @inlinable package func view(_ range: Range<Int>) -> ByteView {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "view outside mapping")
        return ByteView(base: UnsafeRawPointer(base + range.lowerBound), count: range.count)
    }

    /// A view of the whole mapping.
    @inlinable package var wholeView: ByteView { view(0 ..< count) }

    /// A bounds-checked writer over `range`; the mapping must be writable.
    @inlinable package func writer(_ range: Range<Int>) -> ByteWriter {
        precondition(writable, "write to a read-only mapping")
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "write outside mapping")
        return ByteWriter(base: base + range.lowerBound, count: range.count)
    }

    /// Prefaults `range` for writing so that appends do not stall on first-touch page faults.
    /// Best effort: on kernels without `MADV_POPULATE_WRITE` (before 5.14) it does nothing.
    package func prefaultForWriting(_ range: Range<Int>) {
        guard writable else { return }
        let page = MappedRegion.pageSize
        let start = range.lowerBound / page * page
        let end = min(count, (range.upperBound + page - 1) / page * page)
        guard end > start else { return }
        _ = stele_populate_write(base + start, end - start)
    }

    /// The system page size.
    package static let pageSize: Int = Int(sysconf(Int32(_SC_PAGESIZE)))
}

extension MappedRegion {
    /// `count` bytes of private anonymous memory (zeroed), released with the region; `writable`
    /// for a scratch buffer the caller writes through ``writer(_:)``.
    /// - Throws: ``SystemError`` if `mmap` fails.
    package static func anonymous(count: Int, path: String, writable: Bool = false) throws(SystemError) -> MappedRegion {
        let length = max(count, 1)
        guard let address = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), address != MAP_FAILED else {
            throw SystemError(operation: "mmap (anonymous)", path: path, errno: errno)
        }
        return MappedRegion(base: address, count: count, writable: writable, path: path) { base, _ in _ = munmap(base, length) }
    }
}

extension MappedRegion {
    /// `msync(MS_SYNC)` of the pages holding `range`: the stores into them are durable when it
    /// returns (the range is widened down to a page boundary, as `msync` requires).
    package func sync(_ range: Range<Int>) throws(SystemError) {
        let page = MappedRegion.pageSize
        let start = range.lowerBound / page * page
        let end = min(count, range.upperBound)
        guard end > start else { return }
        _ = try retrying("msync", path) { msync(base + start, end - start, MS_SYNC) }
    }
}
