import Synchronization
import SteleNative

/// A sealed segment: immutable, read-only on disk, mapped read-only.
///
/// Opening one is cheap (header and footer only); per-frame checks happen on every read, and
/// a full check is `stele fsck`'s job. The table of frame offsets is built on first use.
/// `@unchecked Sendable`: every stored property is immutable after `open`, except the offset
/// table, which is built under `building` and published once through an atomic pointer.
package final class SealedSegment: @unchecked Sendable {
    package let path: String
    package let header: SegmentHeader
    package let footer: SegmentFooter
    package let region: MappedRegion
    /// The frame offsets, built once on first use and then read without a lock.
    private let offsets = PublishedOnce<OffsetTable>()

    private final class OffsetTable {
        let offsets: [UInt32]
        init(_ offsets: [UInt32]) { self.offsets = offsets }
    }

    private init(path: String, header: SegmentHeader, footer: SegmentFooter, region: MappedRegion) {
        self.path = path
        self.header = header
        self.footer = footer
        self.region = region
    }

    package var fileSize: Int { region.count }

    /// Opens and maps a sealed segment file, checking header, footer, seal hash and index.
    package static func open(fs: any FileSystem, path: String, expectedIndex: UInt64) throws -> SealedSegment {
        let fd = try fs.open(path, .readOnly)
        defer { fs.close(fd) }
        let size = try fs.size(fd)
        guard size >= SegmentHeader.size + SegmentFooter.fixedSize, size <= Limits.maxSegmentSize else {
            throw SteleError.corruption(Corruption(file: path, detail: "sealed segment of \(size) bytes is impossible"))
        }
        let region = try fs.map(fd, length: size, writable: false)
        let (header, footer) = try checkedHeaderAndFooter(region.wholeView, path: path, expectedIndex: expectedIndex)
        return SealedSegment(path: path, header: header, footer: footer, region: region)
    }

    /// The header and footer of a sealed segment's bytes, checked against each other: the index
    /// the file name gives, first sequence, durable end and seal hash (frames are checked per read).
    package static func checkedHeaderAndFooter(_ view: ByteView, path: String, expectedIndex: UInt64) throws -> (SegmentHeader, SegmentFooter) {
        let header = try SealedSegment.check(SegmentHeader.decode(view), path: path, offset: 0)
        let footer = try SealedSegment.check(SegmentFooter.decodeAtEnd(view), path: path, offset: nil)
        guard header.index == expectedIndex else {
            throw SteleError.corruption(Corruption(file: path, offset: 32, detail: "header says segment \(header.index), file name says \(expectedIndex)"))
        }
        guard footer.firstSequence == header.firstSequence else {
            throw SteleError.corruption(Corruption(file: path, offset: Int(footer.framesEnd) + 24,
                                                   detail: "footer first sequence \(footer.firstSequence) differs from header \(header.firstSequence)"))
        }
        guard header.durableEnd == footer.framesEnd else {
            throw SteleError.corruption(Corruption(file: path, offset: 88, detail: "durable end \(header.durableEnd) differs from the frames end \(footer.framesEnd)"))
        }
        guard footer.computeSealHash(header: header) == footer.sealHash else {
            throw SteleError.corruption(Corruption(file: path, offset: Int(footer.framesEnd),
                                                   detail: "seal hash does not match header and footer"))
        }
        return (header, footer)
    }

    /// Turns a decoding failure into a typed error.
    package static func check<T>(_ result: Result<T, FormatDefect>, path: String, offset: Int?) throws -> T {
        switch result {
        case .success(let value): return value
        case .failure(.unsupportedVersion(let found, let supported)):
            throw SteleError.unsupportedVersion(file: path, found: found, supported: supported)
        case .failure(let defect):
            throw SteleError.corruption(Corruption(file: path, offset: offset, detail: defect.description))
        }
    }

    /// The frame offset of `sequence`, which must lie in this segment.
    package func offset(of sequence: UInt64) throws -> Int {
        Int(try offsetTable().offsets[Int(sequence - header.firstSequence)])
    }

    private func offsetTable() throws -> OffsetTable {
        try offsets.value { OffsetTable(try buildOffsets()) }
    }

    private func buildOffsets() throws -> [UInt32] {
        try SealedSegment.frameOffsets(region.wholeView, footer: footer, path: path)
    }

    /// Walks the frame lengths from the header to the footer (checksums are checked per read):
    /// the offset of each frame, as many as the footer counts.
    package static func frameOffsets(_ view: ByteView, footer: SegmentFooter, path: String) throws -> [UInt32] {
        let end = Int(footer.framesEnd)
        var offsets: [UInt32] = []
        offsets.reserveCapacity(Int(min(footer.recordCount, 1 << 20)))
        var offset = SegmentHeader.size
        while offset < end {
            let length = offset + 4 <= end ? Int(view.u32(offset)) : 0
            guard length >= Frame.overhead, length <= end - offset else {
                throw SteleError.corruption(Corruption(file: path, offset: offset, detail: "invalid frame length \(length)"))
            }
            offsets.append(UInt32(offset))
            offset += length
        }
        guard UInt64(offsets.count) == footer.recordCount else {
            throw SteleError.corruption(Corruption(file: path, detail: "footer counts \(footer.recordCount) records, frames hold \(offsets.count)"))
        }
        return offsets
    }
}
