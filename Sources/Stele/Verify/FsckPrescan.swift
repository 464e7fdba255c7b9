import SteleNative

/// The half of fsck that runs ahead on the second core: everything about a segment that needs
/// nothing from the segments before it.
extension FsckRun {
    /// The part of a segment's check that needs nothing from the segments before it: map it,
    /// decode header and footer, decode and checksum every frame, hash every leaf. It runs on the
    /// second core for the next segment while this one is checked in order.
    struct Prescan: @unchecked Sendable {
        enum Stop {
            case tail(offset: Int, bytes: Int)
            case damaged(offset: Int, reason: String)
            case badValue(offset: Int, sequence: UInt64)
        }
        var path: String
        var size = 0
        var region: MappedRegion?
        var header: SegmentHeader?
        /// Set when the header's checksum fails only because a crash came between the two
        /// stores of a durable-end update: the durable end the header is read with (see
        /// ``SegmentHeader/recoverInterruptedUpdate(_:candidates:)``); opening the store
        /// writes the header whole again.
        var interruptedHeaderUpdate: UInt64?
        var footer: SegmentFooter?
        var frames: [FrameInfo] = []
        var leaves: [Digest] = []
        var stop: Stop?
        var failure: (any Error)?
        /// Where the valid frames end.
        var end = SegmentHeader.size
        /// Puts and tombstones before the snapshot's size, and the first one missing from it.
        var snapshotVersionsSeen = 0
        var snapshotMissing: (sequence: UInt64, offset: Int)?
    }

    /// Whether the snapshot index holds this put or tombstone.
    static func snapshotHolds(_ keys: KeyIndex, _ frame: FrameInfo, _ view: ByteView) -> Bool {
        view.slice(frame.namespace.lowerBound, frame.namespace.count).withBuffer { ns in
            view.slice(frame.key.lowerBound, frame.key.count).withBuffer { key in
                Memory.withJoined(ns, separator: 0, key) { composite in
                    keys.contains(composite, version: KeyIndex.VersionRef(sequence: frame.sequence, deleted: frame.type == .tombstone))
                }
            }
        }
    }

    static func prescan(fs: PosixFileSystem, path: String, snapshot: (keys: KeyIndex, size: UInt64)?) -> Prescan {
        var scan = Prescan(path: path)
        do {
            // Only a regular file of a possible segment size is read (a FIFO would block, a
            // huge file would overflow 32-bit frame offsets).
            guard let status = try fs.status(path), status.isRegularFile, status.size <= Limits.maxSegmentSize else {
                scan.size = (try? fs.status(path))??.size ?? 0
                return scan
            }
            let fd = try fs.open(path, .readOnly)
            defer { fs.close(fd) }
            scan.size = try fs.size(fd)
            guard scan.size >= SegmentHeader.size else { return scan }
            // A writable file may be a live writer's active segment, which its seal truncates:
            // read a copy of it rather than map it (see `FileSystem.snapshot`).
            scan.region = status.permissions & 0o222 != 0 ? try fs.snapshot(fd, length: scan.size)
                                                          : try fs.map(fd, length: scan.size, writable: false)
        } catch {
            scan.failure = error
            return scan
        }
        guard let region = scan.region else { return scan }
        let view = region.wholeView
        if case .success(let f) = SegmentFooter.decodeAtEnd(view) { scan.footer = f }
        let header: SegmentHeader
        switch SegmentHeader.decode(view) {
        case .success(let decoded):
            header = decoded
        case .failure(.checksum) where scan.footer == nil:
            // Only the active segment's header is updated in place: the same rule as recovery.
            guard let recovered = SegmentHeader.recoverInterruptedUpdate(view, candidates: SegmentScan.frameEnds(view)) else { return scan }
            header = recovered
            scan.interruptedHeaderUpdate = recovered.durableEnd
        case .failure:
            return scan
        }
        scan.header = header
        let limit = scan.footer.map { Int($0.framesEnd) } ?? scan.size
        var offset = SegmentHeader.size
        scan.frames.reserveCapacity(min(1 << 20, (limit - offset) / Frame.overhead))
        while offset < limit {
            switch Frame.decode(view, at: offset, limit: limit) {
            case .success(let frame):
                guard let leaf = frame.leafHash(in: view) else {
                    scan.stop = .badValue(offset: offset, sequence: frame.sequence)
                    return scan
                }
                scan.frames.append(frame)
                scan.leaves.append(leaf)
                scan.end = frame.end
                if let snapshot, frame.sequence < snapshot.size, frame.type == .put || frame.type == .tombstone {
                    scan.snapshotVersionsSeen += 1
                    if scan.snapshotMissing == nil && !snapshotHolds(snapshot.keys, frame, view) {
                        scan.snapshotMissing = (frame.sequence, frame.offset)
                    }
                }
                offset = frame.end
            case .failure where scan.footer == nil && SegmentFooter.isCompleteFooter(view, at: offset):
                return scan  // a seal interrupted after its footer was written: recovery finishes it
            case .failure(.zeroLength) where scan.footer == nil:
                if let nonZero = view.slice(offset, limit - offset).lastNonZero { scan.stop = .tail(offset: offset, bytes: nonZero + 1) }
                return scan
            case .failure(let defect):
                scan.stop = .damaged(offset: offset, reason: defect.description)
                return scan
            }
        }
        return scan
    }
}
