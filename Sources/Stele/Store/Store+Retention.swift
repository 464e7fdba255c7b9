import SteleNative

extension Store {
    /// Writes a new version of `key` protected by `lock` (its retain-until must be in the future).
    /// The put and its retention record are appended together, atomically under the writer lock.
    /// - Throws: ``SteleError/retention(_:)`` for a date in the past or more than
    ///   ``Limits/maxRetention`` ahead; otherwise as ``put(namespace:key:value:)-9jesu``.
    /// - Cost: as ``append(contentsOf:)-3q6im`` for two records, with one sync under `.everyBatch`.
    @discardableResult
    public func put(namespace: String, key: [UInt8], value: [UInt8], lock: RetentionLock?) throws -> Receipt {
        guard let lock else { return try put(namespace: namespace, key: key, value: value) }
        let entry = Entry(namespace: namespace, key: key, value: value)
        return try appendEntries(CollectionOfOne(entry)) { _, first, now in
            try Store.checkDate(lock.retainUntil, now: now)
            return [Entry(type: .retention, namespace: entry.namespace, key: key,
                          value: RetentionRecord(lock: lock, scope: .version, target: first).encoded)]
        }
    }

    /// Writes several versions, each with an optional lock (`locks[i]` for `entries[i]`), as
    /// consecutive records: the puts, then their retention records, atomically under the writer lock.
    /// - Throws: as ``put(namespace:key:value:lock:)``.
    @discardableResult
    public func putBatch(_ entries: [Entry], locks: [RetentionLock?]) throws -> Receipt {
        guard locks.count == entries.count else { throw SteleError.invalidArgument("one lock (or nil) per entry") }
        guard locks.contains(where: { $0 != nil }) else { return try putBatch(entries) }
        return try appendEntries(entries) { _, first, now in
            try zip(entries.indices, locks).compactMap { index, lock in
                guard let lock else { return nil }
                try Store.checkDate(lock.retainUntil, now: now)
                return Entry(type: .retention, namespace: entries[index].namespace, key: entries[index].key,
                             value: RetentionRecord(lock: lock, scope: .version, target: first + UInt64(index)).encoded)
            }
        }
    }

    /// Locks version `version` of a key, or (nil) every version of it written so far.
    ///
    /// A lock can only make protection stronger: a compliance lock is never shortened or turned
    /// into governance; a governance lock is never shortened without a governance authorization.
    /// The lock is a record in the log, with its time.
    /// - Throws: ``SteleError/retention(_:)`` naming the lock in the way, or no such version.
    @discardableResult
    public func lock(namespace: String, key: [UInt8], version: UInt64? = nil, lock: RetentionLock) throws -> Receipt {
        let composite = try Store.composite(namespace, key)
        let ns = Array(namespace.utf8)
        return try appendEntries([Entry]()) { log, _, now in
            try Store.checkDate(lock.retainUntil, now: now)
            let puts = log.versions(of: composite).filter { !$0.isTombstone }.map(\.sequence)
            let targets = version.map { v in puts.filter { $0 == v } } ?? puts
            guard !targets.isEmpty else { throw SteleError.retention(.noSuchVersion(namespace: namespace, key: key, sequence: version)) }
            for target in targets {
                let protection = try log.protection(of: target, namespace: ns, composite: composite)
                try Store.checkStrengthens(protection.strongest(at: now), with: lock)
            }
            let record = RetentionRecord(lock: lock, scope: version == nil ? .key : .version, target: version ?? 0)
            return [Entry(type: .retention, namespace: ns, key: key, value: record.encoded)]
        }
    }

    /// Shortens (or, with a date not in the future, removes) the governance locks on version
    /// `version` of a key, or on every version so far, under a governance authorization: a
    /// signed note (``GovernanceAuthorization``) by the governance key the log holds, matching
    /// this exact request and not expired. Only governance locks set before the note's `as-of`
    /// tree size are capped; compliance locks and legal holds are unaffected. The
    /// bypass, with its authorization, is a record in the log.
    /// - Throws: ``SteleError/retention(_:)`` (no governance key configured, a compliance lock in
    ///   the way, no such version), ``SteleError/checkpoint(_:)`` for a bad or mismatching signature.
    @discardableResult
    public func shortenGovernanceLock(namespace: String, key: [UInt8], version: UInt64? = nil, retainUntil: Int64,
                                      authorization: String) throws -> Receipt {
        // The authorization names the key in clear, and the record keeps it: not for an
        // encrypted store, whose records never show a key.
        guard !isEncrypted else {
            throw SteleError.invalidArgument("an encrypted store's governance locks cannot be shortened: the authorization would record the key in clear")
        }
        let composite = try Store.composite(namespace, key)
        let ns = Array(namespace.utf8)
        return try appendEntries([Entry]()) { log, _, now in
            // Judged by the governance key the log holds (re-read from the log, never taken from
            // an index snapshot's summary of it, nor from a file beside it).
            try log.verifyRetention()
            let governance = log.governance
            let asOf = try GovernanceAuthorization.checkBypass(authorization, key: governance.key,
                                                               origin: governance.origin, namespace: namespace, key: key,
                                                               version: version, retainUntil: retainUntil, time: now)
            guard asOf <= log.nextSequence else { throw SteleError.retention(.authorizationMismatch) }
            let puts = log.versions(of: composite).filter { !$0.isTombstone }.map(\.sequence)
            let targets = version.map { v in puts.filter { $0 == v } } ?? puts
            guard !targets.isEmpty else { throw SteleError.retention(.noSuchVersion(namespace: namespace, key: key, sequence: version)) }
            for target in targets {
                let protection = try log.protection(of: target, namespace: ns, composite: composite)
                if let compliance = protection.locks.filter({ $0.mode == .compliance && $0.retainUntil > max(now, retainUntil) })
                    .max(by: { $0.retainUntil < $1.retainUntil }) {
                    throw SteleError.retention(.complianceLock(compliance))
                }
            }
            let record = RetentionRecord(lock: RetentionLock(mode: .governance, retainUntil: retainUntil),
                                         scope: version == nil ? .key : .version, target: version ?? 0, authorization: authorization)
            return [Entry(type: .retention, namespace: ns, key: key, value: record.encoded)]
        }
    }

