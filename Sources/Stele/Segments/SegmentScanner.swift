import SteleNative

/// Reads the frames of an unsealed (active) segment from its start and classifies what follows
/// the last valid frame. This is the heart of crash recovery.
///
/// Invariants it relies on (all established by the writer):
/// - space after the frames of an active segment is zero (the file is preallocated with zeros
///   and never reused), so a crash can only leave bytes that were being written;
/// - the header's durable end trails the last completed sync: frames before it were on disk
///   when a later sync completed, so nothing a crash does can damage them;
/// - sequence numbers are contiguous and timestamps never decrease;
/// - a seal writes the footer right after the last frame, before truncating the file.
///
/// So after the last valid frame there can legitimately be only zeros (clean), a complete footer
/// (a seal interrupted before truncation), or, at or after the durable end, whatever a crash left
/// of writes in flight: pages reach the disk in any order, so that may be a hole followed by
/// valid frames that were never acknowledged. That tail is discarded (and saved). Damage before
/// the durable end, or a valid frame that breaks an invariant, is corruption: the store refuses
/// to open and names the place.
package struct SegmentScan {
    /// Offsets of the valid frames, in order.
    package var offsets: [UInt32] = []
    /// The offset just past the last valid frame.
    package var end: Int
    package var nextSequence: UInt64
    package var lastTimestamp: Int64
    /// SHA-256 over the leaf hashes of the valid frames (the footer's content digest, in progress).
    package var contentHasher = SHA256Hasher()
    /// The Merkle frontier after the valid frames.
    package var frontier: Frontier
    package var tail: Tail = .clean

    package enum Tail: Equatable {
        /// Only zeros follow.
        case clean
        /// Bytes at or after the durable end that are not a valid frame: writes interrupted by a
        /// crash. `length` runs to the last non-zero byte (later frames included).
        case torn(offset: Int, length: Int, defect: String)
        /// A complete, consistent footer follows: the segment was sealed but not yet truncated.
        case sealFooter(SegmentFooter)
        /// Damage before the durable end, or a valid frame that breaks an invariant.
        case corrupt(offset: Int, sequence: UInt64?, detail: String)
    }

    /// The header's end and the end of every frame that decodes after it, in order: where a
    /// durable end can have been (for ``SegmentHeader/recoverInterruptedUpdate(_:candidates:)``).
    package static func frameEnds(_ view: ByteView) -> [Int] {
        var ends = [SegmentHeader.size]
        var offset = SegmentHeader.size
        while offset < view.count, case .success(let frame) = Frame.decode(view, at: offset, limit: view.count) {
            offset = frame.end
            ends.append(offset)
        }
        return ends
    }

    /// Scans `view` (the whole segment file, header included).
    package static func scan(_ view: ByteView, firstSequence: UInt64, minimumTimestamp: Int64,
                             frontier: Frontier, durableEnd: Int) -> SegmentScan {
        var scan = SegmentScan(end: SegmentHeader.size, nextSequence: firstSequence,
                               lastTimestamp: minimumTimestamp, frontier: frontier)
        while true {
            let offset = scan.end
            switch Frame.decode(view, at: offset, limit: view.count) {
            case .success(let frame):
                if frame.sequence != scan.nextSequence {
                    scan.tail = .corrupt(offset: offset, sequence: frame.sequence,
                                         detail: "expected sequence \(scan.nextSequence), found \(frame.sequence)")
                    return scan
                }
                if frame.timestamp < scan.lastTimestamp {
                    scan.tail = .corrupt(offset: offset, sequence: frame.sequence,
                                         detail: "timestamp \(frame.timestamp) is before the previous \(scan.lastTimestamp)")
                    return scan
                }
                guard let leaf = frame.leafHash(in: view) else {
                    scan.tail = .corrupt(offset: offset, sequence: frame.sequence, detail: "LZ4 value does not decode")
                    return scan
                }
                scan.offsets.append(UInt32(offset))
                scan.contentHasher.update(leaf)
                scan.frontier.append(leaf)
                scan.lastTimestamp = frame.timestamp
                scan.nextSequence += 1
                scan.end = frame.end
            case .failure(let defect):
                scan.tail = scan.classifyTail(view, defect: defect, firstSequence: firstSequence, durableEnd: durableEnd)
                return scan
            }
        }
    }

    private func classifyTail(_ view: ByteView, defect: FrameDefect, firstSequence: UInt64, durableEnd: Int) -> Tail {
        let rest = view.slice(end, view.count - end)
        guard let lastNonZero = rest.lastNonZero else {
            if end < durableEnd {
                return .corrupt(offset: end, sequence: nextSequence, detail: "frames end before the durable end \(durableEnd): synced records are missing")
            }
            return .clean
        }
        if case .success(let footer) = SegmentFooter.decode(view, at: end) {
            var digest = contentHasher
            let consistent = footer.recordCount == UInt64(offsets.count) && footer.firstSequence == firstSequence
                && footer.treeSize == frontier.size && footer.frontier == frontier.hashes
                && footer.treeRoot == frontier.root && footer.contentDigest == digest.finalize()
            if consistent && lastNonZero < footer.size { return .sealFooter(footer) }
            return .corrupt(offset: end, sequence: nil, detail: "a footer follows the frames but does not match them")
        }
        if end < durableEnd {
            return .corrupt(offset: end, sequence: nextSequence,
                            detail: "\(defect), before the durable end \(durableEnd): a synced record is damaged")
        }
        return .torn(offset: end, length: lastNonZero + 1, defect: defect.description)
    }
}
