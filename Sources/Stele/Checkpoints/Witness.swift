import Synchronization
import SteleNative

/// A transparency-log witness (c2sp.org/tlog-witness): cosigns a log's checkpoint only after
/// checking that it is consistent with the last one it cosigned for that log, so that two
/// inconsistent views of one log (a fork, a rollback) never both gather its cosignature.
///
/// Invariants: for each origin, the persisted state (size, root) is the latest checkpoint this
/// witness cosigned, and only grows along consistency proofs; checking a request against it and
/// persisting the new state happen under one lock, before the cosignature is returned (the
/// spec's race: two requests checked against the same old size must not both be cosigned, or
/// the second would roll the first back). The state directory is locked against a second
/// witness process. State files: `<state>/<hex SHA-256 of the origin>`, holding
/// `stele-witness 2\n<origin>\n<size>\n<base64 root>\n<time>\n`, replaced atomically (temporary
/// file, fsync, rename, directory fsync); version 1 files (without the time) are read.
///
/// Cosignature times never go back for a log: each is the later of the clock and the time of the
/// last cosignature (kept in the state), so that after a backward clock step a larger tree never
/// carries an earlier time than a smaller one (a monitor ages a log by its newest cosignature).
///
/// The state directory must exist: a witness started on a mistyped path, or one whose state was
/// lost, would cosign any history of its logs once, so creating it is the operator's deliberate
/// act (`mkdir`) when setting up a new witness.
public final class Witness: Sendable {
    /// The answer to one `add-checkpoint` request, independent of the HTTP library.
    public struct Answer: Sendable, Equatable {
        public var status: Int
        public var contentType: String
        public var body: String
    }

    private let cosigner: Cosigner
    /// Trusted log keys by origin (by convention a log key's name is its origin).
    private let logs: [String: [NoteVerifier]]
    private let directory: String
    private let fs: any FileSystem
    private let lock: FileDescriptor
    private let state = Mutex(())
    private let clock: any WallClock

    /// Opens the state directory, which must exist, and locks it.
    /// - Parameters:
    ///   - cosigner: the witness's key (``Cosigner``), which signs its cosignatures.
    ///   - logs: the logs' verifier keys; a log is known by the origin its key names.
    ///   - stateDirectory: where the latest cosigned checkpoint of each log is kept.
    /// - Throws: ``SteleError/io(_:)``; ``SteleError/invalidArgument(_:)`` if the state
    ///   directory does not exist, or another witness process holds it.
    public convenience init(cosigner: Cosigner, logs: [NoteVerifier], stateDirectory: String) throws {
        try self.init(cosigner: cosigner, logs: logs, stateDirectory: stateDirectory, fileSystem: PosixFileSystem(), clock: SystemClock())
    }

    package init(cosigner: Cosigner, logs: [NoteVerifier], stateDirectory: String, fileSystem: any FileSystem, clock: any WallClock) throws {
        self.cosigner = cosigner
        self.logs = Dictionary(grouping: logs, by: \.name)
        self.directory = stateDirectory
        self.fs = fileSystem
        self.clock = clock
        guard let status = try fs.status(stateDirectory), status.isDirectory else {
            throw SteleError.invalidArgument("the witness state directory \(stateDirectory) does not exist: create it for a new witness "
                + "(a witness without its state would cosign any history of its logs once)")
        }
        let lockPath = stateDirectory + "/lock"
        lock = try fs.status(lockPath) == nil ? fs.open(lockPath, .createNew(permissions: 0o644)) : fs.open(lockPath, .readWrite)
        guard try fs.lockExclusive(lock) else {
            fs.close(lock)
            throw SteleError.invalidArgument("another witness holds \(stateDirectory)")
        }
    }

    deinit { fs.close(lock) }

    /// The latest checkpoint cosigned for `origin`: size and root (size 0 if none).
    public func latest(origin: String) throws -> (size: UInt64, root: Digest?) {
        let state = try persisted(origin: origin)
        return (state.size, state.root)
    }

    /// The persisted state for `origin`, with the time of its last cosignature (0 if none, or a
    /// version 1 file).
    private func persisted(origin: String) throws -> (size: UInt64, root: Digest?, time: UInt64) {
        guard let bytes = try fs.readWholeFile(path(origin), limit: SignedNote.maxSize) else { return (0, nil, 0) }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        let version2 = lines.first == "stele-witness 2"
        guard lines.count == (version2 ? 6 : 5), version2 || lines[0] == "stele-witness 1", lines[1] == origin, let size = UInt64(lines[2]),
              let raw = Base64.decode(lines[3]), let root = Digest(bytes: raw), lines.last?.isEmpty == true else {
            throw SteleError.corruption(Corruption(file: path(origin), detail: "not a witness state file"))
        }
        guard version2 else { return (size, root, 0) }
        guard let time = UInt64(lines[4]), time <= UInt64(Int64.max) else { throw SteleError.corruption(Corruption(file: path(origin), detail: "not a witness state file")) }
        return (size, root, time)
    }

