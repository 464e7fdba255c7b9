import SteleNative

/// The value of the first loss record (type 9) of a recorded loss: records that the store's
/// evidence showed lost from its files, acknowledged by an operator (`stele record-loss`).
///
/// ```
/// u8 version (1) | u64 end | u64 superseded checkpoint size (0: none) | 32 its root (zeros: none)
/// | u16 length | evidence (UTF-8) | u16 length | reason (UTF-8)
/// ```
/// The record takes the first lost sequence number `s`; records `s + 1 ..< end` are loss records
/// with an empty value, placeholders for numbers that may have been handed out before the loss,
/// so that none is ever given to another record (a sequence number is also a Merkle leaf
/// index, so the numbers cannot simply be skipped). The next record after them is `end`.
/// Checkpoints signed over more than `s` records describe the lost history; the largest is
/// named here, and the store keeps them aside (`checkpoints/superseded-<s>/`).
package struct LossRecord: Equatable, Sendable {
    package var end: UInt64
    package var supersededCheckpoint: (size: UInt64, root: Digest)?
    package var evidence: String
    package var reason: String

    package static func == (a: LossRecord, b: LossRecord) -> Bool {
        a.end == b.end && a.supersededCheckpoint?.size == b.supersededCheckpoint?.size
            && a.supersededCheckpoint?.root == b.supersededCheckpoint?.root && a.evidence == b.evidence && a.reason == b.reason
    }

    /// Longest evidence and reason texts (each fits its 16-bit length).
    package static let maxText = 16 * 1024

    package var encoded: [UInt8] {
        var out: [UInt8] = [1]
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        put(end)
        put(supersededCheckpoint?.size ?? 0)
        out += (supersededCheckpoint?.root ?? .zero).bytes
        for text in [evidence, reason] {
            // Cut at a character boundary, so that the value still decodes.
            var cut = ""
            for character in text {
                if cut.utf8.count + String(character).utf8.count > LossRecord.maxText { break }
                cut.append(character)
            }
            let bytes = Array(cut.utf8)
            put(UInt16(bytes.count))
            out += bytes
        }
        return out
    }

    /// Decodes the first record's value; nil for anything malformed (a placeholder's value is empty).
    package static func decode(_ bytes: [UInt8]) -> LossRecord? {
        var reader = FieldReader(bytes)
        guard reader.u8() == 1, let end = reader.u64(), let size = reader.u64(), let root = reader.bytes(32),
              let evidence = reader.text(width: 2), let reason = reader.text(width: 2), reader.atEnd else { return nil }
        let digest = ByteView.of(root) { Digest($0, at: 0) }
        guard (size == 0) == (digest == .zero) else { return nil }
        return LossRecord(end: end, supersededCheckpoint: size == 0 ? nil : (size, digest), evidence: evidence, reason: reason)
    }
}

extension SegmentLog {
    /// The `end` of the log's last loss record when the log stops short of it (a recording of a
    /// loss cut short by a crash): read back from the last record over its placeholders.
    package func openLossEnd() -> UInt64? {
        var sequence = nextSequence
        while sequence > 0 {
            sequence -= 1
            guard let (type, value) = try? withFrame(at: sequence, { frame, view in (frame.type, frame.value(in: view)) }),
                  type == .loss else { return nil }
            guard let value, !value.isEmpty else { continue }  // a placeholder
            return LossRecord.decode(value).map(\.end).flatMap { $0 > nextSequence ? $0 : nil }
        }
        return nil
    }
}
