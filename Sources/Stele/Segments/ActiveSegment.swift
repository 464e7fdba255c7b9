import SteleNative

/// The one segment that takes appends: a preallocated file mapped read-write.
///
/// Invariants:
/// - bytes `[0, writeOffset)` are the header and complete frames; `[writeOffset, capacity)` is zero;
/// - `offsets[i]` is the frame offset of sequence `header.firstSequence + i`;
/// - there is always room left for the largest footer, so sealing never needs to grow the file.
/// Frames are written into the mapping, or, for a batch, staged in memory and handed to the
/// kernel with `pwrite` (see ``beginStaging()``); both land in the same page cache, which the
/// mapping shows. Nothing is durable until ``FileSystem/syncMapped`` covers it (the store's
/// commit policy decides when); `msync` syncs the file's range however its pages were dirtied.
package final class ActiveSegment {
    private let fs: any FileSystem
    /// Whether each store into the mapping is reported to `fs` (only the power-cut model asks).
    private let reportsStores: Bool
    package let path: String
    package private(set) var header: SegmentHeader
    package let region: MappedRegion
    package private(set) var fd: FileDescriptor?
    // The fields written per record opt out of dynamic exclusivity checks (a tenth of a 100 B
    // record's own cost): every access holds the store's lock, and the two threads of a batch
    // touch disjoint fields (see `SegmentLog+Batch.swift`), which the checks, per thread, could
    // not see anyway.
    @exclusivity(unchecked) package private(set) var writeOffset: Int
    @exclusivity(unchecked) package private(set) var offsets: [UInt32]
    @exclusivity(unchecked) package private(set) var contentHasher: SHA256Hasher
    private var prefaultedEnd: Int
    /// Frames before this offset have had their writeback started (see ``startWritebackIfDue()``).
    private var writebackStarted = 0
    /// Writeback starts on another thread; joined before the seal and the descriptor's close (a
    /// sync beside one is fine: the kernel orders the two).
    private let writeback: BackgroundWriteback
    /// While a batch stages its frames: the file offset of the staging buffer's first byte.
    @exclusivity(unchecked) private var stagedFrom: Int?
    /// Memory for staged frames, made at the first batch and kept (nil if it could not be).
    private var staging: MappedRegion?
    /// A writer over all of `staging`, kept so that writing a frame takes no reference count.
    private var stagingBuffer: ByteWriter?
    private static let stagingCapacity = 1 << 20

    /// How far ahead of the write position pages are prefaulted (first-touch faults cost up to
    /// ten times the copy itself, see `SWIFT-NOTES.md`).
    private static let prefaultWindow = 4 << 20
    /// How many bytes of new frames make a writeback start worth its system call.
    private static let writebackChunk = 8 << 20

    /// Starts writing back, without waiting, the whole pages of frames written since the last
    /// start, once there are ``writebackChunk`` bytes of them. The disk then works while the
    /// next records are appended, instead of all at once when the segment is synced or sealed:
    /// large values used to alternate between copying (CPU) and a seal's `msync` (disk), each
    /// waiting for the other. Page 0, the header, is updated in place and left to the syncs; the
    /// pages started are never written again. Not a durability point: nothing is promised until
    /// a sync returns. The call itself (the kernel building the I/O for 8 MiB of pages, some
    /// 2 ms) runs on another thread, off the writer's path; only the range is decided here.
    package func startWritebackIfDue() {
        guard let fd else { return }
        let page = MappedRegion.pageSize
        let start = max(writebackStarted, page), end = writeOffset / page * page
        guard end - start >= ActiveSegment.writebackChunk else { return }
        writeback.start([(fd, start, end - start)])
        writebackStarted = end
    }

    /// Starts writeback of the frames written since the last start, at once and on this thread:
    /// a batch about to be synced (``CommitPolicy/everyBatch``) gets its I/O going while its
    /// hashing finishes, so the sync that follows finds it under way. Not a durability point.
    package func startWritebackNow() {
        guard let fd else { return }
        let page = MappedRegion.pageSize
        let start = max(writebackStarted, page)
        guard writeOffset > start else { return }
        fs.startWriteback(fd, offset: start, length: writeOffset - start)
        // The last page is partly written: the next batch's start takes it again.
        writebackStarted = writeOffset / page * page
    }

    package var capacity: Int { region.count }
    package var recordCount: Int { offsets.count }
    package var lastSequence: UInt64? { offsets.isEmpty ? nil : header.firstSequence + UInt64(offsets.count - 1) }

    package init(fs: any FileSystem, path: String, header: SegmentHeader, region: MappedRegion, fd: FileDescriptor?,
                 scan: SegmentScan) {
        self.fs = fs
        self.reportsStores = fs.observesMappedStores
        self.path = path
        self.header = header
        self.region = region
        self.fd = fd
        self.writeOffset = scan.end
        self.offsets = scan.offsets
        self.contentHasher = scan.contentHasher
        self.prefaultedEnd = scan.end
        self.writeback = BackgroundWriteback(fs: fs)
    }

    /// Creates segment `header.index` in `directory`: written to a temporary name, preallocated,
    /// synced, then renamed into place and the directory synced, so a crash leaves either no
    /// segment or a complete empty one. On failure nothing is left behind.
    package static func create(fs: any FileSystem, directory: String, header: SegmentHeader,
                               capacity: Int) throws -> ActiveSegment {
        let path = directory + "/" + SegmentFiles.name(header.index)
        let temporary = directory + "/" + SegmentFiles.name(header.index) + ".tmp"
        if try fs.status(temporary) != nil { try fs.remove(temporary) }
        let fd = try fs.open(temporary, .createNew(permissions: 0o644))
        var renamed = false
        do {
            try fs.allocate(fd, offset: 0, length: capacity)
            try header.encoded.withUnsafeBytes { try fs.write(fd, $0, at: 0) }
            try fs.syncAll(fd)
            try fs.rename(temporary, to: path)
            renamed = true
            // A failed directory sync leaves the name possibly not durable: the segment is
            // removed and made again by the next append, whose directory sync must succeed
            // before any record goes in.
            try fs.syncDirectory(directory)
            let region = try fs.map(FileDescriptor(raw: fd.raw, path: path), length: capacity, writable: true)
            let scan = SegmentScan(end: SegmentHeader.size, nextSequence: header.firstSequence,
                                   lastTimestamp: header.createdAt, frontier: Frontier())
            let segment = ActiveSegment(fs: fs, path: path, header: header, region: region,
                                        fd: FileDescriptor(raw: fd.raw, path: path), scan: scan)
            // No prefault here: batches write through `pwrite` and never need one, and the first
            // write through the mapping prefaults its window itself.
            return segment
        } catch {
            fs.close(fd)
            try? fs.remove(renamed ? path : temporary)
            throw error
        }
    }

    /// Whether a frame of `length` bytes fits while leaving room for the largest footer.
    @inline(__always)
    package func hasRoom(for length: Int) -> Bool {
        writeOffset + length + SegmentFooter.maxSize <= capacity
    }

    /// Writes one frame at the end and accounts for it; the caller checked ``hasRoom(for:)``.
    @inline(__always)
    package func append(type: RecordType, flags: UInt8, sequence: UInt64, timestamp: Int64,
                        namespace: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer,
                        stored: UnsafeRawBufferPointer, valueLength: Int, leafHash: Digest) {
        writeFrame(type: type, flags: flags, sequence: sequence, timestamp: timestamp, namespace: namespace,
                   key: key, stored: stored, valueLength: valueLength)
        absorb(leafHash: leafHash)
    }

    /// The frame half of ``append``: the bytes, the offset table and the write position. A
    /// batch writes its frames with this on one thread while ``absorb(leafHash:)`` takes the
    /// leaves on another; the two touch disjoint fields.
    @inline(__always)
    package func writeFrame(type: RecordType, flags: UInt8, sequence: UInt64, timestamp: Int64,
                            namespace: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer,
                            stored: UnsafeRawBufferPointer, valueLength: Int) {
        let length = Frame.length(namespace: namespace.count, key: key.count, stored: stored.count)
        let writer: ByteWriter, at: Int
        var staged = false
        if let from = stagedFrom, let buffer = stagingBuffer, length <= buffer.count {
            if writeOffset + length - from > buffer.count { flushStaged() }
            writer = buffer
            at = writeOffset - (stagedFrom ?? writeOffset)
            staged = true
        } else {
            if stagedFrom != nil { flushStaged() }
            if writeOffset + length > prefaultedEnd { prefault(through: writeOffset + length) }
            writer = region.writer(writeOffset ..< writeOffset + length)
            at = 0
        }
        _ = Frame.encode(into: writer, at: at, type: type, flags: flags, sequence: sequence, timestamp: timestamp,
                         namespace: namespace, key: key, stored: stored, valueLength: valueLength)
        if reportsStores && !staged { fs.storedIntoMapping(region, writeOffset ..< writeOffset + length) }
        offsets.append(UInt32(writeOffset))
        writeOffset += length
        // A frame too large to stage went through the mapping: staging resumes after it.
        if !staged && stagedFrom != nil { stagedFrom = writeOffset }
    }

    /// The hash half of ``append``: adds a record's leaf hash to the content digest, in order.
    @inline(__always)
    package func absorb(leafHash: Digest) {
        contentHasher.update(leafHash)
    }

    private func prefault(through offset: Int) {
        let end = min(capacity, offset + ActiveSegment.prefaultWindow)
        region.prefaultForWriting(prefaultedEnd ..< end)
        prefaultedEnd = end
    }

    /// From here to ``endStaging()``, ``writeFrame`` encodes frames into a buffer and hands
    /// them to the kernel with `pwrite`, a megabyte at a time and at the end. A page first written
    /// through the mapping is faulted in and zeroed by the kernel, then written; `pwrite` fills a
    /// page-cache page without zeroing it or mapping it into this process, which also spares
    /// unmapping it at the seal and write-protecting it for writeback. Measured here with
    /// writeback running: 14 ms per 60 MB of 140 KB batches, against 31-38 ms for prefault and
    /// copy. Frames larger than the buffer still go through the mapping.
    package func beginStaging() {
        guard fd != nil else { return }
        if staging == nil, let memory = try? MappedRegion.anonymous(count: ActiveSegment.stagingCapacity,
                                                                   path: path + " (staging)", writable: true) {
            staging = memory
            stagingBuffer = memory.writer(0 ..< memory.count)
        }
        if stagingBuffer != nil { stagedFrom = writeOffset }
    }

    /// Writes out what is staged and goes back to writing through the mapping. Must be called
    /// before the frames are read or synced (the batch's caller does, before it returns).
    package func endStaging() {
        guard stagedFrom != nil else { return }
        flushStaged()
        stagedFrom = nil
    }

    /// Writes the staged frames `[stagedFrom, writeOffset)` to the file. Should `pwrite` fail
    /// (an I/O error; the space is preallocated), the bytes are copied through the mapping
    /// instead, as if never staged: any error then surfaces at the next sync, as it would have.
    private func flushStaged() {
        guard let from = stagedFrom, let buffer = stagingBuffer, writeOffset > from else { return }
        let bytes = buffer.view.slice(0, writeOffset - from)
        do {
            guard let fd else { throw SteleError.readOnly }
            try bytes.withBuffer { try fs.write(fd, $0, at: from) }
        } catch {
            if writeOffset > prefaultedEnd { prefault(through: writeOffset) }
            bytes.withBuffer { region.writer(from ..< writeOffset).put($0, at: 0) }
            if reportsStores { fs.storedIntoMapping(region, from ..< writeOffset) }
        }
        stagedFrom = writeOffset
        // The pages just written are in the page cache: a later write through the mapping only
        // needs the one it continues prefaulted, not the whole stretch behind it.
        let page = MappedRegion.pageSize
        prefaultedEnd = max(prefaultedEnd, writeOffset / page * page)
    }

    /// Records in the header that frames before `end` are on disk (a completed sync covered
    /// them). The header reaches the disk with the next sync; until then the older value stands,
    /// which only ever under-claims.
    package func markDurable(through end: Int) {
        guard UInt64(end) > header.durableEnd, fd != nil else { return }
        header.durableEnd = UInt64(end)
        header.encode(into: region.writer(0 ..< SegmentHeader.size))
        if reportsStores { fs.storedIntoMapping(region, 0 ..< SegmentHeader.size) }
    }

    /// Encodes the header into the mapping again and syncs it (after recovery found a
    /// durable-end update cut short, see ``SegmentHeader/recoverInterruptedUpdate(_:candidates:)``).
    package func rewriteHeader() throws {
        header.encode(into: region.writer(0 ..< SegmentHeader.size))
        if reportsStores { fs.storedIntoMapping(region, 0 ..< SegmentHeader.size) }
        try fs.syncMapped(region, 0 ..< SegmentHeader.size)
    }

    /// Writes `[0, writeOffset)` through `pwrite` and `fdatasync`s it, so bytes that were only in
    /// the page cache (say, after a failed writeback in a process that crashed) reach the disk.
    package func rewriteThroughCache() throws {
        guard let fd else { return }
        try region.view(0 ..< writeOffset).withBuffer { try fs.write(fd, $0, at: 0) }
        try fs.syncData(fd)
        markDurable(through: writeOffset)
        try fs.syncMapped(region, 0 ..< SegmentHeader.size)
    }

    /// Zeroes `[offset, offset + length)` (a discarded torn tail) and makes that durable.
    package func discardTail(fs: any FileSystem, offset: Int, length: Int) throws {
        region.writer(offset ..< offset + length).zero(0 ..< length)
        if reportsStores { fs.storedIntoMapping(region, offset ..< offset + length) }
        try fs.syncMapped(region, offset ..< offset + length)
    }

    /// Seals the segment: writes `footer` after the frames, syncs it, truncates the file to its
    /// exact length, makes it read-only (0444) and syncs again. Returns the sealed segment,
    /// mapped read-only. A crash at any point leaves a state that ``SegmentScan`` recognises.
    package func seal(fs: any FileSystem, footer: SegmentFooter, syncedThrough: Int) throws -> SealedSegment {
        writeback.join()
        guard let fd else { throw SteleError.readOnly }
        let bytes = footer.encoded
        let end = writeOffset + bytes.count
        region.writer(writeOffset ..< end).put(bytes, at: 0)
        if reportsStores { fs.storedIntoMapping(region, writeOffset ..< end) }
        try fs.syncMapped(region, min(syncedThrough, writeOffset) ..< end)
        try fs.truncate(fd, to: end)
        try fs.setPermissions(fd, 0o444)
        try fs.syncAll(fd)
        fs.close(fd)
        self.fd = nil
        return try SealedSegment.open(fs: fs, path: path, expectedIndex: header.index)
    }

    /// Releases the file descriptor (the mapping goes with the last reference).
    package func close() {
        writeback.join()
        if let fd { fs.close(fd) }
        fd = nil
    }

    deinit { close() }
}
