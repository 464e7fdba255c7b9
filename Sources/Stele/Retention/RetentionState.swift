/// Who protects which version, rebuilt from the retention, legal-hold and policy records.
///
/// Invariant: effective protection only grows. A version's locks are every lock record that
/// covers it (its own, its key's, the namespace default and the store minimum in force when it
/// was written); the store refuses to append a lock that would not strengthen them, so the
/// log never holds a weaker lock that a reader could mistake for the current one.
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

    package init() {}

    /// Applies a record; false if its value is malformed (a corrupt log).
    package mutating func apply(type: RecordType, sequence: UInt64, namespace: [UInt8], key: [UInt8], value: [UInt8]) -> Bool {
        switch type {
        case .retention:
            guard let record = RetentionRecord.decode(value) else { return false }
            let composite = KeyIndex.compositeKey(namespace: namespace, key: key)
            if let authorization = record.authorization {
                // The cap reaches only locks set before the tree size the authority looked at.
                guard let asOf = GovernanceAuthorization.asOf(authorization), asOf <= sequence else { return false }
                switch record.scope {
                case .version: versionCaps[record.target, default: []].append((record.lock.retainUntil, asOf))
                case .key: keyCaps[composite, default: []].append((sequence, record.lock.retainUntil, asOf))
                }
                return true
            }
            switch record.scope {
            case .version:
                versionLocks[record.target, default: []].append(AppliedLock(record.lock, scope: .version, setBy: sequence))
            case .key:
                keyLocks[composite, default: []].append((sequence, AppliedLock(record.lock, scope: .key, setBy: sequence)))
            }
        case .legalHold:
            guard let record = LegalHoldRecord.decode(value) else { return false }
            let composite = KeyIndex.compositeKey(namespace: namespace, key: key)
            holds[composite] = record.on ? LegalHold(reason: record.reason, setBy: sequence) : nil
        case .policy:
            guard let record = PolicyRecord.decode(value) else { return false }
            switch record.kind {
            case .namespaceDefault: defaults[namespace, default: []].append((sequence, record.mode, record.duration))
            case .storeMinimum: minimums.append((sequence, record.duration))
            case .clockBehind: break
            }
        default:
            break
        }
        return true
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
    public enum Scope: String, Sendable { case version, key, namespaceDefault = "namespace-default", storeMinimum = "store-minimum" }
    public var mode: RetentionMode
    public var retainUntil: Int64
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
    public var reason: String
    /// The record that set it.
    public var setBy: UInt64
}

/// Everything that protects one version from physical removal.
public struct Protection: Sendable, Equatable {
    public var locks: [AppliedLock]
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
