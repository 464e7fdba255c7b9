import Foundation
import Stele

extension Mirror {
    /// Checks that the copy holds what this mirror wrote, and nothing it did not: segments
    /// `1...n` without a gap and none the store has not sealed, no object removed (a delete
    /// marker, or in a directory a checksum file without its object), none overwritten (a
    /// second version), no checkpoint over records the copy's segments do not hold, and every
    /// object this mirror wrote or verified still there. Tiles are derived and not listed.
    /// - Throws: ``SteleError/mirror(_:)`` (``MirrorError/tampered(_:)``) naming each finding; nothing is uploaded over it.
    func checkCopy(sealed: [SealedSegmentInfo], store: Store, _ report: inout Report) throws {
        let started = ContinuousClock.now
        let previousCheck = copyInView.checkedAt
        let full = previousCheck.map { last in options.fullCheckInterval.map { started - last >= $0 } ?? true } ?? true
        // Until this check ends without a finding (or a failure to read the copy, which would
        // lose what it found so far), the next pass checks the whole copy.
        copyInView.checkedAt = nil
        let versions: [ObjectVersion]
        if full {
            versions = try [StoreConfig.fileName, "segments/", "checkpoints/"].flatMap { try target.versions(prefix: $0) }
            copyInView = CopyInView()
        } else {
            versions = try target.versions(prefix: "segments/", after: copyInView.newestSegment)
                + target.versions(prefix: "checkpoints/", after: copyInView.newestCheckpoint)
        }
        report.checkedWholeCopy = full
        report.versionsListed = versions.count
        var findings: [String] = []
        var byName: [String: [ObjectVersion]] = [:]
        for version in versions { byName[version.name, default: []].append(version) }
        for (name, all) in byName.sorted(by: { $0.key < $1.key }) {
            let kept = all.filter { !$0.isDeleteMarker }
            if all.contains(where: \.isDeleteMarker) {
                findings.append("\(name): removed from the copy (\(kept.isEmpty ? "no version left" : "hidden by a delete marker"))")
            }
            if kept.count > 1 { findings.append("\(name): \(kept.count) versions (overwritten after the mirror wrote it)") }
            guard let latest = kept.last else { continue }
            if known.contains(name) {
                let fingerprint = latest.etag ?? "\(latest.size)@\(latest.lastModified)"
                if let recorded = fingerprints[name], recorded != fingerprint {
                    findings.append("\(name): changed in place since this mirror verified it")
                }
                fingerprints[name] = fingerprint
            }
            if name.hasPrefix("segments/"), let index = SegmentFiles.index(of: String(name.dropFirst("segments/".count))) {
                copyInView.segments.insert(index)
                copyInView.newestSegment = max(copyInView.newestSegment, name)
                if index > UInt64(sealed.count) { findings.append("\(name): a segment the store has not sealed (forged, or lost by the store)") }
            } else if let size = Self.checkpointSize(objectName: name) {
                copyInView.largestCheckpoint = max(copyInView.largestCheckpoint, size)
                copyInView.newestCheckpoint = max(copyInView.newestCheckpoint, name)
                newestCheckpointCopied = max(newestCheckpointCopied, size)
            } else if name != StoreConfig.fileName {
                findings.append("\(name): an object the mirror never writes")
            }
        }
        let segments = copyInView.segments
        let last = segments.isEmpty ? 0 : SegmentFiles.index(of: String(copyInView.newestSegment.dropFirst("segments/".count))) ?? 0
        let contiguous = last == UInt64(segments.count)
        if !contiguous, last > 0 {
            let gaps = (1 ... last).filter { !segments.contains($0) }.map { "segments/" + SegmentFiles.name($0) }
            findings.append("\(gaps.joined(separator: ", ")): missing before segments/\(SegmentFiles.name(last)) (lost from the copy)")
        }
        var covered = segments.isEmpty || !contiguous ? 0 : sealed.prefix(segments.count).last.map { $0.records.upperBound + 1 } ?? 0
        // Chunks of the segment after the copied ones carry records too (and the checkpoints over them).
        // A chunk counts only once this mirror wrote it or found that it holds this log's records
        // (the root its checkpoint names is the store's at that size): a name alone is not proof.
        if contiguous {
            let next = UInt64(segments.count) + 1
            var chunks: [ActiveChunk] = []
            for info in try target.list(prefix: ActiveChunk.prefix(of: next)) {
                guard let chunk = ActiveChunk(objectName: info.name) else { continue }
                if !known.contains(info.name) {
                    guard chunk.next <= store.recordCount, let (note, _) = ActiveChunk.decode(try target.get(info.name)),
                          let body = try? Checkpoint(parsing: SignedNote.split(note).text), body.treeSize == chunk.next,
                          try store.rootHash(treeSize: chunk.next) == body.root else {
                        findings.append("\(info.name): not a chunk of this store's log (its checkpoint's root is not the log's)")
                        continue
                    }
                    known.insert(info.name)
                }
                chunks.append(chunk)
            }
            let reach = ActiveChunk.reach(chunks, from: covered)
            chunksReach = chunks.isEmpty ? nil : (next, reach)
            covered = reach
        }
        let largestCheckpoint = copyInView.largestCheckpoint
        if largestCheckpoint > covered {
            findings.append("checkpoints/\(largestCheckpoint): a checkpoint of \(largestCheckpoint) records, but the copy's segments hold \(covered) (segments lost from the copy)")
        }
        // Tiles are derived, chunks superseded by their segment: neither is listed here. Only a
        // full check lists what this mirror wrote before.
        for name in known.sorted() where full && !name.hasPrefix("tiles/") && !name.hasPrefix(ActiveChunk.prefix)
            && byName[name]?.contains(where: { !$0.isDeleteMarker }) != true
            && !findings.contains(where: { $0.hasPrefix(name + ":") }) {
            findings.append("\(name): this mirror wrote or verified it, and it is gone")
        }
        if !findings.isEmpty { throw SteleError.mirror(.tampered(findings)) }
        copyInView.checkedAt = full ? started : previousCheck
    }
}
