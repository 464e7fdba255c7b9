#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SteleNative

/// Entry points for the libFuzzer targets in `tools/fuzz` (see `docs/fuzzing.md`). Not API:
/// `@_spi(Fuzzing)` keeps them out of what `import Stele` shows, while the fuzz package, which
/// cannot see `package` symbols from outside this package, reaches the real decoders through them.
///
/// Each function feeds arbitrary bytes to the decoders the store runs on disk (or caller)
/// input. Rejection is fine: every decoder answers bad input with a typed error, `nil` or a
/// `Result` failure. A trap, crash or hang is a finding. Where a decoder has an encoder, a
/// successful decode is also checked to round-trip; each function returns the properties that did
/// not hold (empty when all did), and the fuzz target stops the process on any, because that is
/// how a fuzzer learns about it. The library itself never traps here.
///
/// Checksums would stop a mutating fuzzer at the first check (it cannot guess an XXH3), so
/// every binary input is decoded twice: as given, and with its checksums recomputed in a copy,
/// which lets the fuzzer reach the field checks behind them.
@_spi(Fuzzing) public enum FuzzHarness {
    public static func frames(_ data: UnsafeRawBufferPointer) -> [String] { FuzzRun().run { $0.frames(data) } }
    public static func segment(_ data: UnsafeRawBufferPointer) -> [String] { FuzzRun().run { $0.segment(data) } }
    public static func note(_ data: UnsafeRawBufferPointer) -> [String] { FuzzRun().run { $0.note(data) } }
    public static func importLine(_ data: UnsafeRawBufferPointer) -> [String] { FuzzRun().run { $0.importLine(data) } }
    public static func indexSnapshot(_ data: UnsafeRawBufferPointer) -> [String] { FuzzRun().run { $0.indexSnapshot(data) } }
    public static func config(_ data: UnsafeRawBufferPointer) -> [String] { FuzzRun().run { $0.config(data) } }
    public static func sealedSegment(_ data: UnsafeRawBufferPointer) -> [String] { FuzzRun().run { $0.sealedSegment(data) } }
    public static func stateFile(_ data: UnsafeRawBufferPointer) -> [String] { FuzzRun().run { $0.stateFile(data) } }
    public static func governance(_ data: UnsafeRawBufferPointer) -> [String] { FuzzRun().run { $0.governance(data) } }
}

/// One harness call: the checks, and the properties they found violated.
final class FuzzRun {
    private(set) var violations: [String] = []
    /// Applied to every re-encoding (and every note the harness signs) before a property compares
    /// it: the identity, except in `FuzzPropertyTests`, which passes a wrong encoder to show that
    /// each property check can fail.
    let reencoded: ([UInt8]) -> [UInt8]

    init(reencoded: @escaping ([UInt8]) -> [UInt8] = { $0 }) {
        self.reencoded = reencoded
    }

    /// ``reencoded`` for text.
    func reencodedText(_ text: String) -> String { String(decoding: reencoded(Array(text.utf8)), as: UTF8.self) }

    func run(_ body: (FuzzRun) -> Void) -> [String] {
        body(self)
        return violations
    }

    /// Frames back to back from offset 0, as they follow a segment header, and the values of
    /// retention, legal-hold, policy and redaction records among them.
    func frames(_ data: UnsafeRawBufferPointer) {
        let input = Array(data)
        decodeFrames(input)
        var patched = input
        var offset = 0
        while offset + 4 <= patched.count {
            guard let length = patchFrameChecksum(&patched, at: offset) else { break }
            offset += length
        }
        decodeFrames(patched)
    }

    /// A whole segment file: header, footer (found from the end, as for a sealed segment) and
    /// the recovery scan of an active segment.
    func segment(_ data: UnsafeRawBufferPointer) {
        let input = Array(data)
        decodeSegment(input)
        decodeSegment(withChecksumsRecomputed(input))
    }

    /// A copy of segment bytes with every frame's, the header's and the footer's XXH3 recomputed.
    func withChecksumsRecomputed(_ input: [UInt8]) -> [UInt8] {
        var patched = input
        var offset = SegmentHeader.size
        while offset + 4 <= patched.count {
            guard let length = patchFrameChecksum(&patched, at: offset) else { break }
            offset += length
        }
        if patched.count >= SegmentHeader.size {
            let sum = checksum(patched[0 ..< 120])
            patched.replaceSubrange(120 ..< 128, with: littleEndianBytes(sum))
        }
        if patched.count >= 16 {
            let length = ByteView.of(patched) { Int(truncatingIfNeeded: $0.u64($0.count - 16)) }
            if length >= SegmentFooter.fixedSize, length <= min(SegmentFooter.maxSize, patched.count),
               (length - SegmentFooter.fixedSize) % 32 == 0 {
                let start = patched.count - length, k = (length - SegmentFooter.fixedSize) / 32
                let sum = checksum(patched[start ..< start + 160 + 32 * k])
                patched.replaceSubrange(start + 160 + 32 * k ..< start + 168 + 32 * k, with: littleEndianBytes(sum))
            }
        }
        return patched
    }

