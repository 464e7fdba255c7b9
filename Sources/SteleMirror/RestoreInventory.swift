import Foundation
import Stele
import SteleNative

/// What a copy holds, read by object versions (so that neither a delete marker nor an
/// overwrite hides anything), sorted into what a restore may use, and the notes it owes the
/// operator: every object it ignores and every one it finds altered, with why.
struct RestoreInventory {
    /// Versions of each segment object by index, oldest first, delete markers removed.
    var segments: [UInt64: [ObjectVersion]] = [:]
    /// Versions of each checkpoint object, oldest first.
    var checkpoints: [ObjectVersion] = []
    /// Versions of `stele.conf`, oldest first.
    var configs: [ObjectVersion] = []
    /// Objects not used, with why ("name: reason").
    var ignored: [String] = []
    /// Objects that failed a check, with what failed.
    var altered: [String] = []
    /// Names under which a delete marker was found (an object someone removed).
    var removed: Set<String> = []

    /// Reads the versions of `stele.conf` and of everything under `segments/` and
    /// `checkpoints/` (tiles are derived and not read; nothing else is a mirror's).
    init(_ target: any MirrorTarget) throws {
        try self.init(versions: [StoreConfig.fileName, "segments/", "checkpoints/"].flatMap { try target.versions(prefix: $0) })
    }

    /// Only the segments and checkpoints whose names sort after these (a follower between its
    /// full checks: see ``CopyInView``).
    init(_ target: any MirrorTarget, segmentsAfter: String, checkpointsAfter: String) throws {
        try self.init(versions: target.versions(prefix: "segments/", after: segmentsAfter)
            + target.versions(prefix: "checkpoints/", after: checkpointsAfter))
    }

    /// The number of object versions listed.
    private(set) var versionsListed = 0

    private init(versions: [ObjectVersion]) {
        versionsListed = versions.count
        var byName: [String: [ObjectVersion]] = [:]
        for version in versions { byName[version.name, default: []].append(version) }
        for (name, all) in byName.sorted(by: { $0.key < $1.key }) {
            let kept = all.filter { !$0.isDeleteMarker }
            if all.contains(where: \.isDeleteMarker) { removed.insert(name) }
            for marker in all where marker.isDeleteMarker {
                ignored.append(kept.isEmpty ? "\(marker.label): a delete marker over an object whose versions are all gone"
                    : "\(marker.label): a delete marker hides this object; its stored versions were read as if it were not there")
            }
            if name == StoreConfig.fileName {
                configs = kept
            } else if name.hasPrefix("segments/"), let index = SegmentFiles.index(of: String(name.dropFirst("segments/".count))) {
                segments[index] = kept
            } else if Mirror.checkpointSize(objectName: name) != nil {
                checkpoints += kept
            } else if name.hasPrefix("tiles/") {
                continue  // derived: a restore rebuilds its own from the records
            } else {
                for version in kept { ignored.append("\(version.label): not an object a mirror writes") }
            }
        }
    }

    /// One version, checked against the SHA-256 recorded with that version.
    static func fetch(_ target: any MirrorTarget, _ version: ObjectVersion) throws -> [UInt8] {
        guard let info = try target.head(version.name, version: version.versionID) else { throw SteleError.mirror(.missing(name: version.label)) }
        let content = try target.get(version.name, version: version.versionID)
        guard let recorded = info.sha256 else { throw SteleError.mirror(.altered(name: version.label, detail: "no checksum recorded with it")) }
        let actual = hexString(sha256(content))
        guard actual == recorded else { throw SteleError.mirror(.altered(name: version.label, detail: "SHA-256 \(actual), recorded \(recorded)")) }
        return content
    }

