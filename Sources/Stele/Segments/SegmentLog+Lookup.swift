import SteleNative

/// Finding records: where a sequence number's frame is (active or sealed segment, with the key
/// index's hint), and reading it with its checksum verified.
extension SegmentLog {
    /// Where the frame of `sequence` lives.
    package enum Location: Sendable {
        /// In a sealed segment: at `hint` if given (checked, see ``KeyIndex/FrameHint``), else
        /// where the segment's offset table says.
        case sealed(SealedSegment, hint: Int?)
        case active(MappedRegion, offset: Int, limit: Int, path: String)

        /// The segment file, for error messages.
        var path: String {
            switch self {
            case .sealed(let segment, _): segment.path
            case .active(_, _, _, let path): path
            }
        }

        /// Decodes the frame of record `sequence` here, checks its XXH3 and that it is that
        /// record, and hands it to `body` while the mapping is held. Safe outside the store's
        /// lock: mappings stay valid while referenced, and a sealed segment's offset table is
        /// built once, under its own lock.
        /// - Throws: ``SteleError/corruption(_:)`` naming the file and offset; what `body` throws.
        @inline(__always)
        func withFrame<R>(_ sequence: UInt64, _ body: (FrameInfo, ByteView) throws -> R) throws -> R {
            let region: MappedRegion, offset: Int, limit: Int
            switch self {
            case .sealed(let segment, let hint?):
                // A purge may have moved the frame since the hint was taken: then the frame
                // found there is another record's, or none, and the offset table decides.
                let view = segment.region.wholeView
                if case .success(let frame) = Frame.decode(view, at: hint, limit: Int(segment.footer.framesEnd)), frame.sequence == sequence {
                    return try withExtendedLifetime(segment.region) { try body(frame, view) }
                }
                return try Location.sealed(segment, hint: nil).withFrame(sequence, body)
            case .sealed(let segment, nil):
                (region, offset, limit) = (segment.region, try segment.offset(of: sequence), Int(segment.footer.framesEnd))
            case .active(let r, let o, let l, _):
                (region, offset, limit) = (r, o, l)
            }
            return try withExtendedLifetime(region) {
                let view = region.wholeView
                switch Frame.decode(view, at: offset, limit: limit) {
                case .failure(let defect):
                    throw SteleError.corruption(Corruption(file: path, offset: offset, sequence: sequence, detail: defect.description))
                case .success(let frame):
                    guard frame.sequence == sequence else {
                        throw SteleError.corruption(Corruption(file: path, offset: offset, sequence: sequence,
                                                               detail: "frame holds sequence \(frame.sequence)"))
                    }
                    return try body(frame, view)
                }
            }
        }
    }

    package func locate(_ sequence: UInt64) throws -> Location {
        guard sequence < nextSequence else { throw SteleError.notFound(sequence: sequence, count: nextSequence) }
        if let segment = active, sequence >= segment.header.firstSequence {
            let offset = Int(segment.offsets[Int(sequence - segment.header.firstSequence)])
            return .active(segment.region, offset: offset, limit: segment.writeOffset, path: segment.path)
        }
        return .sealed(sealed[sealedPosition(containing: sequence)], hint: nil)
    }

    /// ``locate(_:)``, taking the frame's place from `hint` when it names a sealed segment
    /// (checked when the frame is read) instead of the segment's offset table.
    package func locate(_ sequence: UInt64, hint: KeyIndex.FrameHint) throws -> Location {
        if let number = hint.segment, number <= UInt64(sealed.count), number >= 1 {
            let segment = sealed[Int(number) - 1]
            if segment.header.index == number, segment.header.firstSequence <= sequence, sequence <= segment.footer.lastSequence {
                return .sealed(segment, hint: hint.offset)
            }
        }
        return try locate(sequence)
    }

    /// Decodes the frame of record `sequence` (checksum verified) and hands it to `body` while
    /// its mapping is held.
    func withFrame<R>(at sequence: UInt64, _ body: (FrameInfo, ByteView) throws -> R) throws -> R {
        try locate(sequence).withFrame(sequence, body)
    }

    /// The position in `sealed` of the segment whose range holds `sequence` (which must be sealed).
    func sealedPosition(containing sequence: UInt64) -> Int {
        var low = 0, high = sealedFirstSequences.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if sealedFirstSequences[mid] <= sequence { low = mid } else { high = mid - 1 }
        }
        return low
    }

    /// The timestamp of record `sequence`, from its frame header (checksum verified).
    func timestamp(of sequence: UInt64) throws -> Int64 {
        try withFrame(at: sequence) { frame, _ in frame.timestamp }
    }

    /// Timestamp, stored size and redaction flag of a record, from its frame (checksum verified).
    func frameSummary(of sequence: UInt64) throws -> (timestamp: Int64, storedBytes: Int, redacted: Bool) {
        try withFrame(at: sequence) { frame, _ in (frame.timestamp, frame.stored.count, frame.isRedacted) }
    }
}