    /// A lock's date must be in the future, and not absurdly far in it.
    static func checkDate(_ retainUntil: Int64, now: Int64) throws {
        guard retainUntil > now else { throw SteleError.retention(.dateInThePast(retainUntil)) }
        guard retainUntil <= now.addingClamped(Limits.maxRetention.nanoseconds) else { throw SteleError.retention(.dateTooFar(retainUntil)) }
    }

    static func checkStrengthens(_ existing: AppliedLock?, with new: RetentionLock) throws {
        guard let existing else { return }
        if existing.mode == .compliance && (new.mode == .governance || new.retainUntil < existing.retainUntil) {
            throw SteleError.retention(.complianceLock(existing))
        }
        if new.retainUntil < existing.retainUntil { throw SteleError.retention(.governanceAuthorizationRequired(existing)) }
    }

    /// Sets (`on`) or releases a legal hold on every version of a key: no purge while it is on,
    /// whatever the dates. Both are records in the log with their reason.
    /// - Throws: ``SteleError/invalidArgument(_:)`` without a reason; ``SteleError/retention(_:)`` for an unknown key.
    @discardableResult
    public func setLegalHold(namespace: String, key: [UInt8], on: Bool, reason: String) throws -> Receipt {
        let composite = try Store.composite(namespace, key)
        guard !reason.isEmpty, reason.utf8.count <= 4096 else {
            throw SteleError.invalidArgument("a legal hold needs a reason (1-4096 bytes)")
        }
        return try appendEntries([Entry]()) { log, _, _ in
            guard !log.versions(of: composite).isEmpty else {
                throw SteleError.retention(.noSuchVersion(namespace: namespace, key: key, sequence: nil))
            }
            return [Entry(type: .legalHold, namespace: Array(namespace.utf8), key: key,
                          value: LegalHoldRecord(on: on, reason: reason).encoded)]
        }
    }

    /// Gives every new version in `namespace` a lock of `mode` for `duration` from its write.
    /// Only a stronger default (longer, or governance to compliance) is accepted.
    /// - Throws: ``SteleError/retention(_:)``.
    @discardableResult
    public func setDefaultRetention(namespace: String, mode: RetentionMode, duration: Duration) throws -> Receipt {
        let ns = Array(namespace.utf8)
        _ = try Store.composite(namespace, [0])
        let nanoseconds = duration.nanoseconds
        guard nanoseconds > 0 else { throw SteleError.invalidArgument("a default retention must be longer than zero") }
        guard nanoseconds <= Limits.maxRetention.nanoseconds else {
            throw SteleError.retention(.dateTooFar(Int64(clamping: nanoseconds)))
        }
        return try appendEntries([Entry]()) { log, _, _ in
            if let current = log.namespaceDefault(ns),
               current.duration > nanoseconds || (current.mode == .compliance && mode == .governance) {
                throw SteleError.retention(.defaultCanOnlyGrow(mode: current.mode, nanoseconds: current.duration))
            }
            return [Entry(type: .policy, namespace: ns, key: [],
                          value: PolicyRecord(kind: .namespaceDefault, mode: mode, duration: nanoseconds).encoded)]
        }
    }

    /// Raises the store-wide minimum retention: every version written from now on is kept at least
    /// this long after its write, as if under a compliance lock. It can never be lowered.
    /// - Throws: ``SteleError/retention(_:)`` unless `duration` exceeds the current minimum.
    @discardableResult
    public func raiseMinimumRetention(to duration: Duration) throws -> Receipt {
        let nanoseconds = duration.nanoseconds
        guard nanoseconds <= Limits.maxRetention.nanoseconds else {
            throw SteleError.retention(.dateTooFar(Int64(clamping: nanoseconds)))
        }
        return try appendEntries([Entry]()) { log, _, _ in
            let current = log.minimumRetention
            guard nanoseconds > current else { throw SteleError.retention(.minimumCanOnlyGrow(currentNanoseconds: current)) }
            return [Entry(type: .policy, namespace: [], key: [],
                          value: PolicyRecord(kind: .storeMinimum, mode: .compliance, duration: nanoseconds).encoded)]
        }
    }

    /// What protects version `version` of a key: its locks (own, key, namespace default, store
    /// minimum) and legal hold.
    /// - Throws: ``SteleError/retention(_:)`` if it is not a version of the key.
    public func protection(namespace: String, key: [UInt8], version: UInt64) throws -> Protection {
        let composite = try Store.composite(namespace, key)
        return try state.withLock { state throws -> Protection in
            guard let log = state.log else { throw SteleError.closed }
            guard log.versions(of: composite).contains(where: { $0.sequence == version }) else {
                throw SteleError.retention(.noSuchVersion(namespace: namespace, key: key, sequence: version))
            }
            return try log.protection(of: version, namespace: Array(namespace.utf8), composite: composite)
        }
    }

    /// The store-wide minimum retention in force.
    public var minimumRetention: Duration {
        .nanoseconds(Int64(clamping: state.withLock { $0.log?.retention.minimumRetention ?? 0 }))
    }
}

extension Duration {
    /// Whole nanoseconds, saturating; negative durations count as zero.
    var nanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        guard seconds >= 0 else { return 0 }
        let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? .max : whole &+ UInt64(max(0, attoseconds) / 1_000_000_000)
    }
}
