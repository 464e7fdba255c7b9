import SteleNative

/// Every error Stele's public API throws.
///
/// Each case carries what an operator needs to act: the path, the byte offset, the sequence
/// number, the system error. It is the only error type the Stele libraries throw: the failures
/// of proofs, checkpoints, retention rules, imports and off-host copies are its cases' payloads.
public enum SteleError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A system call failed; the store is still consistent on disk.
    case io(IOError)
    /// The directory has no Stele config file.
    case notAStore(path: String)
    /// `create` was pointed at a directory that is not empty.
    case alreadyExists(path: String)
    /// A file was written by a newer (or unknown) format version; nothing was read from it.
    case unsupportedVersion(file: String, found: Int, supported: Int)
    /// Another writer (process or `Store` instance) holds the store's lock.
    case locked(path: String)
    /// The store was closed.
    case closed
    /// The store was opened read-only.
    case readOnly
    /// A caller-supplied value is out of range: empty or oversized key, bad namespace, ...
    case invalidArgument(String)
    /// No record has this sequence number; `count` records exist (sequence 0 ..< count).
    case notFound(sequence: UInt64, count: UInt64)
    /// A root or proof was asked for a tree size or index the log does not have.
    case proof(ProofError)
    /// A retention rule refused the change (a lock or policy can only be made stronger).
    case retention(RetentionError)
    /// A key, signed note or checkpoint was refused, or a checkpoint shows lost or rewritten history.
    case checkpoint(CheckpointError)
    /// Mirroring to or restoring from an off-host copy could not go on (SteleMirror).
    case mirror(MirrorError)
    /// A JSON Lines import line was rejected (``ImportLine``); nothing of it was written.
    case importLine(ImportLineError)
    /// Stored bytes are damaged or inconsistent; run `stele fsck` on the store.
    case corruption(Corruption)
    /// An earlier sync failed, so nothing written since can be promised durable: the store
    /// refuses writes until it is reopened (which re-reads what actually reached the disk).
    case writesDisabled(cause: IOError)
    /// The store was created before its identity and governance key were records in its log:
    /// it opens read-only until `stele migrate` (``Store/migrate(at:)``) adopts its config file.
    case notMigrated(path: String)
    /// The store's evidence (``LostRecords``) shows records lost from its files: a writer
    /// refuses to append (it would hand their sequence numbers out again). Restore from an
    /// off-host copy, or record the loss in the log (``Store/recordLoss(at:reason:continuingAt:)``).
    case recordsLost(LostRecords)
    /// An encryption key or the keyring was wrong, missing or damaged, or a namespace's data
    /// key was destroyed (``EncryptionError``).
    case encryption(EncryptionError)
    /// The store was fenced: its off-host copy names a newer writer epoch, held by `holder`
    /// (a promoted standby), so this store writes nothing more (``Store/fence(epoch:holder:)``).
    /// A writable open is refused too, until the operator removes the store's `fenced` file.
    case fenced(epoch: UInt64, holder: String)

    /// A sentence for a log or an operator: what happened, where, and what to do.
    public var description: String {
        switch self {
        case .io(let e): "I/O error: \(e)"
        case .notAStore(let p): "\(p) is not a Stele store (no stele.conf)"
        case .alreadyExists(let p): "\(p) already exists and is not empty"
        case .unsupportedVersion(let f, let found, let supported):
            "\(f): format version \(found) is not supported by this build (which reads version \(supported)); upgrade Stele"
        case .locked(let p): "\(p) is locked by another writer (one writer process per store)"
        case .closed: "the store is closed"
        case .readOnly: "the store was opened read-only"
        case .invalidArgument(let m): "invalid argument: \(m)"
        case .notFound(let s, let c): "no record with sequence \(s) (the log holds 0..<\(c))"
        case .proof(let e): e.description
        case .checkpoint(let e): e.description
        case .retention(let e): e.description
        case .mirror(let e): e.description
        case .importLine(let e): e.description
        case .corruption(let c): "corruption: \(c); run `stele fsck` on the store"
        case .writesDisabled(let e): "writes disabled after a failed sync (\(e)); reopen the store"
        case .recordsLost(let lost):
            "\(lost); writes are refused: restore from an off-host copy, or record the loss with `stele record-loss`"
        case .encryption(let e): e.description
        case .fenced(let epoch, let holder):
            "fenced: writer epoch \(epoch) (\(holder)) extends this log now; this store writes nothing more (docs/operations.md, \"Writer epochs and fencing\")"
        case .notMigrated(let p):
            "\(p): the store predates config records (its identity and governance key are not in its log yet); it opens read-only until `stele migrate` adopts its stele.conf into the log"
        }
    }
}

/// Where damage was found and what was wrong.
public struct Corruption: Sendable, Equatable, CustomStringConvertible {
    /// The damaged file.
    public var file: String
    /// Byte offset within the file, where known.
    public var offset: Int?
    /// Sequence number of the record concerned, where known.
    public var sequence: UInt64?
    /// What was expected and what was found.
    public var detail: String

    /// Describes damage in `file`, with the offset and sequence number where known.
    public init(file: String, offset: Int? = nil, sequence: UInt64? = nil, detail: String) {
        self.file = file
        self.offset = offset
        self.sequence = sequence
        self.detail = detail
    }

    /// `file at offset N (sequence S): detail`, leaving out what is not known.
    public var description: String {
        var s = file
        if let offset { s += " at offset \(offset)" }
        if let sequence { s += " (sequence \(sequence))" }
        return s + ": " + detail
    }
}