    /// Text as a signed note, a checkpoint body, a verifier or signer key and a governance
    /// authorization. Also signs the text before the last blank line (a fuzzer cannot forge a
    /// signature) and checks that the note opens again to the same text.
    func note(_ data: UnsafeRawBufferPointer) {
        guard let fuzzSigner else { return require(false, "the fixed Ed25519 seed is accepted") }
        let text = String(decoding: data, as: UTF8.self)
        _ = try? SignedNote.open(text, verifier: fuzzSigner.verifier)
        _ = GovernanceAuthorization.asOf(text)
        if let checkpoint = try? Checkpoint(parsing: text) {
            require((try? Checkpoint(parsing: reencodedText(checkpoint.text))) == checkpoint, "checkpoint text round trip")
        }
        if let checkpoint = try? CheckpointStore.body(of: text, path: "fuzz") {
            require((try? Checkpoint(parsing: reencodedText(checkpoint.text))) == checkpoint, "stored checkpoint round trip")
        }
        if let verifier = try? NoteVerifier(parsing: text) {
            require((try? NoteVerifier(parsing: reencodedText(verifier.encoded))) == verifier, "verifier key round trip")
        }
        if let signer = try? NoteSigner(parsing: text) {
            require((try? NoteSigner(parsing: reencodedText(signer.encoded)))?.verifier == signer.verifier, "signer key round trip")
        }
        // The body of a note is everything up to and including the first newline of its last
        // blank line; without one, the whole text.
        let bytes = Array(text.utf8)
        let split = (0 ..< max(0, bytes.count - 1)).last { bytes[$0] == 0x0a && bytes[$0 + 1] == 0x0a }
        let body = String(decoding: split.map { bytes[...$0] } ?? bytes[...], as: UTF8.self)
        if let note = try? SignedNote.sign(body, with: fuzzSigner) {
            require((try? SignedNote.open(reencodedText(note), verifier: fuzzSigner.verifier)) == body, "signed note does not open to its text")
        }
    }

    /// One JSON Lines import line. A line that parses is written back as JSON (base64 fields)
    /// and must parse to the same entry and lock.
    func importLine(_ data: UnsafeRawBufferPointer) {
        guard let line = try? ImportLine(parsing: Array(data), lineNumber: 1, now: fuzzNow) else { return }
        struct Written: Encodable {
            var ns: String
            var key_b64: String
            var value_b64: String
            var lock: [String: String]?
        }
        let lock = line.lock.map { ["mode": $0.mode.description, "until": isoDate($0.retainUntil)] }
        let written = Written(ns: String(decoding: line.entry.namespace, as: UTF8.self),
                              key_b64: Data(line.entry.key).base64EncodedString(),
                              value_b64: Data(line.entry.value).base64EncodedString(), lock: lock)
        guard let json = try? JSONEncoder().encode(written) else { return require(false, "an import line can be written back") }
        let again = try? ImportLine(parsing: reencoded(Array(json)), lineNumber: 1, now: fuzzNow)
        require(again?.entry == line.entry, "import line round trip (entry)")
        // Dates go through whole seconds in ISO 8601 text and a Double: compare locks to the second.
        require(again?.lock?.mode == line.lock?.mode, "import line round trip (lock mode)")
        if let before = line.lock?.retainUntil, let after = again?.lock?.retainUntil {
            require(abs(before / 1_000_000_000 - after / 1_000_000_000) <= 1, "import line round trip (lock date)")
        }
    }

    /// An index snapshot file; one that decodes must encode to the same bytes.
    func indexSnapshot(_ data: UnsafeRawBufferPointer) {
        let input = Array(data)
        decodeSnapshot(input)
        guard input.count >= 8 else { return }
        var patched = input
        let sum = checksum(patched[0 ..< patched.count - 8])
        patched.replaceSubrange(patched.count - 8 ..< patched.count, with: littleEndianBytes(sum))
        decodeSnapshot(patched)
    }

    /// A `stele.conf` text, as given and with its checksum line recomputed; one that decodes
    /// must decode again from its encoding to the same config.
    func config(_ data: UnsafeRawBufferPointer) {
        let input = Array(data)
        decodeConfig(input)
        // The checksum line is the last line; everything before it is what it covers.
        guard input.last == 0x0a, let start = input.dropLast().lastIndex(of: 0x0a).map({ $0 + 1 }) else { return }
        let body = Array(input[..<start])
        let digits = String(xxh3(body), radix: 16)
        decodeConfig(body + Array(("xxh3 " + String(repeating: "0", count: 16 - digits.count) + digits + "\n").utf8))
    }

    // MARK: Helpers

    /// Records a property that does not hold (the fuzz target then stops the process).
    func require(_ condition: Bool, _ property: String) {
        if !condition { violations.append(property) }
    }

