import Foundation
import Stele

/// A monitor of a tiled log served over HTTP (c2sp.org/tlog-tiles), as an outsider runs it:
/// it trusts only the log's verifier key, the witnesses' keys and its own state.
///
/// Each run fetches `/checkpoint`, checks the log's signature and the witnesses' quorum,
/// recomputes the checkpoint's root from the served tiles, and checks that the tree is
/// consistent with the checkpoint of the previous run (a consistency proof computed from the
/// served tiles, verified against the root the monitor kept). Only then is the new checkpoint
/// kept (`<state>/checkpoint`, replaced atomically): a log that forks, rolls back or serves
/// tiles that do not hash to its checkpoint is reported on every run until it is fixed.
public struct LogMonitor: Sendable {
    public enum Verdict: Sendable, Equatable {
        /// Signed, cosigned (as asked), its tiles hash to it, consistent with the last one seen.
        case healthy
        /// Forked, rolled back or lied: the reason.
        case inconsistent(String)
        /// Consistent, but the newest cosignature is older than the allowed age (seconds).
        case stale(ageSeconds: Int64)
    }

    public struct Report: Sendable {
        public var verdict: Verdict
        public var treeSize: UInt64?
        public var root: Digest?
        public var previousSize: UInt64?
        public var cosignatures = 0
        public var newestCosignatureAge: Int64?
    }

    public let url: URL
    public let verifier: NoteVerifier
    public let witnesses: [CosignatureVerifier]
    public let quorum: Int
    public let stateDirectory: String
    public let maxAge: Duration?
    public var timeout: TimeInterval = 10

    public init(url: URL, verifier: NoteVerifier, witnesses: [CosignatureVerifier], quorum: Int, stateDirectory: String, maxAge: Duration?) {
        self.url = url
        self.verifier = verifier
        self.witnesses = witnesses
        self.quorum = quorum
        self.stateDirectory = stateDirectory
        self.maxAge = maxAge
    }

    /// One look at the log.
    /// - Throws: ``SteleError`` when the log cannot be reached or read at all (no verdict), or
    ///   the state directory cannot be written.
    public func check(now: Date = Date()) throws -> Report {
        guard !witnesses.contains(where: { $0.publicKey == verifier.publicKey }) else {
            throw SteleError.invalidArgument("a witness key is the log's own key: the log could cosign for itself")
        }
        // One run at a time per state directory: two overlapping runs could otherwise keep an
        // older checkpoint after a newer one.
        let fs = PosixFileSystem()
        if try fs.status(stateDirectory) == nil { try fs.makeDirectory(stateDirectory) }
        let lockPath = stateDirectory + "/lock"
        let lock = try fs.status(lockPath) == nil ? fs.open(lockPath, .createNew(permissions: 0o644)) : fs.open(lockPath, .readWrite)
        defer { fs.close(lock) }
        guard try fs.lockExclusive(lock) else { throw SteleError.invalidArgument("another monitor run holds \(stateDirectory)") }
        return try checkHoldingTheState(now: now)
    }

    /// Cosignatures dated later than now by more than this are refused: a witness with a fast
    /// clock (or a colluding one) would otherwise keep the staleness alarm quiet.
    static let allowedClockSkew: Int64 = 300

