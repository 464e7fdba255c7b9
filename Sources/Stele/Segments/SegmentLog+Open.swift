import SteleNative

/// Opening the chain: every segment's header and footer checked and linked, the active
/// segment recovered (its torn tail saved aside), the key index and tiles rebuilt where needed.
extension SegmentLog {
    /// Opens the segments in `directory`, verifying the chain cheaply and recovering the active
    /// segment (see ``SegmentScan``). `lostAndFound` receives copies of discarded torn tails.
    /// `encryption`: an encrypted store's data keys, when its master key was given.
    package static func open(fs: any FileSystem, directory: String, storeID: [UInt8], segmentSize: Int,
                             writable: Bool, lostAndFound: String, tilesDirectory: String, indexDirectory: String = "",
                             unclean: Bool, legacyPolicy: (origin: String, governanceKey: NoteVerifier?)? = nil,
                             keyIndex: Bool = true, encryption: LogEncryption? = nil) throws -> SegmentLog {
        let log = SegmentLog(fs: fs, directory: directory, storeID: storeID, segmentSize: segmentSize, writable: writable,
                             tiles: TileStore(fs: fs, directory: tilesDirectory, writable: writable))
        log.legacyPolicy = legacyPolicy
        log.encryption = encryption
        var indices: [UInt64] = []
        for name in try fs.listDirectory(directory) {
            if let index = SegmentFiles.index(of: name) {
                indices.append(index)
            } else if name.hasSuffix(SegmentFiles.temporarySuffix) && writable {
                try fs.remove(directory + "/" + name)
                log.report.removedTemporaryFiles.append(name)
            }
        }
        indices.sort()
        guard !indices.isEmpty else {
            throw SteleError.corruption(Corruption(file: directory, detail: "no segment files: the log has been removed"))
        }
        for (position, index) in indices.enumerated() where index != UInt64(position + 1) {
            throw SteleError.corruption(Corruption(file: directory + "/" + SegmentFiles.name(UInt64(position + 1)),
                                                   detail: "segment \(position + 1) is missing (found \(index) in its place)"))
        }
        for index in indices.dropLast() {
            let segment = try SealedSegment.open(fs: fs, path: directory + "/" + SegmentFiles.name(index), expectedIndex: index)
            try log.link(segment)
        }
        try log.openLast(index: indices.count, lostAndFound: lostAndFound, unclean: unclean)
        log.indexDirectory = indexDirectory
        // The key index and the tiles are rebuilt from the same records on both cores at once:
        // they share nothing but the read-only segments (each sealed segment builds its offset
        // table under its own lock) and write disjoint fields; the tiles' half reports back
        // rather than touching `report`.
        let tiles = BackgroundTask { try log.restoreTiles() }
        var failure: (any Error)?
        do {
            if keyIndex {
                try log.rebuildKeys()
            } else {
                // Opened to read records by sequence only (verification): the policy records, no keys.
                try log.rebuildPolicy()
                log.keysUnavailable = Corruption(file: indexDirectory, detail: "the key index was not built: the store was opened to verify it")
            }
        } catch SteleError.notFound(let sequence, _) {
            log.keysUnavailable = Corruption(file: indexDirectory, sequence: sequence, detail: "index snapshot names a record the log lacks")
            log.report.keysUnavailable = "index snapshot names record \(sequence), which the log lacks"
        } catch SteleError.corruption(let damage) {
            log.keysUnavailable = damage
            log.report.keysUnavailable = damage.description
        } catch {
            failure = error
        }
        do {
            if let rebuilt = try tiles.value() { log.report.tilesRebuilt = rebuilt }
        } catch SteleError.corruption(let damage) {
            // Tiles are derived data: a damaged record must not keep the log closed. Proofs stay
            // unavailable until `stele fsck` has been run and the damage dealt with.
            log.tilesUnavailable = damage
            log.report.tilesUnavailable = damage.description
        } catch {
            failure = failure ?? error
        }
        // A shred whose key a crash left in the keyring: refused now, and destroyed by a writer.
        if failure == nil, let encryption {
            do {
                for (namespace, at) in log.shreds { try encryption.markShredded(namespace, at: at, destroy: writable) }
            } catch {
                failure = error
            }
        }
        if let failure {
            log.close()
            throw failure
        }
        return log
    }

    /// Checks that `segment` continues the chain, then adds it.
    private func link(_ segment: SealedSegment) throws {
        try checkHeader(segment.header, path: segment.path)
        let footer = segment.footer
        guard let restored = Frontier(size: footer.treeSize, hashes: footer.frontier), restored.root == footer.treeRoot else {
            throw SteleError.corruption(Corruption(file: segment.path, offset: Int(footer.framesEnd),
                                                   detail: "footer frontier does not produce the footer's tree root"))
        }
        sealed.append(segment)
        frontier = restored
        nextSequence = footer.lastSequence + 1
        lastTimestamp = max(lastTimestamp, footer.sealedAt)
        report.sealedSegments += 1
    }

    private func checkHeader(_ header: SegmentHeader, path: String) throws {
        guard header.storeID == storeID else {
            throw SteleError.corruption(Corruption(file: path, offset: 16, detail: "segment belongs to another store (store UUID differs)"))
        }
        guard header.firstSequence == nextSequence else {
            throw SteleError.corruption(Corruption(file: path, offset: 40, detail: "first sequence \(header.firstSequence), expected \(nextSequence)"))
        }
        guard header.previousSeal == lastSealHash else {
            throw SteleError.corruption(Corruption(file: path, offset: 56, detail: "chain broken: previous seal hash \(header.previousSeal) differs from the seal of the segment before (\(lastSealHash))"))
        }
    }

