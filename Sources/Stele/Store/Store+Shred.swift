import SteleNative

/// What ``Store/shred(namespace:reason:)`` did.
public struct ShredReport: Sendable, Equatable {
    public var namespace: String
    /// The shred record's sequence number.
    public var sequence: UInt64
    /// When the namespace was shredded: the shred record's timestamp, ns since the epoch.
    public var shreddedAt: Int64
    /// The destroyed data key's fingerprint (16 hex digits): names the key, reveals nothing.
    public var keyFingerprint: String
    /// The namespace's versions (puts) that can never be read again.
    public var versions: Int
}

/// A version of a shredded namespace: where it is in the log, never what it held.
public struct ShreddedVersion: Sendable, Equatable {
    public var sequence: UInt64
    public var timestamp: Int64
    public var isTombstone: Bool
}

/// Crypto-shredding: a namespace of an encrypted store made unreadable for ever by destroying its
/// data key, while every record, leaf, seal and checkpoint stays as it was.
///
/// Order, and why: the shred record is appended and made durable first, then the key is
/// destroyed (its keyring slot overwritten in place and synced). A crash between the two leaves
/// the record and the key: every open then refuses the namespace (the log says it is shredded)
/// and the next writable open destroys the key. A crash before the record is durable leaves the
/// namespace as it was, and the shred was never acknowledged.
extension Store {
    /// The namespaces shredded, by name, with when (ns since the epoch), as the log's shred
    /// records say: readable without the master key.
    /// - Throws: ``SteleError/closed``.
    public func shreddedNamespaces() throws -> [String: Int64] {
        try state.withLock { state throws in
            guard let log = state.log else { throw SteleError.closed }
            return Dictionary(log.shreds.map { (String(decoding: $0.key, as: UTF8.self), $0.value) }, uniquingKeysWith: max)
        }
    }

    /// The versions (puts and tombstones) of a shredded namespace, in log order: their sequence
    /// numbers and times, read from the frames (no key needed, none could open them).
    /// - Throws: ``SteleError/invalidArgument(_:)`` if the namespace was not shredded;
    ///   ``SteleError/corruption(_:)``, ``SteleError/closed``.
    /// - Cost: one pass over every frame of the log.
    public func shreddedVersions(namespace: String) throws -> [ShreddedVersion] {
        guard try shreddedNamespaces()[namespace] != nil else {
            throw SteleError.invalidArgument("namespace \(namespace) was not shredded")
        }
        let name = Array(namespace.utf8)
        var versions: [ShreddedVersion] = []
        for sequence in 0 ..< recordCount {
            let location = try state.withLock { state throws -> SegmentLog.Location in
                guard let log = state.log else { throw SteleError.closed }
                return try log.locate(sequence)
            }
            let version = try location.withFrame(sequence) { frame, view -> ShreddedVersion? in
                guard frame.type == .put || frame.type == .tombstone,
                      view.slice(frame.namespace.lowerBound, frame.namespace.count).withBuffer({ $0.elementsEqual(name) }) else { return nil }
                return ShreddedVersion(sequence: sequence, timestamp: frame.timestamp, isTombstone: frame.type == .tombstone)
            }
            if let version { versions.append(version) }
        }
        return versions
    }