    private func checkHoldingTheState(now: Date) throws -> Report {
        var report = Report(verdict: .healthy)
        let (status, body) = try PlainHTTP.request("GET", url.appendingPathComponent("checkpoint"), timeout: timeout)
        guard status == 200 else { throw SteleError.invalidArgument("\(url)/checkpoint answered \(status)") }
        let note = String(decoding: body, as: UTF8.self)
        let checkpoint: Checkpoint
        do {
            checkpoint = try Checkpoint(parsing: SignedNote.open(note, verifier: verifier))
        } catch {
            report.verdict = .inconsistent("the checkpoint is not validly signed by \(verifier.name): \(error)")
            return report
        }
        report.treeSize = checkpoint.treeSize
        report.root = checkpoint.root
        if !witnesses.isEmpty {
            do {
                report.cosignatures = try CosignatureQuorum.count(in: note, keys: witnesses)
                var byKey: [[UInt8]: UInt64] = [:]
                for witness in witnesses { if let time = try witness.cosignatureTime(in: note) { byKey[witness.publicKey] = time } }
                let nowSeconds = Int64(now.timeIntervalSince1970)
                if let future = byKey.values.first(where: { Int64(clamping: $0) > nowSeconds + Self.allowedClockSkew }) {
                    report.verdict = .inconsistent("a cosignature is dated \(Int64(clamping: future) - nowSeconds) s in the future")
                    return report
                }
                // The age that matters is the quorum's: the quorum-th newest cosignature.
                let times = byKey.values.sorted(by: >)
                let rank = max(quorum, 1) - 1
                report.newestCosignatureAge = rank < times.count ? nowSeconds - Int64(clamping: times[rank]) : nil
            } catch {
                report.verdict = .inconsistent("a cosignature does not verify: \(error)")
                return report
            }
            guard report.cosignatures >= quorum else {
                report.verdict = .inconsistent("\(report.cosignatures) of \(witnesses.count) witnesses cosigned it, \(quorum) needed")
                return report
            }
        }
        let tiles = HTTPTileSource(base: url, size: checkpoint.treeSize, timeout: timeout)
        do {
            let root = checkpoint.treeSize == 0 ? TreeHash.emptyRoot : try MerkleProofs.root(tiles, size: checkpoint.treeSize)
            guard root == checkpoint.root else {
                report.verdict = .inconsistent("the served tiles hash to \(root.hex), not to the checkpoint's root \(checkpoint.root.hex)")
                return report
            }
        } catch {
            report.verdict = .inconsistent("the tiles of the checkpoint cannot be read: \(error)")
            return report
        }
        if let previous = try previousCheckpoint() {
            report.previousSize = previous.treeSize
            guard previous.origin == checkpoint.origin else {
                report.verdict = .inconsistent("origin \(checkpoint.origin), previously \(previous.origin)")
                return report
            }
            guard previous.treeSize <= checkpoint.treeSize else {
                report.verdict = .inconsistent("rolled back: size \(checkpoint.treeSize) after \(previous.treeSize)")
                return report
            }
            let proof = (try? MerkleProofs.consistencyProof(tiles, from: previous.treeSize, to: checkpoint.treeSize)) ?? []
            let consistent = previous.treeSize == 0 ? true : MerkleVerifier.verifyConsistency(
                oldSize: previous.treeSize, newSize: checkpoint.treeSize, oldRoot: previous.root, newRoot: checkpoint.root, proof: proof)
            guard consistent else {
                report.verdict = .inconsistent("forked: the tree of size \(checkpoint.treeSize) does not extend the one of size \(previous.treeSize) seen before")
                return report
            }
        }
        try keep(note)
        if let maxAge, witnesses.isEmpty == false {
            let age = report.newestCosignatureAge ?? .max
            if age > maxAge.components.seconds { report.verdict = .stale(ageSeconds: age) }
        }
        return report
    }

    private var statePath: String { stateDirectory + "/checkpoint" }

    private func previousCheckpoint() throws -> Checkpoint? {
        guard let data = FileManager.default.contents(atPath: statePath) else { return nil }
        return try Checkpoint(parsing: SignedNote.split(String(decoding: data, as: UTF8.self)).text)
    }

    private func keep(_ note: String) throws {
        let fs = PosixFileSystem()
        if try fs.status(stateDirectory) == nil { try fs.makeDirectory(stateDirectory) }
        try fs.writeAtomically(Array(note.utf8), to: statePath, permissions: 0o644, directory: stateDirectory)
    }
}

/// Node hashes of a tree of `size` leaves, from tiles served over HTTP (each tile fetched once,
/// at the width the tree has; a tile of another length is an error).
final class HTTPTileSource: MerkleNodeSource, @unchecked Sendable {
    let base: URL
    let size: UInt64
    let timeout: TimeInterval
    private var tiles: [String: [Digest]] = [:]

    init(base: URL, size: UInt64, timeout: TimeInterval) {
        (self.base, self.size, self.timeout) = (base, size, timeout)
    }

    func node(level height: Int, index: UInt64) throws -> Digest {
        let tileLevel = height / 8, within = height % 8
        let first = index << UInt64(within)
        let tileIndex = first >> 8, offset = Int(first & 255)
        let available = size >> UInt64(8 * tileLevel)
        guard tileLevel < 8, available > tileIndex * 256 else { throw SteleError.proof(.invalidTreeSize(size + 1, available: size)) }
        let width = Int(min(256, available - tileIndex * 256))
        let hashes = try tile(level: tileLevel, index: tileIndex, width: width)
        guard offset + (1 << within) <= hashes.count else { throw SteleError.proof(.invalidTreeSize(size + 1, available: size)) }
        return Self.perfectRoot(hashes[offset ..< offset + (1 << within)])
    }

    private func tile(level: Int, index: UInt64, width: Int) throws -> [Digest] {
        let path = TileStore.path(level: level, index: index, partialWidth: width == 256 ? nil : width)
        if let cached = tiles[path] { return cached }
        let (status, body) = try PlainHTTP.request("GET", base.appendingPathComponent(path), timeout: timeout)
        guard status == 200, body.count == width * 32 else {
            throw SteleError.invalidArgument("\(path): status \(status), \(body.count) bytes for \(width) hashes")
        }
        let bytes = [UInt8](body)
        let hashes = (0 ..< width).compactMap { Digest(bytes: Array(bytes[$0 * 32 ..< $0 * 32 + 32])) }
        tiles[path] = hashes
        return hashes
    }

    /// The root of a perfect subtree over `hashes` (a power of two of them).
    static func perfectRoot(_ hashes: ArraySlice<Digest>) -> Digest {
        if hashes.count == 1, let only = hashes.first { return only }
        let half = hashes.count / 2
        return TreeHash.node(perfectRoot(hashes.prefix(half)), perfectRoot(hashes.suffix(half)))
    }
}
