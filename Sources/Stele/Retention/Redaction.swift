import SteleNative

/// What a purge did (or, with `dryRun`, would do).
public struct PurgeReport: Sendable, Equatable {
    /// A version whose payload was (or would be) purged.
    public struct Item: Sendable, Equatable {
        /// The version's namespace.
        public var namespace: String
        /// The version's key.
        public var key: [UInt8]
        /// The version's sequence number, which its redaction stub keeps.
        public var sequence: UInt64
        /// Value bytes stored for it (compressed size if compressed).
        public var storedBytes: Int
    }

    /// Versions whose payloads were purged (with `dryRun`: would be).
    public var purged: [Item] = []
    /// Eligible versions left alone because they are in the active segment: a purge after a
    /// seal (``Store/seal()``, as `stele purge` does first) purges them too.
    public var inActiveSegment: [Item] = []
    /// How many those are.
    public var skippedInActiveSegment: Int { inActiveSegment.count }
    /// Superseded or deleted versions still protected by a lock, a legal hold or the minimum.
    public var stillProtected = 0
    /// Sealed segment files rewritten with redaction stubs.
    public var segmentsRewritten = 0
    /// Value bytes removed from the segments.
    public var payloadBytes = 0
    /// Segment file sizes before and after the rewrite (the difference is reclaimed disk).
    public var bytesBefore = 0
    /// Size of the rewritten segment files (see ``bytesBefore``).
    public var bytesAfter = 0
    /// Sequence numbers of the redaction records written.
    public var redactionRecords: [UInt64] = []
    /// Whether this was a dry run, which changed nothing.
    public var dryRun = false

    /// Disk space a rewrite freed (0 if the stubs took more than the payloads they replace).
    public var bytesReclaimed: Int { max(0, bytesBefore - bytesAfter) }
    /// Disk space a rewrite took (stubs of 32 bytes replacing smaller payloads); 0 otherwise.
    public var bytesAdded: Int { max(0, bytesAfter - bytesBefore) }

    /// Bytes the 32-byte redaction stubs of `items` take in place of their payloads, as a net
    /// change of the segments' size: positive when space is freed.
    public static func netBytes(_ items: [Item]) -> Int {
        items.reduce(0) { $0 + $1.storedBytes - 32 }
    }
}

/// The value of a redaction record (type 7): what was purged and why.
/// `u8 version (1) | u8 reason (1: superseded or deleted, every lock expired, no hold) | u32 count | count × u64 sequence`
package struct RedactionRecord: Equatable {
    package var sequences: [UInt64]

    package var encoded: [UInt8] {
        ByteWriter.makeArray(count: 6 + 8 * sequences.count) { w in
            w.put(UInt8(1), at: 0)
            w.put(UInt8(1), at: 1)
            w.put(UInt32(sequences.count), at: 2)
            for (i, s) in sequences.enumerated() { w.put(s, at: 6 + 8 * i) }
        }
    }

    package static func decode(_ bytes: [UInt8]) -> RedactionRecord? {
        guard bytes.count >= 6 else { return nil }
        return ByteView.of(bytes) { v in
            let count = Int(v.u32(2))
            guard v.u8(0) == 1, v.u8(1) == 1, bytes.count == 6 + 8 * count else { return nil }
            return RedactionRecord(sequences: (0 ..< count).map { v.u64(6 + 8 * $0) })
        }
    }
}
