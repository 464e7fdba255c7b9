import SteleNative

/// The store's identity and governance authority as the log records them, and `stele.conf` as
/// a cache of it: checked on every open, rewritten only from the verified log.
extension StoreConfig {
    /// The identity part of the config.
    package var identity: StoreIdentity {
        StoreIdentity(storeID: storeID, createdAt: createdAt, segmentSize: segmentSize, origin: origin,
                      encryptionKey: encryptionKey.flatMap(bytesFromHex))
    }

    /// The config that the log's config records imply (identity and the governance key in force).
    package init(identity: StoreIdentity, governanceKey: NoteVerifier?) {
        self.init(storeID: identity.storeID, createdAt: identity.createdAt, segmentSize: identity.segmentSize,
                  origin: identity.origin, governanceKey: governanceKey, encryptionKey: identity.encryptionKey.map(hexString))
    }

    /// How `self` (the file) differs from what the log says, one phrase per field; empty if not.
    package func differences(from log: StoreConfig) -> [String] {
        var out: [String] = []
        if storeID != log.storeID { out.append("uuid \(hexString(storeID)), the log says \(hexString(log.storeID))") }
        if createdAt != log.createdAt { out.append("created \(createdAt), the log says \(log.createdAt)") }
        if segmentSize != log.segmentSize { out.append("segment-size \(segmentSize), the log says \(log.segmentSize)") }
        if origin != log.origin { out.append("origin \(origin), the log says \(log.origin)") }
        if encryptionKey != log.encryptionKey {
            out.append("encryption-key \(encryptionKey ?? "none"), the log says \(log.encryptionKey ?? "none")")
        }
        if governanceKey != log.governanceKey {
            out.append("governance-key \(governanceKey?.encoded ?? "none"), the log says \(log.governanceKey?.encoded ?? "none")")
        }
        return out
    }
}

extension Store {
    /// Checks `stele.conf` against the log's config records, which are the authority: a store
    /// whose file disagrees is refused (`stele fsck --repair` rewrites the file from the log).
    /// A store without config records (created before them) opens read-only, judged by its file,
    /// until `stele migrate` adopts the file into the log.
    static func checkConfig(_ config: StoreConfig, against log: SegmentLog, path: String, writable: Bool, migrating: Bool) throws {
        // An index snapshot only summarises the config records: before concluding that the file
        // disagrees with the log, or that the log has none, read them from the log itself.
        if !log.retentionFromLog, log.keysUnavailable == nil,
           log.configFromLog.map({ config.differences(from: $0).isEmpty }) != true {
            try log.verifyRetention()
        }
        guard let fromLog = log.configFromLog else {
            // A damaged record kept the config records from being read: the store already
            // refuses writes for that (`keysUnavailable`), with an error that names the damage.
            if writable && !migrating && log.keysUnavailable == nil { throw SteleError.notMigrated(path: path) }
            return
        }
        let differences = config.differences(from: fromLog)
        guard differences.isEmpty else {
            throw SteleError.corruption(Corruption(file: path, detail: "stele.conf disagrees with the log's config records ("
                + differences.joined(separator: "; ") + "); the log is the authority: run `stele fsck --repair` to rewrite the file from it"))
        }
    }

    /// Writes `stele.conf` again from the config records of the log at `path` (for `stele fsck
    /// --repair` and restores): the file is a cache, the log the authority.
    /// - Returns: false if the log has no config records (a store created before them), in which
    ///   case the file is left alone.
    /// - Throws: ``SteleError`` if the log cannot be read.
    package static func rewriteConfigFromLog(at path: String) throws -> Bool {
        let fs = PosixFileSystem()
        let layout = StoreLayout(root: path)
        let cached = try readConfig(fs: fs, layout: layout)
        // The UUID and segment size to read the log with come from the log too, where it has them.
        let first = firstSegmentIdentity(fs: fs, layout: layout)
        guard let config = try configFromLog(at: path, storeID: first?.storeID ?? cached.storeID,
                                             segmentSize: first?.genesis?.segmentSize ?? cached.segmentSize) else { return false }
        if config != cached {
            try fs.writeAtomically(Array(config.encoded.utf8), to: layout.config, permissions: 0o444, directory: path)
        }
        return true
    }

    /// The store UUID in the first segment's header, and the identity its first record (the
    /// genesis) records, read straight from the file: what `stele.conf` is checked against
    /// before the log is opened with it. Nil if the first segment cannot be read.
    package static func firstSegmentIdentity(fs: any FileSystem, layout: StoreLayout) -> (storeID: [UInt8], genesis: StoreIdentity?)? {
        let path = layout.segments + "/" + SegmentFiles.name(1)
        guard let fd = try? fs.open(path, .readOnly) else { return nil }
        defer { fs.close(fd) }
        var bytes = [UInt8](repeating: 0, count: 64 * 1024)
        guard let n = try? bytes.withUnsafeMutableBytes({ try fs.read(fd, into: $0, at: 0) }), n >= SegmentHeader.size else { return nil }
        return ByteView.of(Array(bytes.prefix(n))) { view in
            guard case .success(let header) = SegmentHeader.decode(view) else { return nil }
            var genesis: StoreIdentity?
            if case .success(let frame) = Frame.decode(view, at: SegmentHeader.size, limit: view.count), frame.type == .config,
               frame.sequence == 0, let value = frame.value(in: view), case .genesis(let identity, _, _)? = ConfigRecord.decode(value),
               identity.storeID == header.storeID {
                genesis = identity
            }
            return (header.storeID, genesis)
        }
    }