    /// Opens the last segment: sealed (its successor is created on the next append) or active.
    private func openLast(index: Int, lostAndFound: String, unclean: Bool) throws {
        let path = directory + "/" + SegmentFiles.name(UInt64(index))
        guard let status = try fs.status(path), status.isRegularFile else {
            throw SteleError.corruption(Corruption(file: path, detail: "segment file vanished"))
        }
        // An active segment always has exactly the configured size (it is preallocated and only
        // truncated by a seal); a file of any other size must be a sealed one.
        var sealedOnDisk = status.size != segmentSize
        if !sealedOnDisk {
            let probe = try fs.open(path, .readOnly)
            defer { fs.close(probe) }
            // A reader copies the file: a live writer may seal (and truncate) it meanwhile.
            let probeRegion = writable ? try fs.map(probe, length: status.size, writable: false)
                                       : try fs.snapshot(probe, length: status.size)
            if case .success = SegmentFooter.decodeAtEnd(probeRegion.wholeView) { sealedOnDisk = true }
        }
        if sealedOnDisk {
            try link(SealedSegment.open(fs: fs, path: path, expectedIndex: UInt64(index)))
            if writable && status.permissions & 0o222 != 0 {
                // A crash between the truncation and the mode change: finish the seal.
                let fd = try fs.open(path, .readWrite)
                defer { fs.close(fd) }
                try fs.setPermissions(fd, 0o444)
                try fs.syncAll(fd)
                report.completedSeal = path
            }
            return
        }
        let fd = try fs.open(path, writable ? .readWrite : .readOnly)
        let region: MappedRegion
        do {
            // Read-only beside a live writer: a copy, not a mapping (see `FileSystem.snapshot`).
            region = writable ? try fs.map(fd, length: try fs.size(fd), writable: true)
                              : try fs.snapshot(fd, length: try fs.size(fd))
        } catch {
            fs.close(fd)
            throw error
        }
        if !writable { fs.close(fd) }
        // From here the segment owns the descriptor (when writable) and closes it on every path.
        let view = region.wholeView
        let header: SegmentHeader
        var headerRecovered = false
        do {
            var decoded = SegmentHeader.decode(view)
            if case .failure(.checksum) = decoded,
               let recovered = SegmentHeader.recoverInterruptedUpdate(view, candidates: SegmentScan.frameEnds(view)) {
                decoded = .success(recovered)
                headerRecovered = true
            }
            header = try SealedSegment.check(decoded, path: path, offset: 0)
        } catch {
            if writable { fs.close(fd) }
            throw error
        }
        let scan = SegmentScan.scan(view, firstSequence: nextSequence, minimumTimestamp: lastTimestamp, frontier: frontier,
                                    durableEnd: Int(min(header.durableEnd, UInt64(view.count))))
        let segment = ActiveSegment(fs: fs, path: path, header: header, region: region, fd: writable ? fd : nil, scan: scan)
        do {
            guard header.index == UInt64(index) else {
                throw SteleError.corruption(Corruption(file: path, offset: 32, detail: "header says segment \(header.index)"))
            }
            try checkHeader(header, path: path)
            switch scan.tail {
            case .clean:
                break
            case .corrupt(let offset, let sequence, let detail):
                throw SteleError.corruption(Corruption(file: path, offset: offset, sequence: sequence, detail: detail))
            case .torn(let offset, let length, let reason):
                var saved: String?
                if writable {
                    saved = try saveTornBytes(view.slice(offset, length), segment: index, offset: offset, to: lostAndFound)
                    try segment.discardTail(fs: fs, offset: offset, length: length)
                }
                report.tornTail = .init(file: path, offset: offset, bytes: length, reason: reason, savedTo: saved)
            case .sealFooter(let footer):
                if writable {
                    // The footer is there; the truncation and the mode change were lost, and so
                    // may the header's raised durable end be (its page and the footer's reach the
                    // disk in either order, found by the power-cut model): every frame up to the
                    // footer was just verified against it, so the header vouches for them again.
                    segment.markDurable(through: Int(footer.framesEnd))
                    _ = try segment.seal(fs: fs, footer: footer, syncedThrough: scan.end)
                    report.completedSeal = path
                    try link(SealedSegment.open(fs: fs, path: path, expectedIndex: UInt64(index)))
                    return
                }
            }
            if writable && headerRecovered {
                // Write the header whole again, with the durable end it vouched for.
                try segment.rewriteHeader()
                report.completedHeaderUpdate = path
            }
            if writable && unclean {
                // After a crash, what recovery just read may exist only in the page cache (a
                // failed writeback leaves pages cached but clean): write it all out again.
                try segment.rewriteThroughCache()
                report.rewroteAfterUncleanShutdown = segment.writeOffset
            }
        } catch {
            segment.close()
            throw error
        }
        active = segment
        frontier = scan.frontier
        nextSequence = scan.nextSequence
        lastTimestamp = scan.lastTimestamp
        report.activeRecords = segment.recordCount
    }

    private func saveTornBytes(_ bytes: ByteView, segment: Int, offset: Int, to directory: String) throws -> String {
        if try fs.status(directory) == nil { try fs.makeDirectory(directory) }
        let stem = directory + "/" + SegmentFiles.name(UInt64(segment)) + "-\(offset)"
        var path = stem + ".torn"
        var attempt = 1
        while try fs.status(path) != nil {
            path = stem + "-\(attempt).torn"
            attempt += 1
        }
        let fd = try fs.open(path, .createNew(permissions: 0o444))
        defer { fs.close(fd) }
        try bytes.withBuffer { try fs.write(fd, $0, at: 0) }
        try fs.syncAll(fd)
        try fs.syncDirectory(directory)
        return path
    }
}
