import SteleNative

extension Store {
    /// The locks and holds on the versions in `sequences`, folded into one horizon. Read from
    /// the frames: an encrypted store's needs no key (locks and holds name keys by their ids).
    /// - Throws: as ``record(at:)``.
    /// - Cost: one frame read per record in range.
    public func retentionHorizon(_ sequences: ClosedRange<UInt64>) throws -> RetentionHorizon {
        var horizon = RetentionHorizon()
        for sequence in sequences {
            let location = try state.withLock { state throws -> SegmentLog.Location in
                guard let log = state.log else { throw SteleError.closed }
                return try log.locate(sequence)
            }
            let put = try location.withFrame(sequence) { frame, view -> (namespace: [UInt8], key: [UInt8], timestamp: Int64)? in
                guard frame.type == .put else { return nil }
                return (view.slice(frame.namespace.lowerBound, frame.namespace.count).array, frame.retentionKey(in: view), frame.timestamp)
            }
            guard let put else { continue }
            let protection = try state.withLock { state throws -> Protection in
                guard let log = state.log else { throw SteleError.closed }
                return log.protection(of: sequence, timestamp: put.timestamp, namespace: put.namespace,
                                      retentionComposite: KeyIndex.compositeKey(namespace: put.namespace, key: put.key))
            }
            for lock in protection.locks {
                switch lock.mode {
                case .compliance: horizon.compliance = max(horizon.compliance ?? lock.retainUntil, lock.retainUntil)
                case .governance: horizon.governance = max(horizon.governance ?? lock.retainUntil, lock.retainUntil)
                }
            }
            if protection.legalHold != nil { horizon.legalHold = true }
        }
        return horizon
    }
}
