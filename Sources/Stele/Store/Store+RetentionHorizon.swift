import SteleNative

extension Store {
    /// The locks and holds on the versions in `sequences`, folded into one horizon.
    /// - Throws: as ``record(at:)``.
    /// - Cost: one record read per record in range.
    public func retentionHorizon(_ sequences: ClosedRange<UInt64>) throws -> RetentionHorizon {
        var horizon = RetentionHorizon()
        try forEachRecord(from: sequences.lowerBound, count: sequences.count) { record in
            guard record.type == .put else { return }
            let composite = KeyIndex.compositeKey(namespace: record.namespace, key: record.key)
            let protection = try state.withLock { state throws -> Protection in
                guard let log = state.log else { throw SteleError.closed }
                return try log.protection(of: record.sequence, timestamp: record.timestamp,
                                          namespace: record.namespace, composite: composite)
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