    /// The checkpoints in the copy signed with the trusted key for the trusted origin (the rest
    /// are noted as ignored), each with the object it came from.
    /// - Throws: what reading the copy throws when it may pass (``MirrorError/isTransient``): a
    /// checkpoint the copy could not give now is not one to pass over.
    mutating func signedCheckpoints(_ target: any MirrorTarget, verifier: NoteVerifier, origin: String) throws
        -> [(checkpoint: Checkpoint, note: String, label: String)] {
        var out: [(Checkpoint, String, String)] = []
        for version in checkpoints {
            do {
                let note = String(decoding: try RestoreInventory.fetch(target, version), as: UTF8.self)
                let body = try Checkpoint(parsing: try SignedNote.open(note, verifier: verifier))
                guard body.origin == origin else {
                    ignored.append("\(version.label): a checkpoint of another log (\(body.origin))")
                    continue
                }
                out.append((body, note, version.label))
            } catch SteleError.mirror(let failure) where failure.isTransient {
                throw SteleError.mirror(failure)
            } catch {
                ignored.append("\(version.label): not a checkpoint signed with the trusted key (\(error))")
            }
        }
        return out
    }
}

/// A segment chosen for the restore: its bytes, header and footer, and where it came from.
struct ChosenSegment {
    var bytes: [UInt8]
    var header: SegmentHeader
    var footer: SegmentFooter
    var label: String
}

extension RestoreInventory {
    /// The version of segment `index` that continues the chain: the oldest whose recorded
    /// checksum holds, that is a sealed segment of this store with a valid seal, and that
    /// starts where the previous one ended and links to its seal. Later valid versions (which an
    /// overwrite made) are ignored and named; when versions compete, each one's records must
    /// also reproduce its footer's content digest and Merkle root from `frontier` on, so that an
    /// overwrite with a re-forged footer cannot win. Returns nil when no version qualifies (each
    /// failure noted as altered).
    mutating func choose(index: UInt64, after previous: ChosenSegment?, frontier: Frontier, storeID: [UInt8]?,
                         _ target: any MirrorTarget, prefetched: [UInt8]?) -> ChosenSegment? {
        let versions = segments[index] ?? []
        var chosen: ChosenSegment?
        for (position, version) in versions.enumerated() {
            do {
                let bytes = try position == 0 ? prefetched ?? RestoreInventory.fetch(target, version) : RestoreInventory.fetch(target, version)
                let segment = try RestoreInventory.check(bytes, label: version.label, index: index, after: previous, storeID: storeID,
                                                         frontier: versions.count > 1 ? frontier : nil)
                if chosen == nil {
                    chosen = segment
                } else {
                    ignored.append("\(version.label): a later version than the one restored (objects are written once: an overwrite)")
                }
            } catch let SteleError.mirror(.altered(name, detail)) {
                altered.append("\(name): \(detail)")
            } catch {
                altered.append("\(version.label): \(error)")
            }
        }
        return chosen
    }

    /// Checks one candidate's bytes; `frontier` (when given) is the tree before it, whose leaves
    /// must then reproduce the footer.
    private static func check(_ bytes: [UInt8], label: String, index: UInt64, after previous: ChosenSegment?, storeID: [UInt8]?,
                              frontier: Frontier?) throws -> ChosenSegment {
        let (header, footer): (SegmentHeader, SegmentFooter)
        do {
            (header, footer) = try SegmentBytes.sealedHeaderAndFooter(bytes, name: label)
        } catch {
            throw SteleError.mirror(.altered(name: label, detail: "not a valid sealed segment: \(error)"))
        }
        let first = previous.map { $0.footer.lastSequence + 1 } ?? 0
        guard header.index == index, header.firstSequence == first else {
            throw SteleError.mirror(.altered(name: label, detail: "segment \(header.index) from sequence \(header.firstSequence), expected segment \(index) from \(first)"))
        }
        guard header.previousSeal == (previous?.footer.sealHash ?? .zero) else {
            throw SteleError.mirror(.altered(name: label, detail: "does not link to the seal of the segment before (chain broken)"))
        }
        if let storeID, header.storeID != storeID {
            throw SteleError.mirror(.altered(name: label, detail: "belongs to store \(hexString(header.storeID))"))
        }
        if var frontier {
            let (_, leaves) = try SegmentBytes.leafHashes(bytes, name: label)
            var content = SHA256Hasher()
            for leaf in leaves {
                frontier.append(leaf)
                content.update(leaf)
            }
            guard content.finalize() == footer.contentDigest, frontier.root == footer.treeRoot, frontier.size == footer.treeSize else {
                throw SteleError.mirror(.altered(name: label, detail: "its records do not reproduce the content digest and Merkle root of its seal"))
            }
        }
        return ChosenSegment(bytes: bytes, header: header, footer: footer, label: label)
    }
}
