import SteleNative

/// The notes a governance authority signs, off the store's host, with the governance key that
/// the log's config records name (C2SP signed notes, Ed25519), and their checks.
///
/// A **bypass** shortens or removes governance locks on one version or a whole key:
/// ```
/// stele-governance-bypass v1
/// origin <store origin>
/// namespace <namespace>
/// key <base64 key>
/// version <sequence | *>
/// retain-until <ns since epoch>
/// as-of <tree size>
/// not-after <ns since epoch>
/// ```
/// A **key change** replaces (or retires, `none`) the governance key itself:
/// ```
/// stele-governance-key v1
/// origin <store origin>
/// new-key <verifier key | none>
/// as-of <tree size>
/// not-after <ns since epoch>
/// ```
/// The store checks every line against the request and refuses an expired note; the note is kept
/// in the record it authorizes, so every use is in the log and the tree, and `stele fsck` (and
/// every open) checks it again against the key the log held at that record. A bypass caps only
/// locks set before `as-of` (the tree size the authority looked at), so replaying it later cannot
/// remove a lock set after it was signed; a key change must be newer (`as-of`) than the last
/// change, so an old one cannot be replayed to bring back a retired key.
public enum GovernanceAuthorization {
    /// The text of a bypass note for this request, before it is signed: what the authority reviews
    /// and ``sign(origin:namespace:key:version:retainUntil:asOf:notAfter:with:)`` signs.
    /// - Parameters:
    ///   - origin: the store's origin (``StoreConfig/origin``).
    ///   - namespace: the key's namespace.
    ///   - key: the key.
    ///   - version: the version whose governance locks are capped; nil for every version of the key.
    ///   - retainUntil: the new retain-until date, ns since the Unix epoch (a past date removes the locks).
    ///   - asOf: the tree size the authority looked at: only locks set before it are capped.
    ///   - notAfter: when the note expires, ns since the Unix epoch.
    public static func text(origin: String, namespace: String, key: [UInt8], version: UInt64?,
                            retainUntil: Int64, asOf: UInt64, notAfter: Int64) -> String {
        "stele-governance-bypass v1\norigin \(origin)\nnamespace \(namespace)\nkey \(Base64.encode(key))\n"
            + "version \(version.map(String.init) ?? "*")\nretain-until \(retainUntil)\nas-of \(asOf)\nnot-after \(notAfter)\n"
    }

    /// Signs a bypass (done by the authority, off the store's host); the parameters are those of
    /// ``text(origin:namespace:key:version:retainUntil:asOf:notAfter:)``, and `signer` is the
    /// governance key. Pass the note to ``Store/shortenGovernanceLock(namespace:key:version:retainUntil:authorization:)``.
    /// - Throws: ``SteleError/checkpoint(_:)`` (``CheckpointError``) if the text cannot be signed (a namespace with control characters, say).
    public static func sign(origin: String, namespace: String, key: [UInt8], version: UInt64?, retainUntil: Int64,
                            asOf: UInt64, notAfter: Int64, with signer: NoteSigner) throws -> String {
        try SignedNote.sign(text(origin: origin, namespace: namespace, key: key, version: version,
                                 retainUntil: retainUntil, asOf: asOf, notAfter: notAfter), with: signer)
    }

    /// The text of a governance key change, before it is signed.
    /// - Parameters:
    ///   - origin: the store's origin (``StoreConfig/origin``).
    ///   - newKey: the verifier key that replaces the one in force; nil retires governance for good.
    ///   - asOf: the tree size the authority looked at; it must be newer than the last change's.
    ///   - notAfter: when the note expires, ns since the Unix epoch.
    public static func keyChangeText(origin: String, newKey: NoteVerifier?, asOf: UInt64, notAfter: Int64) -> String {
        "stele-governance-key v1\norigin \(origin)\nnew-key \(newKey?.encoded ?? "none")\nas-of \(asOf)\nnot-after \(notAfter)\n"
    }

