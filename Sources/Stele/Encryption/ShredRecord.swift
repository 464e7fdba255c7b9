import SteleNative

/// The value of a shred record (type 10; its namespace field names the namespace, its key field
/// is empty), docs/format.md "Shredding":
///
/// ```
/// u8 version (1) | 8 data key fingerprint | u16 reason length | reason (UTF-8)
/// ```
/// The fingerprint names the key that was destroyed without revealing it: the first 8 bytes of
/// SHA-256(`stele-data-key 1` ‖ 0x00 ‖ data key).
package struct ShredRecord: Equatable, Sendable {
    package var keyFingerprint: [UInt8]
    package var reason: String

    package init(keyFingerprint: [UInt8], reason: String) {
        self.keyFingerprint = keyFingerprint
        self.reason = reason
    }

    /// The fingerprint of a data key (see the type's comment).
    package static func fingerprint(ofDataKey key: [UInt8]) -> [UInt8] {
        Array(sha256(Array("stele-data-key 1".utf8) + [0] + key).prefix(8))
    }

    /// Reasons longer than this are refused (the record stays small).
    package static let maxReasonLength = 1024

    package var encoded: [UInt8] {
        let reason = Array(self.reason.utf8)
        return [1] + keyFingerprint + [UInt8(reason.count & 0xff), UInt8(reason.count >> 8)] + reason
    }

    /// Nil for anything malformed.
    package static func decode(_ bytes: [UInt8]) -> ShredRecord? {
        var reader = FieldReader(bytes)
        guard reader.u8() == 1, let fingerprint = reader.bytes(8), let reason = reader.text(width: 2), reader.atEnd,
              reason.utf8.count <= maxReasonLength else { return nil }
        return ShredRecord(keyFingerprint: fingerprint, reason: reason)
    }
}
