import SteleNative

/// C2SP signed notes: a UTF-8 text ending in a newline, a blank line, and signature lines
/// `— <key name> base64(4-byte key ID ‖ signature)`.
public enum SignedNote {
    /// Most signatures a note may carry (the spec asks verifiers to accept at least 16).
    static let maxSignatures = 100
    /// Largest note accepted.
    package static let maxSize = 1 << 20

    /// Signs `text` (which must end in a newline) with `signer`.
    /// - Returns: the note: `text`, a blank line, and one signature line.
    /// - Throws: ``SteleError/checkpoint(_:)`` (``CheckpointError/malformedNote(_:)``) for text that does not end in a newline or
    ///   holds control characters; ``CheckpointError/malformedKey(_:)`` if signing fails.
    /// - Cost: one Ed25519 signature.
    public static func sign(_ text: String, with signer: NoteSigner) throws -> String {
        guard text.hasSuffix("\n"), isWellFormedText(text) else {
            throw SteleError.checkpoint(.malformedNote("text must be valid, end in a newline and contain no control characters"))
        }
        let signature = try signer.sign(Array(text.utf8))
        let id = signer.verifier.keyID
        let idBytes: [UInt8] = [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: id >> $0) }
        let blob = idBytes + signature
        return text + "\n\u{2014} \(signer.name) \(Base64.encode(blob))\n"
    }

    /// Verifies `note` with `verifier` and returns its text.
    ///
    /// Signatures by other keys are ignored; a signature by `verifier` that fails rejects the
    /// whole note (c2sp.org/signed-note).
    /// - Throws: ``SteleError/checkpoint(_:)`` (``CheckpointError/malformedNote(_:)``), ``CheckpointError/noTrustedSignature(key:)``,
    ///   ``CheckpointError/badSignature(key:)``.
    public static func open(_ note: String, verifier: NoteVerifier) throws -> String {
        let (text, lines) = try split(note)
        var verified = false
        for (name, blob) in lines {
            let id = blob[0 ..< 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            guard name == verifier.name, id == verifier.keyID else { continue }
            guard Ed25519.verify(Array(blob[4...]), message: Array(text.utf8), publicKey: verifier.publicKey) else {
                throw SteleError.checkpoint(.badSignature(key: verifier.name))
            }
            verified = true
        }
        guard verified else { throw SteleError.checkpoint(.noTrustedSignature(key: verifier.name)) }
        return text
    }

    /// A note's text (up to and including the newline before the blank line) and its signature
    /// lines as (key name, decoded blob of at least 5 bytes: key ID and signature).
    /// - Throws: ``SteleError/checkpoint(_:)`` (``CheckpointError/malformedNote(_:)``).
    package static func split(_ note: String) throws -> (text: String, signatures: [(name: String, blob: [UInt8])]) {
        guard note.utf8.count <= maxSize else { throw SteleError.checkpoint(.malformedNote("larger than \(maxSize) bytes")) }
        guard isWellFormedText(note) else { throw SteleError.checkpoint(.malformedNote("control characters other than newline")) }
        // The text ends at the last blank line; the signature lines follow it.
        let bytes = Array(note.utf8)
        guard let split = (0 ..< max(0, bytes.count - 1)).last(where: { bytes[$0] == 0x0a && bytes[$0 + 1] == 0x0a }) else {
            throw SteleError.checkpoint(.malformedNote("no blank line before the signatures"))
        }
        let text = String(decoding: bytes[...split], as: UTF8.self)
        let signatures = String(decoding: bytes[(split + 2)...], as: UTF8.self)
        guard signatures.hasSuffix("\n") else { throw SteleError.checkpoint(.malformedNote("does not end in a newline")) }
        let lines = signatures.dropLast().split(separator: "\n", omittingEmptySubsequences: false)
        guard !lines.isEmpty, lines.count <= maxSignatures else { throw SteleError.checkpoint(.malformedNote("no or too many signatures")) }
        return (text, try lines.map { line in
            guard line.hasPrefix("\u{2014} ") else { throw SteleError.checkpoint(.malformedNote("signature line without em dash")) }
            let fields = line.dropFirst(2).split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count == 2, NoteVerifier.isValidName(String(fields[0])), let blob = Base64.decode(fields[1]), blob.count >= 5 else {
                throw SteleError.checkpoint(.malformedNote("malformed signature line"))
            }
            return (String(fields[0]), blob)
        })
    }

    static func isWellFormedText(_ text: String) -> Bool {
        !text.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" }
    }
}

/// A C2SP tlog-checkpoint body: origin, tree size, root hash, optional extension lines.
public struct Checkpoint: Sendable, Equatable {
    /// The log's identity (``StoreConfig/origin``).
    public var origin: String
    /// How many records the checkpoint covers (sequence numbers `0 ..< treeSize`).
    public var treeSize: UInt64
    /// The RFC 6962 root of the tree of those records.
    public var root: Digest
    /// Further lines after the root, kept as they are (Stele writes none).
    public var extensions: [String] = []

    /// A checkpoint body; sign its ``text`` with ``SignedNote/sign(_:with:)``.
    public init(origin: String, treeSize: UInt64, root: Digest, extensions: [String] = []) {
        self.origin = origin
        self.treeSize = treeSize
        self.root = root
        self.extensions = extensions
    }

    /// The note text: one line each, ending in a newline.
    public var text: String {
        ([origin, String(treeSize), Base64.encode(root.bytes)] + extensions).map { $0 + "\n" }.joined()
    }

    /// Parses a checkpoint's note text (after its signature was verified).
    /// - Throws: ``SteleError/checkpoint(_:)`` (``CheckpointError/malformedCheckpoint(_:)``).
    public init(parsing text: String) throws {
        guard text.hasSuffix("\n") else { throw SteleError.checkpoint(.malformedCheckpoint("does not end in a newline")) }
        let lines = text.dropLast().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.count >= 3, !lines.contains(where: \.isEmpty) else {
            throw SteleError.checkpoint(.malformedCheckpoint("needs origin, size and root lines, none empty"))
        }
        guard let size = UInt64(lines[1]), lines[1] == String(size) else {
            throw SteleError.checkpoint(.malformedCheckpoint("tree size \"\(lines[1])\" is not a decimal without leading zeros"))
        }
        guard let rootBytes = Base64.decode(lines[2]), let root = Digest(bytes: rootBytes) else {
            throw SteleError.checkpoint(.malformedCheckpoint("root is not 32 bytes of base64"))
        }
        self.init(origin: lines[0], treeSize: size, root: root, extensions: Array(lines.dropFirst(3)))
    }
}
