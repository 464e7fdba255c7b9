import SteleNative

/// Fuzz checks for governance authorizations: the bypass and key-change notes a governance
/// authority signs, as the store checks them against a request.
extension FuzzRun {
    /// The input as a stored note (checked against a request, as every open re-checks a
    /// bypass), then its text (before the last blank line, if any) signed with the fuzz key:
    /// if the text is a well-formed bypass or key change, the request it names must be accepted
    /// until its not-after time and a request differing in one field refused.
    func governance(_ data: UnsafeRawBufferPointer) {
        guard let fuzzSigner else { return require(false, "the fixed Ed25519 seed is accepted") }
        let key = fuzzSigner.verifier
        let input = String(decoding: data, as: UTF8.self)
        _ = GovernanceAuthorization.asOf(input)
        _ = try? GovernanceAuthorization.checkBypass(input, key: key, origin: "fuzz.example/log", namespace: "n", key: [],
                                                     version: nil, retainUntil: 0, time: fuzzNow)
        _ = try? GovernanceAuthorization.checkKeyChange(input, key: key, origin: "fuzz.example/log", newKey: nil, since: 0, time: fuzzNow)

        let bytes = Array(input.utf8)
        let split = (0 ..< max(0, bytes.count - 1)).last { bytes[$0] == 0x0a && bytes[$0 + 1] == 0x0a }
        let text = String(decoding: split.map { bytes[...$0] } ?? bytes[...], as: UTF8.self)
        guard let note = try? SignedNote.sign(text, with: fuzzSigner) else { return }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        func field(_ line: Int, _ name: String) -> String? {
            line < lines.count && lines[line].hasPrefix(name + " ") ? String(lines[line].dropFirst(name.count + 1)) : nil
        }
        if lines.count == 9, lines[0] == "stele-governance-bypass v1", lines[8].isEmpty,
           let origin = field(1, "origin"), let namespace = field(2, "namespace"),
           let keyText = field(3, "key"), let target = Base64.decode(keyText), let versionText = field(4, "version"),
           let retainUntil = field(5, "retain-until").flatMap({ Int64($0) }), let asOf = field(6, "as-of").flatMap({ UInt64($0) }),
           let notAfter = field(7, "not-after").flatMap({ Int64($0) }) {
            let version: UInt64?? = versionText == "*" ? .some(nil) : UInt64(versionText).map { .some($0) }
            guard let version, GovernanceAuthorization.text(origin: origin, namespace: namespace, key: target, version: version,
                                                            retainUntil: retainUntil, asOf: asOf, notAfter: notAfter) == text else { return }
            func check(retainUntil: Int64, time: Int64) -> UInt64? {
                try? GovernanceAuthorization.checkBypass(reencodedText(note), key: key, origin: origin, namespace: namespace, key: target,
                                                         version: version, retainUntil: retainUntil, time: time)
            }
            require(check(retainUntil: retainUntil, time: notAfter) == asOf, "a bypass is accepted for the request it names")
            require(check(retainUntil: retainUntil &+ 1, time: notAfter) == nil, "a bypass is refused for another request")
            if notAfter < .max { require(check(retainUntil: retainUntil, time: notAfter + 1) == nil, "an expired bypass is refused") }
        }
        if lines.count == 6, lines[0] == "stele-governance-key v1", lines[5].isEmpty,
           let origin = field(1, "origin"), let newKeyText = field(2, "new-key"),
           let asOf = field(3, "as-of").flatMap({ UInt64($0) }), let notAfter = field(4, "not-after").flatMap({ Int64($0) }) {
            let newKey: NoteVerifier?? = newKeyText == "none" ? .some(nil) : (try? NoteVerifier(parsing: newKeyText)).map { .some($0) }
            guard let newKey, GovernanceAuthorization.keyChangeText(origin: origin, newKey: newKey, asOf: asOf, notAfter: notAfter) == text
            else { return }
            func check(since: UInt64, time: Int64) -> UInt64? {
                try? GovernanceAuthorization.checkKeyChange(reencodedText(note), key: key, origin: origin, newKey: newKey, since: since, time: time)
            }
            require(check(since: asOf, time: notAfter) == asOf, "a key change is accepted as of its own tree size")
            if asOf < .max { require(check(since: asOf + 1, time: notAfter) == nil, "a key change older than the last is refused") }
            if notAfter < .max { require(check(since: asOf, time: notAfter + 1) == nil, "an expired key change is refused") }
        }
    }
}