    func littleEndianBytes(_ value: UInt64) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }

    func checksum(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        xxh3(Array(bytes))
    }

    private func isoDate(_ ns: Int64) -> String {
        Date(timeIntervalSince1970: Double(ns / 1_000_000_000)).formatted(.iso8601)
    }

    /// Writes the XXH3 a frame at `offset` would need, if its length word fits; returns the length.
    func patchFrameChecksum(_ bytes: inout [UInt8], at offset: Int) -> Int? {
        let length = ByteView.of(bytes) { Int($0.u32(offset)) }
        guard length >= Frame.overhead, length <= bytes.count - offset else { return nil }
        let sum = checksum(bytes[offset ..< offset + length - Frame.checksumSize])
        bytes.replaceSubrange(offset + length - 8 ..< offset + length, with: littleEndianBytes(sum))
        return length
    }

    private func decodeFrames(_ bytes: [UInt8]) {
        ByteView.of(bytes) { view in
            var offset = 0
            while case .success(let frame) = Frame.decode(view, at: offset, limit: view.count) {
                _ = frame.leafHash(in: view)
                if let record = frame.record(in: view) { decodeRecordValue(record) }
                let again = ByteWriter.makeArray(count: frame.length) { writer in
                    view.slice(frame.namespace.lowerBound, frame.namespace.count).withBuffer { ns in
                        view.slice(frame.key.lowerBound, frame.key.count).withBuffer { key in
                            view.slice(frame.stored.lowerBound, frame.stored.count).withBuffer { stored in
                                _ = Frame.encode(into: writer, at: 0, type: frame.type, flags: frame.flags, sequence: frame.sequence,
                                                 timestamp: frame.timestamp, namespace: ns, key: key, stored: stored,
                                                 valueLength: frame.valueLength)
                            }
                        }
                    }
                }
                require(view.slice(offset, frame.length).equals(reencoded(again)), "frame re-encodes to the same bytes")
                offset = frame.end
            }
        }
    }

    private func decodeRecordValue(_ record: Record) {
        switch record.type {
        case .retention:
            if let value = RetentionRecord.decode(record.value) {
                require(RetentionRecord.decode(reencoded(value.encoded)) == value, "retention record round trip")
            }
        case .legalHold:
            if let value = LegalHoldRecord.decode(record.value) {
                require(LegalHoldRecord.decode(reencoded(value.encoded)) == value, "legal-hold record round trip")
            }
        case .policy:
            if let value = PolicyRecord.decode(record.value) {
                require(PolicyRecord.decode(reencoded(value.encoded)) == value, "policy record round trip")
            }
        case .redaction:
            if let value = RedactionRecord.decode(record.value) {
                require(RedactionRecord.decode(reencoded(value.encoded)) == value, "redaction record round trip")
            }
        case .config:
            if let value = ConfigRecord.decode(record.value) {
                require(ConfigRecord.decode(reencoded(value.encoded)) == value, "config record round trip")
                var state = RetentionState()
                try? state.apply(type: .config, sequence: record.sequence, timestamp: record.timestamp,
                                 namespace: record.namespace, key: record.key, value: record.value)
            }
        case .loss:
            if let value = LossRecord.decode(record.value) {
                require(LossRecord.decode(reencoded(value.encoded)) == value, "loss record round trip")
            }
        case .shred:
            if let value = ShredRecord.decode(record.value) {
                require(ShredRecord.decode(reencoded(value.encoded)) == value, "shred record round trip")
            }
        default:
            break
        }
    }

    private func decodeSegment(_ bytes: [UInt8]) {
        ByteView.of(bytes) { view in
            let header = try? SegmentHeader.decode(view).get()
            if let header {
                require(view.slice(0, SegmentHeader.size).equals(reencoded(header.encoded)), "segment header re-encodes to the same bytes")
            }
            if let footer = try? SegmentFooter.decodeAtEnd(view).get() {
                require(view.slice(view.count - footer.size, footer.size).equals(reencoded(footer.encoded)), "footer re-encodes to the same bytes")
                if let header { _ = footer.computeSealHash(header: header) }
                _ = Frontier(size: footer.treeSize, hashes: footer.frontier)?.root
            }
            // The recovery scan, as on open of an active segment (whose header decoded first).
            if let header {
                _ = SegmentScan.scan(view, firstSequence: header.firstSequence, minimumTimestamp: .min,
                                     frontier: Frontier(), durableEnd: Int(clamping: header.durableEnd))
            }
        }
    }

    private func decodeConfig(_ bytes: [UInt8]) {
        guard let config = try? StoreConfig.decode(String(decoding: bytes, as: UTF8.self), path: "fuzz") else { return }
        require((try? StoreConfig.decode(reencodedText(config.encoded), path: "fuzz")) == config, "store config round trip")
    }

    private func decodeSnapshot(_ bytes: [UInt8]) {
        guard let snapshot = IndexSnapshot.decode(bytes) else { return }
        require(reencoded(snapshot.encoded) == bytes, "index snapshot re-encodes to the same bytes")
    }
}

/// A fixed key, so that runs are reproducible.
let fuzzSigner = try? NoteSigner(name: "fuzz.example/log", seed: [UInt8](repeating: 7, count: 32))

/// 2026-01-01T00:00:00Z: a fixed "now" for `"for"` locks.
let fuzzNow: Int64 = 1_767_225_600_000_000_000