    /// Handles an `add-checkpoint` request body: `old <size>\n`, up to 63 base64 consistency
    /// proof lines, an empty line, and the signed checkpoint.
    ///
    /// 200 with the cosignature line; 400 for a malformed body or an old size above the
    /// checkpoint's; 403 when no signature by a trusted key for its origin verifies; 404 for an
    /// unknown origin; 409 (`text/x.tlog.size`, the latest cosigned size) when the old size is not
    /// the one this witness last cosigned, or the size is the same with another root; 422 when
    /// the consistency proof does not verify; 500 if the state cannot be read or persisted.
    public func addCheckpoint(_ body: [UInt8]) -> Answer {
        guard let request = Self.parse(body) else { return .text(400, "malformed add-checkpoint body") }
        let checkpoint: Checkpoint
        let text: String
        do {
            (text, _) = try SignedNote.split(request.note)
            checkpoint = try Checkpoint(parsing: text)
        } catch {
            return .text(400, "malformed checkpoint: \(error)")
        }
        guard let keys = logs[checkpoint.origin] else { return .text(404, "unknown log \(checkpoint.origin)") }
        guard keys.contains(where: { (try? SignedNote.open(request.note, verifier: $0)) != nil }) else {
            return .text(403, "no valid signature by a trusted key of \(checkpoint.origin)")
        }
        guard request.oldSize <= checkpoint.treeSize else { return .text(400, "old size \(request.oldSize) is above the checkpoint's") }
        return state.withLock { _ -> Answer in
            let latest: (size: UInt64, root: Digest?, time: UInt64)
            do { latest = try self.persisted(origin: checkpoint.origin) } catch { return .text(500, "\(error)") }
            guard request.oldSize == latest.size else {
                return Answer(status: 409, contentType: "text/x.tlog.size", body: "\(latest.size)\n")
            }
            if let root = latest.root, checkpoint.treeSize == latest.size {
                guard checkpoint.root == root else {
                    return Answer(status: 409, contentType: "text/x.tlog.size", body: "\(latest.size)\n")
                }
                guard request.proof.isEmpty else { return .text(422, "a consistency proof between equal sizes must be empty") }
            } else if checkpoint.treeSize == 0 {
                // The empty tree has one root: cosigning another would be a false statement.
                guard checkpoint.root == TreeHash.emptyRoot, request.proof.isEmpty else {
                    return .text(422, "a checkpoint of size 0 must carry the empty tree's root and no proof")
                }
            } else if let root = latest.root {
                guard MerkleVerifier.verifyConsistency(oldSize: latest.size, newSize: checkpoint.treeSize, oldRoot: root,
                                                       newRoot: checkpoint.root, proof: request.proof) else {
                    return .text(422, "the consistency proof from \(latest.size) to \(checkpoint.treeSize) does not verify")
                }
            } else if !request.proof.isEmpty {
                return .text(422, "a consistency proof from size 0 must be empty")
            }
            do {
                let now = UInt64(max(0, clock.nanosecondsSinceEpoch() / 1_000_000_000))
                // A last time more than a day ahead (a clock that once jumped years forward, an
                // edited state file) would date every later cosignature there, and a monitor
                // would see a dead log as fresh: refuse, and let the operator look.
                guard latest.time <= now + 86_400 else {
                    return .text(500, "the state's last cosignature time \(latest.time) is more than a day ahead of the clock (\(now))")
                }
                let time = max(now, latest.time)
                let line = try cosigner.cosign(text, time: time)
                let record = "stele-witness 2\n\(checkpoint.origin)\n\(checkpoint.treeSize)\n\(Base64.encode(checkpoint.root.bytes))\n\(time)\n"
                try fs.writeAtomically(Array(record.utf8), to: path(checkpoint.origin), permissions: 0o644, directory: directory)
                return Answer(status: 200, contentType: "text/plain; charset=utf-8", body: line)
            } catch {
                return .text(500, "\(error)")
            }
        }
    }

    private func path(_ origin: String) -> String {
        directory + "/" + SHA256Hasher.hash(Array(origin.utf8)).hex
    }

    /// The request body's parts; nil if it is malformed.
    static func parse(_ body: [UInt8]) -> (oldSize: UInt64, proof: [Digest], note: String)? {
        guard body.count <= SignedNote.maxSize + 64 * 46, let text = String(validating: body, as: UTF8.self) else { return nil }
        var rest = Substring(text)
        func line() -> Substring? {
            guard let end = rest.firstIndex(of: "\n") else { return nil }
            defer { rest = rest[rest.index(after: end)...] }
            return rest[..<end]
        }
        guard let first = line(), first.hasPrefix("old "), let size = UInt64(first.dropFirst(4)), first.dropFirst(4) == "\(size)" else {
            return nil
        }
        var proof: [Digest] = []
        while let next = line() {
            if next.isEmpty { return proof.count <= 63 ? (size, proof, String(rest)) : nil }
            guard let raw = Base64.decode(next), let hash = Digest(bytes: raw) else { return nil }
            proof.append(hash)
        }
        return nil
    }
}

extension Witness.Answer {
    static func text(_ status: Int, _ message: String) -> Self {
        Self(status: status, contentType: "text/plain; charset=utf-8", body: message + "\n")
    }
}
