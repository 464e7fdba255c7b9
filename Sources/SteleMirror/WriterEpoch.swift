import Foundation
import Stele
import SteleNative

/// A writer epoch: the claim, kept in the copy, that one store extends the log from a given
/// record on (docs/operations.md, "Writer epochs and fencing").
///
/// ```
/// epochs/00000000000000000002      written once, like every object of the copy
///
/// stele-writer-epoch 1             format line
/// epoch 2                          1, 2, 3, ...: the newest in the copy is the writer
/// store 1f0e...                    the store's id (32 hex digits): every epoch of a copy names the same
/// from 1048576                     the first sequence number this epoch's writer appends
/// at 1765065600000000000           when it was claimed (Unix nanoseconds)
/// holder standby-b:/var/lib/stele  who claimed it (free text, one line)
/// ```
///
/// Why a claim object and not a lock: an object store offers no lock that outlives a partition,
/// but it does offer a create that only one of two racing writers wins (S3's `If-None-Match: *`,
/// a directory's `link`). A writer that finds a newer epoch than its own in the copy has been
/// replaced, and stops adding to the copy. The first mirror pass of a store claims epoch 1; a
/// store keeps the claim it holds in `epoch` in its directory (see `Mirror+Epoch.swift`).
public struct WriterEpoch: Sendable, Equatable {
    public var epoch: UInt64
    public var storeID: [UInt8]
    /// The first sequence number this epoch's writer appends (records before it come from earlier epochs).
    public var firstSequence: UInt64
    /// Unix nanoseconds.
    public var claimedAt: Int64
    public var holder: String

    public init(epoch: UInt64, storeID: [UInt8], firstSequence: UInt64, claimedAt: Int64, holder: String) {
        self.epoch = epoch
        self.storeID = storeID
        self.firstSequence = firstSequence
        self.claimedAt = claimedAt
        self.holder = String(oneLine(holder).prefix(200))
    }

    /// Where claims live in a copy.
    public static let prefix = "epochs/"
    /// The file in a store's directory with the claim it holds.
    public static let fileName = StoreLayout.epochFileName
    private static let formatLine = "stele-writer-epoch 1"

    /// `epochs/` and the epoch in 20 digits (names sort as numbers).
    public var objectName: String { Self.objectName(epoch) }

    public static func objectName(_ epoch: UInt64) -> String {
        let digits = String(epoch)
        return prefix + String(repeating: "0", count: max(0, 20 - digits.count)) + digits
    }

    public var encoded: [UInt8] {
        Array("""
        \(Self.formatLine)
        epoch \(epoch)
        store \(hexString(storeID))
        from \(firstSequence)
        at \(claimedAt)
        holder \(holder)

        """.utf8)
    }

    /// Parses a claim; nil for anything else (a damaged or forged object is reported by whoever reads it).
    public init?(decoding bytes: [UInt8]) {
        guard bytes.count <= 4096, let text = String(validating: bytes, as: UTF8.self), text.hasSuffix("\n") else { return nil }
        let lines = text.dropLast().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.count == 6, lines[0] == Self.formatLine else { return nil }
        func field(_ index: Int, _ name: String) -> String? {
            lines[index].hasPrefix(name + " ") ? String(lines[index].dropFirst(name.count + 1)) : nil
        }
        guard let epoch = field(1, "epoch").flatMap({ UInt64($0) }), epoch >= 1,
              let store = field(2, "store"), let storeID = bytesFromHex(store), storeID.count == 16,
              let first = field(3, "from").flatMap({ UInt64($0) }), let at = field(4, "at").flatMap({ Int64($0) }),
              let holder = field(5, "holder") else { return nil }
        self.init(epoch: epoch, storeID: storeID, firstSequence: first, claimedAt: at, holder: holder)
        guard encoded == bytes else { return nil }
    }

    /// The claim the store at `storePath` holds: its `epoch` file, or nil without one.
    /// - Throws: ``SteleError/mirror(_:)`` for a file that is not a claim.
    public static func held(by storePath: String) throws -> WriterEpoch? {
        let path = storePath + "/" + fileName
        guard let bytes = try PosixFileSystem().readWholeFile(path, limit: 4096) else { return nil }
        guard let epoch = WriterEpoch(decoding: bytes) else {
            throw SteleError.mirror(.altered(name: path, detail: "not a writer epoch claim"))
        }
        return epoch
    }

    /// Makes the store at `storePath` hold this epoch (its `epoch` file, replaced atomically and synced).
    public func hold(at storePath: String) throws {
        try PosixFileSystem().writeAtomically(encoded, to: storePath + "/" + Self.fileName, permissions: 0o644, directory: storePath)
    }

    /// Every claim in `target`, oldest first.
    /// - Throws: ``MirrorError/tampered(_:)`` for an object under `epochs/` that is not a claim,
    ///   is not named by its epoch, or names another store than `storeID`.
    ///   An object removed (a delete marker) or written twice is tampering too: a fenced writer
    ///   must never find its successor's claim gone.
    public static func claims(in target: any MirrorTarget, storeID: [UInt8]) throws -> [WriterEpoch] {
        let (claims, findings) = try inspect(target, storeID: storeID)
        if !findings.isEmpty { throw SteleError.mirror(.tampered(findings)) }
        return claims
    }

    /// The claims in the copy, oldest first (hidden ones included), and what is wrong with the
    /// copy's `epochs/` (empty when nothing is): for a writer that must fence itself on a newer
    /// claim even when someone hid it.
    static func inspect(_ target: any MirrorTarget, storeID: [UInt8]) throws -> (claims: [WriterEpoch], findings: [String]) {
        var claims: [WriterEpoch] = []
        var findings: [String] = []
        func listed() throws -> [String: [ObjectVersion]] {
            Dictionary(grouping: try target.versions(prefix: prefix), by: \.name)
        }
        var byName = try listed()
        // A directory copy writes a claim's checksum file before the claim, so a promotion caught
        // writing one lists as a removal's mark alone: look again for a moment before calling it
        // removed (a fenced writer that took it for tampering would not be fenced).
        for _ in 0 ..< 20 where byName.values.contains(where: { $0.allSatisfy(\.isDeleteMarker) }) {
            Thread.sleep(forTimeInterval: 0.05)
            byName = try listed()
        }
        for (name, versions) in byName.sorted(by: { $0.key < $1.key }) {
            if versions.contains(where: \.isDeleteMarker) { findings.append("\(name): a writer epoch claim removed from the copy") }
            if versions.filter({ !$0.isDeleteMarker }).count > 1 { findings.append("\(name): a writer epoch claim written twice") }
            // A hidden claim still counts: the writer it names replaced the ones before it.
            guard let kept = versions.last(where: { !$0.isDeleteMarker }) else { continue }
            guard let claim = WriterEpoch(decoding: try target.get(name, version: kept.versionID)), claim.objectName == name else {
                findings.append("\(name): not a writer epoch claim")
                continue
            }
            guard claim.storeID == storeID else {
                findings.append("\(name): a claim for store \(hexString(claim.storeID)), not this copy's \(hexString(storeID))")
                continue
            }
            claims.append(claim)
        }
        return (claims.sorted { $0.epoch < $1.epoch }, findings)
    }
}
