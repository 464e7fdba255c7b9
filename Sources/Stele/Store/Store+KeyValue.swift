import SteleNative

/// One version of a key, as ``Store/get(namespace:key:asOf:)-(_,[UInt8],_)``, ``Store/history(namespace:key:)``
/// and ``Store/scan(namespace:prefix:after:limit:includeDeleted:)`` return it.
public struct Version: Sendable, Equatable {
    /// The record's sequence number: the version's identity and its Merkle leaf index.
    public var sequence: UInt64
    /// When it was written, ns since the Unix epoch.
    public var timestamp: Int64
    /// The namespace the key lives in.
    public var namespace: String
    /// The key's bytes.
    public var key: [UInt8]
    /// The value; nil for a tombstone (a logical delete), empty for a purged payload.
    public var value: [UInt8]?
    /// The leaf hash kept by a redaction stub when the payload was purged after its locks expired.
    public var redactedLeafHash: Digest?
    /// Locks and legal hold on this version (filled by ``Store/history(namespace:key:)``).
    public var protection: Protection?

    /// Whether this version is a delete marker.
    public var isTombstone: Bool { value == nil }

    init(sequence: UInt64, timestamp: Int64, namespace: String, key: [UInt8], value: [UInt8]?, redactedLeafHash: Digest?) {
        self.sequence = sequence
        self.timestamp = timestamp
        self.namespace = namespace
        self.key = key
        self.value = value
        self.redactedLeafHash = redactedLeafHash
    }

    init(_ record: Record) {
        sequence = record.sequence
        timestamp = record.timestamp
        namespace = record.namespaceString
        key = record.key
        value = record.type == .tombstone ? nil : record.value
        redactedLeafHash = record.redactedLeafHash
    }
}

extension Store {
    /// Writes a new version of `key`. Every put is a new version; nothing is overwritten.
    /// Durability follows the store's ``CommitPolicy`` (see ``append(contentsOf:)-3q6im``).
    /// - Returns: the receipt; its sequence number identifies the version.
    /// - Throws: as ``append(contentsOf:)-3q6im``.
    @discardableResult
    public func put(namespace: String, key: [UInt8], value: [UInt8]) throws -> Receipt {
        try appendEntries(CollectionOfOne(Entry(namespace: namespace, key: key, value: value)))
    }

    /// Writes several versions as consecutive records (see ``append(contentsOf:)-3q6im``).
    /// - Throws: as ``append(contentsOf:)-3q6im``.
    /// - Cost: as ``append(contentsOf:)-3q6im``; for large batches ``putBatch(_:)-87d25`` avoids
    ///   the three arrays per entry.
    @discardableResult
    public func putBatch(_ entries: [Entry]) throws -> Receipt {
        try appendEntries(entries)
    }

    /// Deletes `key` logically: appends a tombstone, after which ``get(namespace:key:asOf:)-(_,[UInt8],_)``
    /// returns nil. Always allowed; every earlier version stays in the history, byte for byte.
    /// - Throws: as ``append(contentsOf:)-3q6im``.
    @discardableResult
    public func delete(namespace: String, key: [UInt8]) throws -> Receipt {
        try appendEntries(CollectionOfOne(Entry(type: .tombstone, namespace: Array(namespace.utf8), key: key, value: [])))
    }

    /// The latest live version of `key` (as of sequence `asOf`, if given); nil if the key was
    /// never written or its latest version at that point is a tombstone.
    /// - Throws: ``SteleError/invalidArgument(_:)`` for a bad namespace or key,
    ///   ``SteleError/corruption(_:)`` for a damaged record, ``SteleError/closed``.
    /// - Cost: a hash lookup under the store's lock, then one checksummed record read.
    public func get(namespace: String, key: [UInt8], asOf: UInt64? = nil) throws -> Version? {
        return try withLatestFrame(namespace, key, asOf) { sequence, frame, view, location in
            // Only the value is copied out of the frame: namespace and key are the caller's.
            let value = try plainValue(frame, view, at: location)
            return Version(sequence: sequence, timestamp: frame.timestamp, namespace: namespace, key: key,
                           value: frame.type == .tombstone ? nil : value,
                           redactedLeafHash: frame.isRedacted ? Digest(view, at: frame.stored.lowerBound) : nil)
        }
    }

