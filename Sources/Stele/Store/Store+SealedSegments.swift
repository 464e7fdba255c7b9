import SteleNative

extension Store {
    /// The sealed segments this store opened with, in order. A mirror copies these and never the
    /// active segment, whose file a live writer may still truncate.
    package func sealedSegments() throws -> [SealedSegmentInfo] {
        try state.withLock { state throws in
            guard let log = state.log else { throw SteleError.closed }
            return log.sealed.map {
                SealedSegmentInfo(path: $0.path, records: $0.footer.firstSequence ... $0.footer.lastSequence, sealHash: $0.footer.sealHash)
            }
        }
    }
}

extension Store {
    /// The records of the active segment from `sequence` up to `through` (a signed checkpoint's
    /// size: a checkpoint is signed only over synced records, so they are durable, and a standby
    /// can prove them with it): the segment's number, the sequence after the last, and their
    /// frames' bytes. Nil if there are none. A mirror ships these as chunks between seals.
    package func activeRecords(from sequence: UInt64, through end: UInt64) throws -> (segment: UInt64, next: UInt64, bytes: [UInt8])? {
        try state.withLock { state throws in
            guard let log = state.log else { throw SteleError.closed }
            guard let active = log.active, active.recordCount > 0, sequence >= active.header.firstSequence else { return nil }
            let offsets = active.offsets
            let count = Int(min(end - min(end, active.header.firstSequence), UInt64(offsets.count)))
            let next = active.header.firstSequence + UInt64(count)
            guard next > sequence else { return nil }
            let start = Int(offsets[Int(sequence - active.header.firstSequence)])
            let stop = count < offsets.count ? Int(offsets[count]) : active.writeOffset
            return (active.header.index, next, active.region.view(start ..< stop).array)
        }
    }
}
