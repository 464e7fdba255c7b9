import SteleNative

/// One entry of the log as read back: a verified, decompressed record.
public struct Record: Sendable, Equatable {
    /// Position in the log, starting at 0; also the record's leaf index in the Merkle tree.
    public var sequence: UInt64
    /// What the record means: a put, a tombstone, or one of the records the store writes itself.
    public var type: RecordType
    /// Wall-clock time of the append, nanoseconds since the Unix epoch; never decreases along the log.
    public var timestamp: Int64
    /// Namespace bytes (UTF-8 for records written through ``Store``).
    public var namespace: [UInt8]
    /// The key's bytes (empty for records that name no key, such as a store-wide policy).
    public var key: [UInt8]
    /// The value; empty when the payload was purged (see ``redactedLeafHash``).
    public var value: [UInt8]
    /// For a redaction stub: the leaf hash of the purged entry, which keeps every proof valid.
    public var redactedLeafHash: Digest?

    /// A record with all its fields given (for tests and tools; the store makes its own when it reads).
    public init(sequence: UInt64, type: RecordType, timestamp: Int64, namespace: [UInt8], key: [UInt8],
                value: [UInt8], redactedLeafHash: Digest? = nil) {
        self.sequence = sequence
        self.type = type
        self.timestamp = timestamp
        self.namespace = namespace
        self.key = key
        self.value = value
        self.redactedLeafHash = redactedLeafHash
    }

    /// The namespace as text (invalid UTF-8 is replaced, never trapped on).
    public var namespaceString: String { String(decoding: namespace, as: UTF8.self) }
}

/// What a caller appends: the store assigns sequence number and timestamp.
public struct Entry: Sendable, Equatable {
    /// The namespace as UTF-8 bytes: 1-255 bytes without NUL (``Limits/maxNamespaceLength``).
    public var namespace: [UInt8]
    /// The key: 1-4096 bytes (``Limits/maxKeyLength``).
    public var key: [UInt8]
    /// The value: any bytes, up to ``Limits/maxValueLength(segmentSize:)`` for the store's segment size.
    public var value: [UInt8]
    /// `.put` for everything built with the public initialisers; the store writes the other
    /// record types itself (tombstones through ``Store/delete(namespace:key:)-94bpv``).
    package var type: RecordType = .put

    package init(type: RecordType, namespace: [UInt8], key: [UInt8], value: [UInt8]) {
        self.type = type
        self.namespace = namespace
        self.key = key
        self.value = value
    }

    /// A put of `value` under `namespace`/`key`.
    public init(namespace: String, key: [UInt8], value: [UInt8]) {
        self.namespace = Array(namespace.utf8)
        self.key = key
        self.value = value
    }

    /// Convenience for text keys and values.
    public init(namespace: String, key: String, value: String) {
        self.init(namespace: namespace, key: Array(key.utf8), value: Array(value.utf8))
    }
}
