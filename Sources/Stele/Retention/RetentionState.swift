import SteleNative

/// Who protects which version, rebuilt from the retention, legal-hold, policy and config records;
/// and who the store is and which governance key is in force, from its config records.
///
/// Invariant: effective protection only grows. A version's locks are every lock record that
/// covers it (its own, its key's, the namespace default and the store minimum in force when it
/// was written); the store refuses to append a lock that would not strengthen them, so the
/// log never holds a weaker lock that a reader could mistake for the current one. The one way
/// down, a governance bypass, counts only when its authorization verifies against the governance
/// key the log held at that record: a record that does not is rejected (``RecordRejected``), by
/// every reader, so a forged bypass protects nothing less.
/// Not thread-safe: the store serialises access.
package struct RetentionState {
    private var versionLocks: [UInt64: [AppliedLock]] = [:]
    private var keyLocks: [[UInt8]: [(upTo: UInt64, lock: AppliedLock)]] = [:]
    private var holds: [[UInt8]: LegalHold] = [:]
    private var defaults: [[UInt8]: [(from: UInt64, mode: RetentionMode, duration: UInt64)]] = [:]
    private var minimums: [(from: UInt64, duration: UInt64)] = []
    /// Governance bypasses: caps on governance locks set before their `as-of` tree size.
    private var versionCaps: [UInt64: [(cap: Int64, asOf: UInt64)]] = [:]
    private var keyCaps: [[UInt8]: [(upTo: UInt64, cap: Int64, asOf: UInt64)]] = [:]
    /// The store's identity, from its genesis (record 0) or adoption record; nil for a store
    /// created before config records and not yet migrated.
    package private(set) var identity: StoreIdentity?
    /// The record that set ``identity``, and whether it was an adoption (`stele migrate`).
    package private(set) var identityRecord: (sequence: UInt64, adopted: Bool)?
    /// The governance key in force from each sequence number on (the first entry from 0).
    private var governanceKeys: [(from: UInt64, key: NoteVerifier?)] = []
    /// For a store created before config records: the origin and governance key of its
    /// `stele.conf`, which judge the records before its adoption record (the adoption must then
    /// repeat them, which the store checks on open).
    package var legacy: (origin: String, governanceKey: NoteVerifier?)?
    /// Bypasses read before the store's identity (a store created before config records): checked
    /// against the key its adoption record names when that comes, or, when the log ends without
    /// one, against `legacy` (``finishReplay()``). Not against the file's key as it is now: that
    /// is the key in force after any change, not the one that authorized them.
    private var unverifiedBypasses: [(sequence: UInt64, check: (NoteVerifier?, String) throws -> Void)] = []

    package init() {}

    /// Why a record cannot be applied: malformed, or an authorization that does not verify.
    package struct RecordRejected: Error, CustomStringConvertible {
        package let reason: String
        package var description: String { reason }
    }

    /// The governance key in force now (nil: none, so no governance lock can be shortened).
    package var governanceKey: NoteVerifier? { governanceKeys.last?.key ?? (identity == nil ? legacy?.governanceKey : nil) }

    /// The governance key in force at record `sequence`.
    package func governanceKey(at sequence: UInt64) -> NoteVerifier? {
        guard identity != nil else { return legacy?.governanceKey }
        return governanceKeys.last { $0.from < sequence || $0.from == 0 }?.key
    }

    /// The smallest `as-of` a key change may name: a tree that includes the last change (any
    /// tree when there was none), so that an older change cannot be replayed.
    package var keyChangeAsOfFloor: UInt64 { governanceKeys.count > 1 ? (governanceKeys.last?.from ?? 0) + 1 : 0 }

    /// The origin checkpoints and authorizations name.
    package var origin: String? { identity?.origin ?? legacy?.origin }

    /// Applies a record of type retention, legal hold, policy or config (others are ignored).
    /// - Throws: ``RecordRejected`` if it is malformed, breaks the rules of config records, or
    ///   carries an authorization that does not verify against the governance key in force.
    package mutating func apply(type: RecordType, sequence: UInt64, timestamp: Int64, namespace: [UInt8], key: [UInt8],
                                value: [UInt8]) throws(RecordRejected) {
        func reject(_ reason: String) -> RecordRejected { RecordRejected(reason: reason) }
        switch type {
        case .retention:
            guard let record = RetentionRecord.decode(value) else { throw reject("malformed retention record") }
            let composite = KeyIndex.compositeKey(namespace: namespace, key: key)
            if let authorization = record.authorization {
                let check = { (governanceKey: NoteVerifier?, origin: String) throws -> UInt64 in
                    try GovernanceAuthorization.checkBypass(
                        authorization, key: governanceKey, origin: origin, namespace: String(decoding: namespace, as: UTF8.self), key: key,
                        version: record.scope == .version ? record.target : nil, retainUntil: record.lock.retainUntil, time: timestamp)
                }
                let asOf: UInt64
                if identity == nil {
                    // Judged when the adoption record names the key (see `unverifiedBypasses`).
                    guard let claimed = GovernanceAuthorization.asOf(authorization) else { throw reject("malformed governance bypass") }
                    asOf = claimed
                    unverifiedBypasses.append((sequence, { _ = try check($0, $1) }))
                } else {
                    do {
                        asOf = try check(governanceKey(at: sequence), origin ?? "")
                    } catch {
                        throw reject("governance bypass not authorized by the governance key the log held then: \(error)")
                    }
                }
                // The cap reaches only locks set before the tree size the authority looked at.
                guard asOf <= sequence else { throw reject("governance bypass looks at a tree (as-of \(asOf)) after itself") }
                switch record.scope {
                case .version: versionCaps[record.target, default: []].append((record.lock.retainUntil, asOf))
                case .key: keyCaps[composite, default: []].append((sequence, record.lock.retainUntil, asOf))
                }
                return
            }
            switch record.scope {
            case .version:
                versionLocks[record.target, default: []].append(AppliedLock(record.lock, scope: .version, setBy: sequence))
            case .key:
                keyLocks[composite, default: []].append((sequence, AppliedLock(record.lock, scope: .key, setBy: sequence)))
            }
        case .legalHold:
            guard let record = LegalHoldRecord.decode(value) else { throw reject("malformed legal-hold record") }
            let composite = KeyIndex.compositeKey(namespace: namespace, key: key)
            holds[composite] = record.on ? LegalHold(reason: record.reason, setBy: sequence) : nil
        case .policy:
            guard let record = PolicyRecord.decode(value) else { throw reject("malformed policy record") }
            switch record.kind {
            case .namespaceDefault: defaults[namespace, default: []].append((sequence, record.mode, record.duration))
            case .storeMinimum: minimums.append((sequence, record.duration))
            case .clockBehind: break
            }
        case .config:
            guard namespace.isEmpty, key.isEmpty, let record = ConfigRecord.decode(value) else { throw reject("malformed config record") }
            switch record {
            case .genesis(let id, let minimum, let governance):
                guard sequence == 0, identity == nil else { throw reject("a genesis record that is not the log's first record") }
                identity = id
                identityRecord = (sequence, false)
                governanceKeys = [(0, governance)]
                if minimum > 0 { minimums.append((0, minimum)) }
            case .adoption(let id, let minimum, let governance):
                guard identity == nil else { throw reject("an adoption record in a log that already has an identity") }
                // The key that stele.conf held all along: it judges the bypasses before it too.
                for bypass in unverifiedBypasses {
                    do {
                        try bypass.check(governance, id.origin)
                    } catch {
                        throw reject("governance bypass \(bypass.sequence), before this adoption, is not authorized by the key it adopts: \(error)")
                    }
                }
                unverifiedBypasses = []
                identity = id
                identityRecord = (sequence, true)
                governanceKeys = [(0, governance)]
                if minimum > 0 { minimums.append((sequence, minimum)) }
            case .governanceKeyChange(let newKey, let authorization):
                guard let id = identity else { throw reject("a governance key change before the store's genesis or adoption") }
                do {
                    _ = try GovernanceAuthorization.checkKeyChange(authorization, key: governanceKey, origin: id.origin, newKey: newKey,
                                                                   since: keyChangeAsOfFloor, time: timestamp)
                } catch {
                    throw reject("governance key change not authorized by the key in force: \(error)")
                }
                governanceKeys.append((sequence, newKey))
            }
        default:
            break
        }
    }

    /// Ends a replay of the whole log: a store without an identity (created before config
    /// records, not migrated) has its bypasses checked against its `stele.conf` (`legacy`).
    /// - Throws: ``RecordRejected`` naming the first bypass that does not verify.
    package mutating func finishReplay() throws(RecordRejected) {
        guard identity == nil, let legacy else { return }
        for bypass in unverifiedBypasses {
            do {
                try bypass.check(legacy.governanceKey, legacy.origin)
            } catch {
                throw RecordRejected(reason: "governance bypass \(bypass.sequence) is not authorized by the governance key of stele.conf: \(error)")
            }
        }
        unverifiedBypasses = []
    }

    /// The protection of version `sequence` of a key, written at `timestamp`.
    package func protection(sequence: UInt64, timestamp: Int64, namespace: [UInt8], composite: [UInt8]) -> Protection {
        var locks = versionLocks[sequence] ?? []
        for entry in keyLocks[composite] ?? [] where entry.upTo > sequence { locks.append(entry.lock) }
        // Rules only ever grow, so the strongest in force is the latest; taking the strongest
        // keeps a forged weaker record from weakening anything.
        if let rule = defaults[namespace]?.filter({ $0.from < sequence && $0.duration > 0 })
            .max(by: { ($0.mode.rawValue, $0.duration) < ($1.mode.rawValue, $1.duration) }) {
            locks.append(AppliedLock(RetentionLock(mode: rule.mode, retainUntil: timestamp.addingClamped(rule.duration)),
                                     scope: .namespaceDefault, setBy: rule.from))
        }
        if let minimum = minimums.filter({ $0.from < sequence && $0.duration > 0 }).max(by: { $0.duration < $1.duration }) {
            locks.append(AppliedLock(RetentionLock(mode: .compliance, retainUntil: timestamp.addingClamped(minimum.duration)),
                                     scope: .storeMinimum, setBy: minimum.from))
        }
        // A governance bypass caps the governance locks that existed when it was granted.
        let caps = (versionCaps[sequence] ?? []) + (keyCaps[composite] ?? []).filter { $0.upTo > sequence }.map { ($0.cap, $0.asOf) }
        if !caps.isEmpty {
            for i in locks.indices where locks[i].mode == .governance {
                if let cap = caps.filter({ $0.asOf > locks[i].setBy }).max(by: { $0.asOf < $1.asOf }) {
                    locks[i].retainUntil = min(locks[i].retainUntil, cap.cap)
                }
            }
        }
        return Protection(locks: locks, legalHold: holds[composite])
    }

    /// The namespace default in force for new versions, if any.
    package func namespaceDefault(_ namespace: [UInt8]) -> (mode: RetentionMode, duration: UInt64)? {
        guard let rule = defaults[namespace]?.filter({ $0.duration > 0 })
            .max(by: { ($0.mode.rawValue, $0.duration) < ($1.mode.rawValue, $1.duration) }) else { return nil }
        return (rule.mode, rule.duration)
    }

    /// The store-wide minimum retention, in ns (0 if none).
    package var minimumRetention: UInt64 { minimums.map(\.duration).max() ?? 0 }
}