    /// The config that the config records of the log in `path`'s `segments/` imply (no
    /// `stele.conf` needed: a restore writes the file from this), or nil if the log has none.
    /// - Parameter segmentSize: the configured segment size, if known (it tells an active
    ///   segment from a sealed one; a log of sealed segments only needs none).
    package static func configFromLog(at path: String, storeID: [UInt8], segmentSize: Int = .max) throws -> StoreConfig? {
        let layout = StoreLayout(root: path)
        let log = try SegmentLog.open(fs: PosixFileSystem(), directory: layout.segments, storeID: storeID, segmentSize: segmentSize,
                                      writable: false, lostAndFound: layout.lostAndFound, tilesDirectory: layout.tiles,
                                      indexDirectory: "", unclean: false)
        defer { log.close() }
        if let damage = log.keysUnavailable { throw SteleError.corruption(damage) }
        return log.configFromLog
    }

    /// Anchors the `stele.conf` of a store created before config records in its log: appends an
    /// adoption record with the file's identity, governance key and the minimum retention in
    /// force. From then on the log is the authority and the file a cache.
    ///
    /// The adoption trusts the file as it stands: check the store first (`stele fsck`, and
    /// `stele verify` against a checkpoint held elsewhere) and compare its governance key with the
    /// one your governance authority holds.
    /// - Returns: the adoption record's sequence number.
    /// - Throws: ``SteleError/invalidArgument(_:)`` if the store already has config records;
    ///   as ``init(path:options:)`` otherwise.
    @discardableResult
    public static func migrate(at path: String) throws -> UInt64 {
        var options = Options()
        options.migrating = true
        let store = try Store(path: path, options: options)
        defer { try? store.close() }
        let config = store.config
        let receipt = try store.appendEntries([Entry]()) { log, _, _ in
            guard !log.recordsIdentity else {
                throw SteleError.invalidArgument("\(path) already records its identity in its log; nothing to migrate")
            }
            let record = ConfigRecord.adoption(config.identity, minimumRetention: log.minimumRetention,
                                               governanceKey: config.governanceKey)
            return [Entry(type: .config, namespace: [], key: [], value: record.encoded)]
        }
        try store.close()
        return receipt.sequences.lowerBound
    }

    /// Replaces the governance key (or, with nil, retires it: no governance lock can then be
    /// shortened) under an authorization signed by the key in force
    /// (``GovernanceAuthorization/signKeyChange(origin:newKey:asOf:notAfter:with:)``). The change,
    /// with its authorization, is a config record in the log; `stele.conf` follows it.
    /// - Throws: ``SteleError/retention(_:)`` (no key in force, a mismatching or expired
    ///   authorization), ``SteleError/checkpoint(_:)`` for a signature that does not verify,
    ///   ``SteleError/notMigrated(path:)``; as ``append(_:)-7eqx6`` otherwise.
    @discardableResult
    public func changeGovernanceKey(to newKey: NoteVerifier?, authorization: String) throws -> Receipt {
        let receipt = try appendEntries([Entry]()) { log, _, now in
            try log.verifyRetention()  // the key in force, from the log itself
            guard let current = log.configFromLog else { throw SteleError.notMigrated(path: self.path) }
            _ = try GovernanceAuthorization.checkKeyChange(authorization, key: current.governanceKey, origin: current.origin,
                                                           newKey: newKey, since: log.keyChangeAsOfFloor, time: now)
            let record = ConfigRecord.governanceKeyChange(newKey: newKey, authorization: authorization)
            return [Entry(type: .config, namespace: [], key: [], value: record.encoded)]
        }
        try sync()
        // The file follows the log; a crash before this leaves a file that the next open
        // reports as disagreeing, and `stele fsck --repair` rewrites it.
        let updated = currentConfig.withLock { config in
            config.governanceKey = newKey
            return config
        }
        try fs.writeAtomically(Array(updated.encoded.utf8), to: StoreLayout(root: path).config, permissions: 0o444, directory: path)
        return receipt
    }

    /// The governance key in force, from the log.
    public var governanceKey: NoteVerifier? {
        state.withLock { $0.log?.retention.governanceKey }
    }
}

extension Store {
    /// Whether the log records the store's identity and governance key (false for a store
    /// created before config records, until it is migrated).
    package var recordsItsConfig: Bool {
        state.withLock { $0.log?.retention.identity != nil }
    }
}
