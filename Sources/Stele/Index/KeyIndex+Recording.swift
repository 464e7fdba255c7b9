import SteleNative

/// Recording puts and tombstones: a new key's bytes go to the arena and its slot into the
/// table (doubled at half full, each slot re-homed from its tag alone); a known key's latest
/// version moves to its list of earlier ones.
extension KeyIndex {
    /// Records a put or tombstone; `sequence` must be larger than any recorded before.
    package mutating func record(_ composite: [UInt8], sequence: UInt64, deleted: Bool, hint: FrameHint = .unknown) {
        composite.withUnsafeBytes { record(composite: $0, sequence: sequence, deleted: deleted, hint: hint) }
    }

    /// Records a put or tombstone of `namespace`/`key` without allocating the composite key
    /// (it is assembled on the stack; only a new key is copied, into the arena).
    /// `hash` is the key's ``hash(namespace:key:)`` if the caller has it already.
    @inline(__always)
    package mutating func record(namespace: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, sequence: UInt64, deleted: Bool,
                                 hint: FrameHint = .unknown, hash: UInt64? = nil) {
        Self.withComposite(namespace: namespace, key: key) {
            record(composite: $0, sequence: sequence, deleted: deleted, hint: hint, hash: hash)
        }
    }

    /// The table hash of `namespace`/`key` (XXH3 of the composite key).
    @inline(__always)
    package static func hash(namespace: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer) -> UInt64 {
        withComposite(namespace: namespace, key: key) { Memory.xxh3($0) }
    }

    /// Starts loading the table slot for a key of this ``hash(namespace:key:)``, without
    /// waiting. Called for a whole batch before its records are added, it lets their cache
    /// misses (one per new key in a large index, the dominant cost of an insert) overlap.
    @inline(__always)
    package func prefetch(hash: UInt64) {
        let table = storage.table
        Memory.prefetchForWriting(table, at: Self.home(tag: hash >> 32, mask: table.count - 1))
    }

    /// Calls `body` with `namespace ‖ 0x00 ‖ key` in a stack buffer.
    @inline(__always)
    static func withComposite<R>(namespace: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer,
                                 _ body: (UnsafeRawBufferPointer) -> R) -> R {
        Memory.withJoined(namespace, separator: 0, key, body)
    }

    mutating func record(composite: UnsafeRawBufferPointer, sequence: UInt64, deleted: Bool, hint: FrameHint,
                         hash known: UInt64? = nil) {
        let ref = VersionRef(sequence: sequence, deleted: deleted)
        let hash = known ?? Memory.xxh3(composite)
        let found = find(bytes: composite, hash: hash)
        let s = unique()
        if let i = found {
            let entry = Int(s.table[i].tagEntry & 0xffff_ffff) - 1
            let previous = VersionRef(raw: s.table[i].latest)
            if s.chains[entry] < 0 {
                s.chains[entry] = Int32(s.earlier.count)
                s.earlier.append([previous])
            } else {
                s.earlier[Int(s.chains[entry])].append(previous)
            }
            s.table[i].latest = ref.raw
            s.table[i].hint = hint.raw
            return
        }
        s.places.append(UInt64(s.arena.append(composite)) << 16 | UInt64(composite.count))
        s.chains.append(-1)
        let entry = s.places.count - 1
        if s.places.count * 2 > s.table.count { Self.grow(s) }
        Self.insertSlot(s, hash: hash, entry: entry, latest: ref.raw, hint: hint.raw)
        insertSorted(s, UInt32(entry), key: composite, place: s.places[entry])
    }

    /// The first slot of a key's probe path: the low bits of its tag (the hash's top half).
    @inline(__always)
    static func home(tag: UInt64, mask: Int) -> Int { Int(truncatingIfNeeded: tag) & mask }

    static func insertSlot(_ s: Storage, hash: UInt64, entry: Int, latest: UInt64, hint: UInt64 = 0) {
        let mask = s.table.count - 1
        var i = home(tag: hash >> 32, mask: mask)
        while s.table[i].tagEntry != 0 { i = (i + 1) & mask }
        s.table[i] = Slot(tagEntry: (hash >> 32) << 32 | UInt64(entry + 1), place: s.places[entry], latest: latest, hint: hint)
    }

    /// Doubles the table. Each slot's new home comes from its tag alone, so the keys are not
    /// read (a cache miss each in a large arena) nor hashed again, and as a slot's new home is
    /// its old one or that plus the old size, the new table is written almost in order.
    static func grow(_ s: Storage) {
        let old = s.table
        var table = [Slot](repeating: Slot(), count: old.count * 2)
        let mask = table.count - 1
        for slot in old where slot.tagEntry != 0 {
            var i = home(tag: slot.tagEntry >> 32, mask: mask)
            while table[i].tagEntry != 0 { i = (i + 1) & mask }
            table[i] = slot
        }
        s.table = table
    }
}