/// Why a retention change was refused. Each case names the lock in the way.
public enum RetentionError: Sendable, Equatable, CustomStringConvertible {
    /// A compliance lock can never be shortened or turned into governance, by anyone.
    case complianceLock(AppliedLock)
    /// Shortening or removing a governance lock needs a governance authorization.
    case governanceAuthorizationRequired(AppliedLock)
    /// A lock's date must be in the future.
    case dateInThePast(Int64)
    /// A lock's date, a default or a minimum reaches further than ``Limits/maxRetention``.
    case dateTooFar(Int64)
    /// The store-wide minimum can only be raised.
    case minimumCanOnlyGrow(currentNanoseconds: UInt64)
    /// A namespace default can only be made stronger without a governance authorization.
    case defaultCanOnlyGrow(mode: RetentionMode, nanoseconds: UInt64)
    /// The store's config names no governance key, so no governance lock can be shortened.
    case noGovernanceKey
    /// The governance authorization does not describe this exact request.
    case authorizationMismatch
    /// The governance authorization's not-after date has passed.
    case authorizationExpired(Int64)
    /// The key has no such version (or it is a tombstone, which cannot be locked).
    case noSuchVersion(namespace: String, key: [UInt8], sequence: UInt64?)
    /// The version is under a legal hold (with its reason); no lock needs to be in force.
    case legalHold(sequence: UInt64, reason: String)
    /// The version is its key's live version: only superseded versions are ever purged.
    case liveVersion(sequence: UInt64)

    /// The refusal in one line, naming the lock, hold or rule in the way.
    public var description: String {
        func lock(_ l: AppliedLock) -> String { "\(l.mode) lock until \(l.retainUntil) ns (\(l.scope.rawValue), set by record \(l.setBy))" }
        switch self {
        case .complianceLock(let l): return "refused: \(lock(l)) can only be extended, in compliance mode"
        case .governanceAuthorizationRequired(let l): return "refused: shortening the \(lock(l)) needs a governance authorization"
        case .dateInThePast(let t): return "refused: retain-until \(t) ns is not in the future"
        case .dateTooFar(let t): return "refused: retain-until \(t) ns is more than 100 years ahead (Limits.maxRetention)"
        case .minimumCanOnlyGrow(let d): return "refused: the store minimum retention (\(d) ns) can only be raised"
        case .defaultCanOnlyGrow(let m, let d): return "refused: the namespace default (\(m), \(d) ns) can only be made stronger"
        case .noGovernanceKey: return "refused: this store has no governance key, so governance locks cannot be shortened"
        case .authorizationMismatch: return "refused: the governance authorization does not match this request"
        case .authorizationExpired(let t): return "refused: the governance authorization expired at \(t) ns"
        case .noSuchVersion(let ns, let key, let seq):
            return "\(ns) \(String(decoding: key, as: UTF8.self)): no such version\(seq.map { " \($0)" } ?? "")"
        case .legalHold(let seq, let reason): return "refused: version \(seq) is under legal hold: \(reason)"
        case .liveVersion(let seq): return "refused: version \(seq) is the key's live version: delete or supersede it first"
        }
    }
}

/// What mirroring and restoring report when they cannot go on (in ``SteleError/mirror(_:)``).
///
/// Declared in the engine, not in SteleMirror, so that one error type is all any Stele API throws.
public enum MirrorError: Sendable, Equatable, CustomStringConvertible {
    /// No HTTP answer (connection refused, timeout).
    case transport(String)
    /// The target answered with an error.
    case target(String)
    /// An object the copy needs is not there.
    case missing(name: String)
    /// An object exists with other content than what would be stored under its name.
    case conflict(name: String)
    /// An object's content does not match its recorded checksum, or does not verify.
    case altered(name: String, detail: String)
    /// The restored log does not match the trusted checkpoint.
    case checkpointMismatch(String)
    /// Bad arguments or credentials.
    case invalid(String)
    /// The copy lost objects, grew objects the mirror never wrote, or has objects overwritten or
    /// hidden by delete markers: each finding names the object. Nothing was uploaded over it.
    case tampered([String])
    /// The copy names a newer writer epoch than this store holds: another store (a promoted
    /// standby) extends the log now, and this one must not add to the copy (docs/operations.md,
    /// "Writer epochs and fencing").
    case fenced(epoch: UInt64, holder: String)

    public var description: String {
        switch self {
        case .transport(let detail): "mirror target unreachable: \(detail)"
        case .target(let detail): "mirror target refused: \(detail)"
        case .missing(let name): "object missing from the copy: \(name)"
        case .conflict(let name): "object \(name) already exists with different content; nothing was overwritten"
        case .altered(let name, let detail): "object \(name) was altered: \(detail)"
        case .checkpointMismatch(let detail): "restored log does not match the trusted checkpoint: \(detail)"
        case .invalid(let detail): detail
        case .tampered(let findings): "THE COPY WAS TAMPERED WITH: " + findings.joined(separator: "; ")
        case .fenced(let epoch, let holder): "fenced: the copy belongs to writer epoch \(epoch) (\(holder)); this store no longer writes to it"
        }
    }
}

extension MirrorError {
    /// A failure that a later pass may not meet again (the target unreachable or refusing): a
    /// following mirror retries it; any other (a tampered copy, a conflicting object, a local
    /// file that vanished) needs a person.
    public var isTransient: Bool {
        switch self {
        case .transport, .target: true
        default: false
        }
    }
}
