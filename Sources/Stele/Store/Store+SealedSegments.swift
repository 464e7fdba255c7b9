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
    /// The records of the active segment known durable, from `sequence` on: those its header's
    /// durable end vouches for (it trails the writer's syncs by one), and those below
    /// `knownDurable` (a signed checkpoint's size: a checkpoint is signed only over synced
    /// records). Returns the segment's number, the sequence after the last, and their frames'
    /// bytes; nil if there are none. A mirror ships these as chunks between seals.
    package func durableActiveRecords(from sequence: UInt64, knownDurable: UInt64 = 0) throws -> (segment: UInt64, next: UInt64, bytes: [UInt8])? {
        try state.withLock { state throws in
            guard let log = state.log else { throw SteleError.closed }
            guard let active = log.active, active.recordCount > 0, sequence >= active.header.firstSequence else { return nil }
            let offsets = active.offsets
            let durableEnd = Int(min(active.header.durableEnd, UInt64(active.writeOffset)))
            // Frame i ends where frame i + 1 begins (the last at the write offset): durable if
            // that end is within the durable end.
            var durable = offsets.count
            if durableEnd < active.writeOffset {
                var low = 0, high = offsets.count
                while low < high {
                    let middle = (low + high) / 2
                    if Int(offsets[middle]) <= durableEnd { low = middle + 1 } else { high = middle }
                }
                durable = max(0, low - 1)
            }
            if knownDurable > active.header.firstSequence {
                durable = max(durable, Int(min(knownDurable - active.header.firstSequence, UInt64(offsets.count))))
            }
            let next = active.header.firstSequence + UInt64(durable)
            guard next > sequence else { return nil }
            let start = Int(offsets[Int(sequence - active.header.firstSequence)])
            let end = durable < offsets.count ? Int(offsets[durable]) : active.writeOffset
            return (active.header.index, next, active.region.view(start ..< end).array)
        }
    }
}
