import Logging
import SteleNative

extension Store {
    /// Physically removes the payload of every version that is superseded (a later version or a
    /// tombstone exists) **and** whose every lock has expired, that has no legal hold, and whose
    /// store-minimum retention has passed. Each purged payload becomes a redaction stub that keeps
    /// the record header and its leaf hash, so every seal, checkpoint and proof still verifies.
    ///
    /// Order of events: a redaction record listing what is purged and why is appended and synced
    /// first; then each affected sealed segment is rewritten and atomically renamed into place.
    /// Only sealed segments are rewritten (``seal()`` first to include the newest records).
    /// Holds the writer lock throughout: appends wait.
    /// - Parameter dryRun: report what would be purged, change nothing.
    /// - Throws: ``SteleError/readOnly``, ``SteleError/writesDisabled(cause:)``, ``SteleError/io(_:)``,
    ///   ``SteleError/corruption(_:)``.
    @discardableResult
    public func purge(dryRun: Bool = false) throws -> PurgeReport {
        try purge(dryRun: dryRun, only: nil)
    }

    /// Purges one version's payload, or explains why not.
    /// - Throws: ``SteleError/retention(_:)`` naming the lock (or hold) that protects it
    ///   (``RetentionError/complianceLock(_:)``, ``RetentionError/governanceAuthorizationRequired(_:)``,
    ///   ``RetentionError/legalHold(sequence:reason:)``), ``RetentionError/liveVersion(sequence:)``, or
    ///   ``RetentionError/noSuchVersion(namespace:key:sequence:)``; ``SteleError/invalidArgument(_:)``
    ///   if the version is still in the active segment (``seal()`` first); as ``purge(dryRun:)`` otherwise.
    @discardableResult
    public func purgeVersion(namespace: String, key: [UInt8], version: UInt64) throws -> PurgeReport {
        let composite = try Store.composite(namespace, key)
        return try purge(dryRun: false, only: (composite, Array(namespace.utf8), key, version))
    }

    /// Appends the store's own records with `append` and makes them durable before returning,
    /// for a step that must not act before its record could survive a crash (a purge, a shred).
    /// A seal or sync that fails stops writes, as the group commit's would.
    func appendDurably<T>(_ state: inout State, _ log: SegmentLog, during step: String, _ append: () throws -> T) throws -> T {
        let result: T
        do {
            result = try append()
            try log.syncActive()
        } catch let failed as SegmentLog.SealFailed {
            state.failure = failed.cause
            logWritesDisabled(failed.cause, during: "a seal in \(step)")
            throw SteleError.writesDisabled(cause: failed.cause)
        } catch SteleError.io(let cause) {
            state.failure = cause
            logWritesDisabled(cause, during: "the sync of \(step)")
            throw SteleError.writesDisabled(cause: cause)
        }
        durableCount.raise(to: log.nextSequence)
        return result
    }

    private func purge(dryRun: Bool, only target: ([UInt8], [UInt8], [UInt8], UInt64)?) throws -> PurgeReport {
        try state.withLock { state throws -> PurgeReport in
            guard let log = state.log else { throw SteleError.closed }
            guard log.writable else { throw SteleError.readOnly }
            if let refusal = state.writeRefusal { throw refusal }
            if let damage = log.writeRefusal { throw SteleError.corruption(damage) }
            // Decide from the log itself, never from a snapshot's summary of it.
            try log.verifyRetention()
            let now = clock.nanosecondsSinceEpoch()
            var report = PurgeReport(dryRun: dryRun)
            var bySegment: [Int: Set<UInt64>] = [:]

            func consider(_ composite: [UInt8], _ versions: [KeyIndex.VersionRef], explicit: UInt64?) throws {
                let split = composite.firstIndex(of: 0) ?? composite.count
                let namespace = Array(composite[..<split]), key = Array(composite[(split + 1)...])
                let latestLive = versions.last.flatMap { $0.isTombstone ? nil : $0.sequence }
                for ref in versions where !ref.isTombstone && (explicit == nil || ref.sequence == explicit) {
                    if ref.sequence == latestLive {
                        if explicit != nil { throw SteleError.retention(.liveVersion(sequence: ref.sequence)) }
                        continue
                    }
                    let record = try log.frameSummary(of: ref.sequence)
                    if record.redacted { continue }
                    let protection = try log.protection(of: ref.sequence, timestamp: record.timestamp,
                                                        namespace: namespace, composite: composite)
                    if protection.isProtected(at: now) {
                        if explicit != nil {
                            if let lock = protection.strongest(at: now) {
                                throw SteleError.retention(lock.mode == .compliance ? .complianceLock(lock) : .governanceAuthorizationRequired(lock))
                            }
                            throw SteleError.retention(.legalHold(sequence: ref.sequence, reason: protection.legalHold?.reason ?? ""))
                        }
                        report.stillProtected += 1
                        continue
                    }
                    guard let position = log.sealedPosition(of: ref.sequence) else {
                        if explicit != nil { throw SteleError.invalidArgument("version \(ref.sequence) is in the active segment: seal first") }
                        report.inActiveSegment.append(.init(namespace: String(decoding: namespace, as: UTF8.self), key: key,
                                                            sequence: ref.sequence, storedBytes: record.storedBytes))
                        continue
                    }
                    bySegment[position, default: []].insert(ref.sequence)
                    report.purged.append(.init(namespace: String(decoding: namespace, as: UTF8.self), key: key,
                                               sequence: ref.sequence, storedBytes: record.storedBytes))
                }
            }

            if let (composite, _, key, version) = target {
                let versions = log.versions(of: composite)
                guard versions.contains(where: { $0.sequence == version && !$0.isTombstone }) else {
                    throw SteleError.retention(.noSuchVersion(namespace: String(decoding: target?.1 ?? [], as: UTF8.self), key: key, sequence: version))
                }
                try consider(composite, versions, explicit: version)
            } else {
                try log.trustedKeys().forEachKey(startingAt: []) { composite, versions in
                    // A shredded namespace's payloads are unreadable already (and its key ids
                    // can no longer be computed): nothing to decide there.
                    if !log.shreds.isEmpty, log.shreds[Array(composite.prefix { $0 != 0 })] != nil { return true }
                    try consider(composite, versions, explicit: nil)
                    return true
                }
            }
            report.payloadBytes = report.purged.reduce(0) { $0 + $1.storedBytes }
            if dryRun || report.purged.isEmpty { return report }

            // 1. The redaction records, durable before any byte is removed.
            let timestamp = log.nextTimestamp(clock: now)
            let all = report.purged.map(\.sequence).sorted()
            let perRecord = max(1, (Limits.maxValueLength(segmentSize: config.segmentSize) - 6) / 8)
            report.redactionRecords = try appendDurably(&state, log, during: "a purge") {
                try stride(from: 0, to: all.count, by: perRecord).map { chunk in
                    let value = RedactionRecord(sequences: Array(all[chunk ..< min(all.count, chunk + perRecord)])).encoded
                    return try log.append(storeRecord: .redaction, namespace: [], value: value, timestamp: timestamp)
                }
            }

            // 2. Each segment, rewritten and renamed atomically.
            for (position, sequences) in bySegment.sorted(by: { $0.key < $1.key }) {
                let sizes = try log.rewriteWithStubs(position: position, sequences: sequences)
                report.segmentsRewritten += 1
                report.bytesBefore += sizes.before
                report.bytesAfter += sizes.after
            }
            return report
        }
    }
}
