import Stele

/// One version as `history` and `scan` print it: a JSON object, or a tab-separated text line.
func describe(_ version: Version, json: Bool) throws -> String {
    if json { return try jsonLine(VersionJSON(version)) }
    let body = version.value.map { version.redactedLeafHash == nil ? KeyText.display($0) : "(redacted)" } ?? "(deleted)"
    var line = "\(version.sequence)\t\(rfc3339(nanoseconds: version.timestamp))\t\(KeyText.display(version.key))\t\(body)"
    if let protection = version.protection {
        for lock in protection.locks { line += "\t[\(lock.mode) until \(rfc3339(nanoseconds: lock.retainUntil)), \(lock.scope.rawValue)]" }
        if let hold = protection.legalHold { line += "\t[legal hold: \(hold.reason)]" }
    }
    return line
}

/// A version as a JSON object. Of `value`/`value_b64`, `redacted` and `deleted` exactly one is
/// there: a purged payload or a tombstone is said, never printed as an empty value. `locks`
/// (possibly empty) and `legal_hold` appear only for a version that has had protection.
private struct VersionJSON: Encodable {
    struct Lock: Encodable {
        let mode: String
        let until: String
        let scope: String
        let setBy: UInt64

    }

    let seq: UInt64
    let time: String
    let ns: String
    let key: String?
    let keyB64: String?
    let value: String?
    let valueB64: String?
    let redacted: Bool?
    let deleted: Bool?
    let locks: [Lock]?
    let legalHold: String?


    init(_ version: Version) {
        seq = version.sequence
        time = rfc3339(nanoseconds: version.timestamp)
        ns = version.namespace
        let key = TextOrBase64(version.key)
        (self.key, keyB64) = (key.text, key.base64)
        let payload = version.redactedLeafHash == nil ? version.value.map(TextOrBase64.init) : nil
        (value, valueB64) = (payload?.text, payload?.base64)
        redacted = version.value != nil && version.redactedLeafHash != nil ? true : nil
        deleted = version.value == nil ? true : nil
        locks = version.protection.map { protection in
            protection.locks.map {
                Lock(mode: "\($0.mode)", until: rfc3339(nanoseconds: $0.retainUntil), scope: $0.scope.rawValue, setBy: $0.setBy)
            }
        }
        legalHold = version.protection?.legalHold?.reason
    }
}