    /// Signs a governance key change with the key in force (done by the authority); the
    /// parameters are those of ``keyChangeText(origin:newKey:asOf:notAfter:)``. Pass the note to
    /// ``Store/changeGovernanceKey(to:authorization:)``.
    /// - Throws: ``SteleError/checkpoint(_:)`` (``CheckpointError``) if the text cannot be signed.
    public static func signKeyChange(origin: String, newKey: NoteVerifier?, asOf: UInt64, notAfter: Int64,
                                     with signer: NoteSigner) throws -> String {
        try SignedNote.sign(keyChangeText(origin: origin, newKey: newKey, asOf: asOf, notAfter: notAfter), with: signer)
    }

    /// The `as-of` tree size in a note as stored (its signature not checked: the text before the
    /// note's last blank line, which starts the signature block).
    static func asOf(_ note: String) -> UInt64? {
        let bytes = Array(note.utf8)
        guard let split = (0 ..< max(0, bytes.count - 1)).last(where: { bytes[$0] == 0x0a && bytes[$0 + 1] == 0x0a }) else { return nil }
        return terms(String(decoding: bytes[...split], as: UTF8.self))?.asOf
    }

    /// `as-of` and `not-after`, the last two lines of a note's text. A namespace may contain
    /// line breaks, so the text is read from its end, and then compared whole with the text the
    /// request implies.
    private static func terms(_ text: String) -> (asOf: UInt64, notAfter: Int64)? {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.last == "" else { return nil }
        lines.removeLast()
        guard lines.count >= 2, let notAfterLine = lines.last, let asOfLine = lines.dropLast().last,
              notAfterLine.hasPrefix("not-after "), asOfLine.hasPrefix("as-of "),
              let notAfter = Int64(notAfterLine.dropFirst(10)), let asOf = UInt64(asOfLine.dropFirst(6)) else { return nil }
        return (asOf, notAfter)
    }

    /// Opens a note with `key`; without a key, the store has no governance key to check with.
    private static func open(_ note: String, key: NoteVerifier?) throws -> String {
        guard let key else { throw SteleError.retention(.noGovernanceKey) }
        return try SignedNote.open(note, verifier: key)
    }

    /// Checks a bypass: signed by `key`, for exactly this request, and not expired at `time`.
    /// Returns its `as-of` tree size.
    /// - Throws: ``SteleError/retention(_:)`` (``RetentionError/noGovernanceKey``,
    ///   ``RetentionError/authorizationMismatch``, ``RetentionError/authorizationExpired(_:)``),
    ///   ``SteleError/checkpoint(_:)`` for a signature that does not verify.
    static func checkBypass(_ note: String, key: NoteVerifier?, origin: String, namespace: String, key target: [UInt8],
                            version: UInt64?, retainUntil: Int64, time: Int64) throws -> UInt64 {
        let text = try open(note, key: key)
        guard let (asOf, notAfter) = terms(text),
              text == self.text(origin: origin, namespace: namespace, key: target, version: version, retainUntil: retainUntil,
                                asOf: asOf, notAfter: notAfter) else {
            throw SteleError.retention(.authorizationMismatch)
        }
        guard time <= notAfter else { throw SteleError.retention(.authorizationExpired(notAfter)) }
        return asOf
    }

    /// Checks a key change: signed by `key` (the key in force), for this origin and new key, not
    /// expired at `time`, and looking at a tree no older than `since` (the last change).
    static func checkKeyChange(_ note: String, key: NoteVerifier?, origin: String, newKey: NoteVerifier?,
                               since: UInt64, time: Int64) throws -> UInt64 {
        let text = try open(note, key: key)
        guard let (asOf, notAfter) = terms(text),
              text == keyChangeText(origin: origin, newKey: newKey, asOf: asOf, notAfter: notAfter), asOf >= since else {
            throw SteleError.retention(.authorizationMismatch)
        }
        guard time <= notAfter else { throw SteleError.retention(.authorizationExpired(notAfter)) }
        return asOf
    }
}