    /// Calls `body` with the latest live value of `key` (as of sequence `asOf`, if given) in
    /// place, without copying it into an array: the bytes in the mapped segment, or a
    /// decompressed buffer for a value stored with LZ4, or no bytes for a purged payload.
    /// The bytes are valid only during `body`. The record's checksum is verified first, as for
    /// ``get(namespace:key:asOf:)-(_,[UInt8],_)``.
    /// - Returns: what `body` returns; nil, without calling it, if the key was never written or
    ///   its latest version at that point is a tombstone.
    /// - Throws: as ``get(namespace:key:asOf:)-(_,[UInt8],_)``; what `body` throws.
    /// - Cost: as ``get(namespace:key:asOf:)-(_,[UInt8],_)`` without the `Version` and its copy of the value
    ///   (no allocation for an uncompressed value).
    @inlinable
    public func withValue<R>(namespace: String, key: [UInt8], asOf: UInt64? = nil,
                             _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R? {
        // Generic only here, inlined into the caller: the lookup below is not generic, so a call
        // builds no type metadata at run time.
        var result: R?
        try withValueBytes(namespace: namespace, key: key, asOf: asOf) { result = try body($0) }
        return result
    }

    /// ``withValue(namespace:key:asOf:_:)`` without the generic result.
    @usableFromInline
    func withValueBytes(namespace: String, key: [UInt8], asOf: UInt64?, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        _ = try withLatestFrame(namespace, key, asOf) { sequence, frame, view, location -> Bool in
            if frame.isRedacted {
                try body(UnsafeRawBufferPointer(start: nil, count: 0))
            } else if frame.isCompressed || frame.isEncrypted {
                try plainValue(frame, view, at: location).withUnsafeBytes(body)
            } else {
                try view.slice(frame.stored.lowerBound, frame.stored.count).withBuffer(body)
            }
            return true
        }
    }

    /// Finds the latest live version of `key` and hands its checked frame to `body` while its
    /// mapping is held; nil if there is none.
    private func withLatestFrame<R>(_ namespace: String, _ key: [UInt8], _ asOf: UInt64?,
                                    _ body: (UInt64, FrameInfo, ByteView, SegmentLog.Location) throws -> R) throws -> R? {
        let utf8 = namespace.utf8
        guard (1 ... Limits.maxNamespaceLength).contains(utf8.count), !utf8.contains(0) else {
            throw SteleError.invalidArgument("namespace must be 1-\(Limits.maxNamespaceLength) bytes without NUL")
        }
        guard (1 ... Limits.maxKeyLength).contains(key.count) else {
            throw SteleError.invalidArgument("key must be 1-\(Limits.maxKeyLength) bytes")
        }
        // One lock: find the version and where its frame is; decode outside the lock. The
        // lookup allocates nothing (the composite key is built on the stack).
        return try utf8.withContiguousStorageIfAvailable { try withLatestFrame(UnsafeRawBufferPointer($0), key, asOf, body) }
            ?? Array(utf8).withUnsafeBytes { try withLatestFrame($0, key, asOf, body) }
    }

    private func withLatestFrame<R>(_ namespace: UnsafeRawBufferPointer, _ key: [UInt8], _ asOf: UInt64?,
                                    _ body: (UInt64, FrameInfo, ByteView, SegmentLog.Location) throws -> R) throws -> R? {
        try key.withUnsafeBytes { keyBytes in
            // First without comparing the key in the index (a cache miss saved): the record is
            // read anyway and shows whether it is this key's. Almost never, it is not. Not in an
            // encrypted store, whose frames hold the key only sealed.
            var confirmed = encryption != nil
            while true {
                guard let (sequence, location) = try latestLocation(namespace, keyBytes, asOf, confirmed: confirmed) else { return nil }
                let result = try location.withFrame(sequence) { frame, view -> R? in
                    if !confirmed {
                        guard frame.namespace.count == namespace.count, frame.key.count == keyBytes.count,
                              view.slice(frame.namespace.lowerBound, frame.namespace.count).withBuffer({ $0.elementsEqual(namespace) }),
                              view.slice(frame.key.lowerBound, frame.key.count).withBuffer({ $0.elementsEqual(keyBytes) }) else {
                            return nil
                        }
                    }
                    return try body(sequence, frame, view, location)
                }
                if let result { return result }
                confirmed = true
            }
        }
    }

    /// The latest live version's sequence number and frame location, under the store's lock;
    /// unless `confirmed`, found by ``KeyIndex/candidate(namespace:key:asOf:)``.
    private func latestLocation(_ namespace: UnsafeRawBufferPointer, _ key: UnsafeRawBufferPointer, _ asOf: UInt64?,
                                confirmed: Bool) throws -> (UInt64, SegmentLog.Location)? {
        try state.withLock { state throws -> (UInt64, SegmentLog.Location)? in
            guard let log = state.log else { throw SteleError.closed }
            let keys = try log.trustedKeys(in: namespace)
            if !confirmed {
                switch keys.candidate(namespace: namespace, key: key, asOf: asOf) {
                case .absent: return nil
                case .unconfirmed(let ref, let hint): return (ref.sequence, try log.locate(ref.sequence, hint: hint))
                case .undecided: break
                }
            }
            guard let ref = keys.latest(namespace: namespace, key: key, asOf: asOf), !ref.isTombstone else { return nil }
            return (ref.sequence, try log.locate(ref.sequence))
        }
    }

    /// Every version and tombstone of `key`, oldest first, with values (or redaction markers)
    /// and the locks and legal hold on each version.
    /// - Throws: as ``get(namespace:key:asOf:)-(_,[UInt8],_)``.
    /// - Cost: one record read per version.
    public func history(namespace: String, key: [UInt8]) throws -> [Version] {
        let composite = try Store.composite(namespace, key)
        let refs = try state.withLock { state throws in try Store.keyIndex(state, namespace: namespace).versions(of: composite) }
        var versions = try refs.map { Version(try record(at: $0.sequence)) }
        let ns = Array(namespace.utf8)
        try state.withLock { state throws in
            guard let log = state.log else { throw SteleError.closed }
            for i in versions.indices where !versions[i].isTombstone {
                versions[i].protection = try log.protection(of: versions[i].sequence, timestamp: versions[i].timestamp,
                                                            namespace: ns, composite: composite)
            }
        }
        return versions
    }

    /// Keys of `namespace` that start with `prefix`, in byte order, each with its latest
    /// version; tombstoned keys only with `includeDeleted`. Continue a listing with `after:` set to
    /// the last key returned.
    /// - Throws: as ``get(namespace:key:asOf:)-(_,[UInt8],_)``.
    /// - Cost: O(log n) to find the start, then one record read per key returned.
    public func scan(namespace: String, prefix: [UInt8] = [], after: [UInt8]? = nil, limit: Int = 100,
                     includeDeleted: Bool = false) throws -> [Version] {
        guard limit > 0 else { return [] }
        let start = try Store.composite(namespace, prefix, allowEmptyKey: true)
        let resume = try after.map { try Store.composite(namespace, $0) }
        let refs = try state.withLock { state throws -> [KeyIndex.VersionRef] in
            var refs: [KeyIndex.VersionRef] = []
            let from = resume.map { $0.lexicographicallyPrecedes(start) ? start : $0 } ?? start
            try Store.keyIndex(state, namespace: namespace).forEachKey(startingAt: from) { key, versions in
                guard key.starts(with: start) else { return false }
                if let resume, key == resume { return true }
                guard let latest = versions.last else { return true }
                if !latest.isTombstone || includeDeleted { refs.append(latest) }
                return refs.count < limit
            }
            return refs
        }
        return try refs.map { ref in
            var version = Version(try record(at: ref.sequence))
            if ref.isTombstone { version.value = nil }
            return version
        }
    }

    static func keyIndex(_ state: State) throws -> KeyIndex {
        guard let log = state.log else { throw SteleError.closed }
        return try log.trustedKeys()
    }

    /// The key index, for a lookup in `namespace` (refused if it was shredded).
    static func keyIndex(_ state: State, namespace: String) throws -> KeyIndex {
        guard let log = state.log else { throw SteleError.closed }
        return try log.trustedKeys(in: namespace.utf8)
    }

    /// Validates and combines namespace and key for the index.
    static func composite(_ namespace: String, _ key: [UInt8], allowEmptyKey: Bool = false) throws -> [UInt8] {
        let ns = Array(namespace.utf8)
        guard (1 ... Limits.maxNamespaceLength).contains(ns.count), !ns.contains(0) else {
            throw SteleError.invalidArgument("namespace must be 1-\(Limits.maxNamespaceLength) bytes without NUL")
        }
        guard key.count <= Limits.maxKeyLength, allowEmptyKey || !key.isEmpty else {
            throw SteleError.invalidArgument("key must be 1-\(Limits.maxKeyLength) bytes")
        }
        return KeyIndex.compositeKey(namespace: ns, key: key)
    }
}

extension Store {
    /// Writes a new version of a text key with a text value (both stored as UTF-8); see
    /// ``put(namespace:key:value:)-9jesu``.
    /// - Throws: as ``append(contentsOf:)-3q6im``.
    @discardableResult
    public func put(namespace: String, key: String, value: String) throws -> Receipt {
        try put(namespace: namespace, key: Array(key.utf8), value: Array(value.utf8))
    }

    /// The latest live version of a text key (its UTF-8 bytes); see ``get(namespace:key:asOf:)-(_,[UInt8],_)``.
    /// - Throws: as ``get(namespace:key:asOf:)-(_,[UInt8],_)``.
    public func get(namespace: String, key: String, asOf: UInt64? = nil) throws -> Version? {
        try get(namespace: namespace, key: Array(key.utf8), asOf: asOf)
    }
}
