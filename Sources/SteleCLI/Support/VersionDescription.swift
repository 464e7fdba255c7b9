import Stele

/// One version as a JSON object or a text line.
func describe(_ version: Version, json: Bool) -> String {
    if json {
        var fields = ["\"seq\":\(version.sequence)", "\"time\":\"\(rfc3339(nanoseconds: version.timestamp))\"",
                      "\"ns\":\(jsonString(version.namespace))", jsonBytesField("key", version.key)]
        if let value = version.value {
            fields.append(version.redactedLeafHash == nil ? jsonBytesField("value", value) : "\"redacted\":true")
        } else {
            fields.append("\"deleted\":true")
        }
        if let protection = version.protection {
            let locks = protection.locks.map {
                "{\"mode\":\"\($0.mode)\",\"until\":\"\(rfc3339(nanoseconds: $0.retainUntil))\",\"scope\":\"\($0.scope.rawValue)\",\"set_by\":\($0.setBy)}"
            }
            fields.append("\"locks\":[" + locks.joined(separator: ",") + "]")
            if let hold = protection.legalHold { fields.append("\"legal_hold\":\(jsonString(hold.reason))") }
        }
        return "{" + fields.joined(separator: ",") + "}"
    }
    let body = version.value.map { version.redactedLeafHash == nil ? ReadCommand.text($0) : "(redacted)" } ?? "(deleted)"
    var line = "\(version.sequence)\t\(rfc3339(nanoseconds: version.timestamp))\t\(ReadCommand.text(version.key))\t\(body)"
    if let protection = version.protection {
        for lock in protection.locks { line += "\t[\(lock.mode) until \(rfc3339(nanoseconds: lock.retainUntil)), \(lock.scope.rawValue)]" }
        if let hold = protection.legalHold { line += "\t[legal hold: \(hold.reason)]" }
    }
    return line
}