extension Int64 {
    /// `self + duration`, saturating instead of trapping.
    func addingClamped(_ duration: UInt64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(Int64(clamping: duration))
        return overflow ? .max : sum
    }
}

/// One lock that applies to a version, and where it came from.
public struct AppliedLock: Sendable, Equatable {
    /// Where a lock came from: `version` (a lock on that one version), `key` (a lock on every
    /// version of the key written before it), `namespaceDefault` (the namespace's default
    /// retention, counted from the version's write), `storeMinimum` (the store-wide minimum,
    /// counted from the version's write). The raw value is how the CLI prints it.
    public enum Scope: String, Sendable { case version, key, namespaceDefault = "namespace-default", storeMinimum = "store-minimum" }
    /// The lock's mode (the store minimum always acts as compliance).
    public var mode: RetentionMode
    /// Until when it protects the version, ns since the Unix epoch (for a governance lock, as
    /// capped by any governance bypass granted after it was set).
    public var retainUntil: Int64
    /// Where it came from.
    public var scope: Scope
    /// The record that set it (for defaults and the minimum, the policy record).
    public var setBy: UInt64

    init(_ lock: RetentionLock, scope: Scope, setBy: UInt64) {
        mode = lock.mode
        retainUntil = lock.retainUntil
        self.scope = scope
        self.setBy = setBy
    }
}

/// A legal hold on a key: no expiry until it is released.
public struct LegalHold: Sendable, Equatable {
    /// The reason given when it was set.
    public var reason: String
    /// The record that set it.
    public var setBy: UInt64
}

/// Everything that protects one version from physical removal.
public struct Protection: Sendable, Equatable {
    /// Every lock that applies, expired ones included (compare ``AppliedLock/retainUntil`` with the time).
    public var locks: [AppliedLock]
    /// The legal hold on the version's key, if one is on.
    public var legalHold: LegalHold?

    /// The latest retain-until date of any lock, ns; nil without locks.
    public var retainUntil: Int64? { locks.map(\.retainUntil).max() }

    /// The strongest lock still in force at `now`: compliance before governance, then the latest date.
    public func strongest(at now: Int64) -> AppliedLock? {
        locks.filter { $0.retainUntil > now }.max { a, b in
            (a.mode.rawValue, a.retainUntil) < (b.mode.rawValue, b.retainUntil)
        }
    }

    /// Whether the version must not be physically removed at `now`.
    public func isProtected(at now: Int64) -> Bool {
        legalHold != nil || locks.contains { $0.retainUntil > now }
    }
}