    /// Destroys `namespace`'s data key, so that none of its keys and values can be read again,
    /// here or in any copy of the log, after recording why in the log.
    ///
    /// Refused while any version in the namespace is protected, exactly as a purge would be
    /// (a compliance lock, an unexpired governance lock, a legal hold, the namespace's default
    /// or the store's minimum retention): shredding is the one erasure of an immutable store, and
    /// it never reaches data a lock keeps.
    /// After it, every key read of the namespace throws ``EncryptionError/shredded(namespace:at:)``
    /// (so do writes to it); proofs and checkpoints are unchanged and still verify.
    /// - Returns: the shred record and the destroyed key's fingerprint.
    /// - Throws: ``SteleError/retention(_:)`` (a version is protected; nothing was written);
    ///   ``SteleError/encryption(_:)`` (already shredded); ``SteleError/invalidArgument(_:)`` (a
    ///   store that is not encrypted, a namespace never written, a reason empty or over 1,024
    ///   bytes); ``SteleError/writesDisabled(cause:)`` if the record could not be made durable;
    ///   ``SteleError/io(_:)`` if the key could not be destroyed after the record was (the
    ///   namespace is refused anyway, and the next writable open destroys the key).
    @discardableResult
    public func shred(namespace: String, reason: String) throws -> ShredReport {
        let ns = Array(namespace.utf8)
        guard (1 ... Limits.maxNamespaceLength).contains(ns.count), !ns.contains(0) else {
            throw SteleError.invalidArgument("namespace must be 1-\(Limits.maxNamespaceLength) bytes without NUL")
        }
        guard !reason.isEmpty, reason.utf8.count <= ShredRecord.maxReasonLength else {
            throw SteleError.invalidArgument("a shred needs a reason of 1-\(ShredRecord.maxReasonLength) bytes")
        }
        return try state.withLock { state throws -> ShredReport in
            guard let log = state.log else { throw SteleError.closed }
            guard log.writable else { throw SteleError.readOnly }
            if let refusal = state.writeRefusal { throw refusal }
            if let damage = log.writeRefusal { throw SteleError.corruption(damage) }
            guard let encryption = log.encryption else {
                throw SteleError.invalidArgument("the store is not encrypted: shredding destroys an encrypted namespace's data key")
            }
            if let at = log.shreds[ns] { throw SteleError.encryption(.shredded(namespace: namespace, at: at)) }
            let fingerprint = try encryption.liveKeyFingerprint(ns)
            // Decide from the log itself, as a purge does.
            try log.verifyRetention()
            let now = clock.nanosecondsSinceEpoch()
            let versions = try Store.unprotectedVersions(in: ns, of: log, at: now)

            // 1. The shred record, durable before the key is touched.
            let timestamp = log.nextTimestamp(clock: now)
            let value = ShredRecord(keyFingerprint: fingerprint, reason: reason).encoded
            let sequence = try appendDurably(&state, log, during: "a shred") {
                try log.append(storeRecord: .shred, namespace: ns, value: value, timestamp: timestamp)
            }
            // 2. The key, destroyed.
            try encryption.markShredded(ns, at: timestamp, destroy: true)
            logger.notice("namespace shredded", metadata: ["stele.namespace": "\(namespace)", "stele.sequence": "\(sequence)"])
            return ShredReport(namespace: namespace, sequence: sequence, shreddedAt: timestamp, keyFingerprint: hexString(fingerprint),
                               versions: versions)
        }
    }

    /// The number of puts in `namespace`, each checked unprotected at `now`.
    /// - Throws: ``SteleError/retention(_:)`` naming the first protection found, as an explicit
    ///   purge of that version would.
    private static func unprotectedVersions(in namespace: [UInt8], of log: SegmentLog, at now: Int64) throws -> Int {
        var versions = 0
        let prefix = namespace + [0]
        try log.trustedKeys().forEachKey(startingAt: prefix) { composite, refs in
            guard composite.starts(with: prefix) else { return false }
            for ref in refs where !ref.isTombstone {
                versions += 1
                let summary = try log.frameSummary(of: ref.sequence)
                let protection = try log.protection(of: ref.sequence, timestamp: summary.timestamp, namespace: namespace, composite: composite)
                guard protection.isProtected(at: now) else { continue }
                if let lock = protection.strongest(at: now) {
                    throw SteleError.retention(lock.mode == .compliance ? .complianceLock(lock) : .governanceAuthorizationRequired(lock))
                }
                throw SteleError.retention(.legalHold(sequence: ref.sequence, reason: protection.legalHold?.reason ?? ""))
            }
            return true
        }
        return versions
    }
}
