import SteleNative

/// Retention as records in the log, in S3 Object Lock's vocabulary (see `docs/format.md`,
/// "Retention records"). Every decision that protects data is itself a record, so it is in the
/// Merkle tree, the history and every checkpoint, with the time it was taken.

/// How strongly a lock protects a version (S3 Object Lock retention modes).
public enum RetentionMode: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// Can be shortened or removed only with a governance authorization, and that is logged.
    case governance = 1
    /// Can never be shortened or removed, by anyone; only extended.
    case compliance = 2

    /// `governance` or `compliance`, as the CLI takes and prints them.
    public var description: String { self == .governance ? "governance" : "compliance" }

    /// The mode named `governance` or `compliance`; nil for anything else.
    public init?(name: String) {
        switch name {
        case "governance": self = .governance
        case "compliance": self = .compliance
        default: return nil
        }
    }
}

/// A retention lock: no physical removal of the version before `retainUntil`.
public struct RetentionLock: Sendable, Equatable {
    /// How strongly it protects: whether it can ever be shortened, and by whom.
    public var mode: RetentionMode
    /// ns since the Unix epoch.
    public var retainUntil: Int64

    /// A lock of `mode` until `retainUntil` (ns since the Unix epoch); the store checks the date when
    /// the lock is applied (in the future, at most ``Limits/maxRetention`` ahead).
    public init(mode: RetentionMode, retainUntil: Int64) {
        self.mode = mode
        self.retainUntil = retainUntil
    }
}

/// The value of a retention record (type 3). Namespace and key name the locked key.
/// ```
/// u8 version (1) | u8 mode | u8 scope (1 one version, 2 every version of the key so far)
/// | u8 flags (bit 0: governance bypass) | u64 target sequence (scope 1; else 0) | i64 retain-until, ns
/// [bypass only: u32 length | the governance authorization, a signed note]
/// ```
/// A bypass record *caps* the governance locks set before it on its target at its retain-until
/// date (which may be in the past: removal); compliance locks are never affected.
package struct RetentionRecord: Equatable {
    package enum Scope: UInt8 { case version = 1, key = 2 }
    package var lock: RetentionLock
    package var scope: Scope
    package var target: UInt64
    package var authorization: String?

    package var encoded: [UInt8] {
        let note = authorization.map { Array($0.utf8) } ?? []
        return ByteWriter.makeArray(count: 20 + (authorization == nil ? 0 : 4 + note.count)) { w in
            w.put(UInt8(1), at: 0)
            w.put(lock.mode.rawValue, at: 1)
            w.put(scope.rawValue, at: 2)
            w.put(UInt8(authorization == nil ? 0 : 1), at: 3)
            w.put(target, at: 4)
            w.put(lock.retainUntil, at: 12)
            if authorization != nil {
                w.put(UInt32(note.count), at: 20)
                w.put(note, at: 24)
            }
        }
    }

    package static func decode(_ bytes: [UInt8]) -> RetentionRecord? {
        guard bytes.count >= 20 else { return nil }
        return ByteView.of(bytes) { v in
            guard v.u8(0) == 1, let mode = RetentionMode(rawValue: v.u8(1)), let scope = Scope(rawValue: v.u8(2)),
                  v.u8(3) <= 1 else { return nil }
            var authorization: String?
            if v.u8(3) == 1 {
                guard bytes.count >= 24, Int(v.u32(20)) == bytes.count - 24 else { return nil }
                authorization = String(decoding: bytes[24...], as: UTF8.self)
            } else if bytes.count != 20 {
                return nil
            }
            return RetentionRecord(lock: RetentionLock(mode: mode, retainUntil: v.i64(12)), scope: scope, target: v.u64(4),
                                   authorization: authorization)
        }
    }
}

/// The value of a legal-hold record (type 4): `u8 version (1) | u8 on (1) or off (0) | reason (UTF-8)`.
package struct LegalHoldRecord: Equatable {
    package var on: Bool
    package var reason: String

    package var encoded: [UInt8] { [1, on ? 1 : 0] + Array(reason.utf8) }

    package static func decode(_ bytes: [UInt8]) -> LegalHoldRecord? {
        guard bytes.count >= 2, bytes[0] == 1, bytes[1] <= 1 else { return nil }
        return LegalHoldRecord(on: bytes[1] == 1, reason: String(decoding: bytes[2...], as: UTF8.self))
    }
}

/// The value of a policy record (type 5).
/// ```
/// u8 version (1) | u8 kind | u8 mode | u8 flags (0) | u64 duration, ns
/// ```
/// Kinds: 1 namespace default (the namespace field names it; duration 0: none), 2 store
/// minimum (empty namespace, which no key can have; always acts as compliance), 3 clock behind:
/// the wall clock read `duration` ns earlier than the last record's timestamp, and the store
/// clamped it (mode is compliance, unused).
package struct PolicyRecord: Equatable {
    package enum Kind: UInt8 { case namespaceDefault = 1, storeMinimum = 2, clockBehind = 3 }
    package var kind: Kind
    package var mode: RetentionMode
    package var duration: UInt64

    package var encoded: [UInt8] {
        ByteWriter.makeArray(count: 12) { w in
            w.put(UInt8(1), at: 0)
            w.put(kind.rawValue, at: 1)
            w.put(mode.rawValue, at: 2)
            w.put(UInt8(0), at: 3)
            w.put(duration, at: 4)
        }
    }

    package static func decode(_ bytes: [UInt8]) -> PolicyRecord? {
        guard bytes.count == 12 else { return nil }
        return ByteView.of(bytes) { v in
            guard v.u8(0) == 1, let kind = Kind(rawValue: v.u8(1)), let mode = RetentionMode(rawValue: v.u8(2)),
                  v.u8(3) == 0 else { return nil }
            return PolicyRecord(kind: kind, mode: mode, duration: v.u64(4))
        }
    }
}
