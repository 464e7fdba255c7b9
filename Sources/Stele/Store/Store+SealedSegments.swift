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
