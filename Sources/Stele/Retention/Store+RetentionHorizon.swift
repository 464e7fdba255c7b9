import SteleNative

/// How long copies of a range of records must be kept, for off-host mirrors.
public struct RetentionHorizon: Sendable, Equatable {
    /// The latest expiry of a compliance lock (store minimum included) on any version in range.
    public var compliance: Int64?
    /// The latest expiry of a governance lock on any version in range.
    public var governance: Int64?
    /// Whether any version in range is under legal hold now.
    public var legalHold = false

    /// No lock and no hold.
    public init() {}
}

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
                return log.retention.protection(sequence: record.sequence, timestamp: record.timestamp,
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
