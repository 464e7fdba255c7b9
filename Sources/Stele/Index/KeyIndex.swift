import SteleNative

/// Key → versions, for every put and tombstone in the log, in memory.
///
/// Layout, chosen so that a lookup touches two cache lines (its table slot and the key's bytes)
/// and a key costs no heap object of its own:
/// - `arena`: every composite key `namespace ‖ 0x00 ‖ key` (namespaces contain no NUL, so byte
///   order is (namespace, key) order), back to back;
/// - `table`: open addressing with linear probing, at most half full; each slot holds a 32-bit
///   hash tag (the hash's top half, which also picks the key's home slot: growing the table
///   re-homes each slot from its tag, without reading or rehashing its key) with the entry
///   number, the key's place in the arena, the latest version and where
///   its frame was (a hint that spares a lookup in the segment's offset table);
/// - per entry: the key's place (for ordered walks) and, for keys with more than one version,
///   a list of the earlier ones;
/// - `blocks`: entry numbers in key order, cut into blocks of at most ``blockCapacity``; new keys
///   that sort after every other go to the end of the last block, others into their block, which
///   splits in two when full; a rebuild collects them unsorted and sorts once (``deferOrdering()``).
/// Invariants: each key's versions are in sequence order (the log is); every key is in exactly
/// one of `blocks` and (only while a rebuild defers ordering) `unordered`; no block is empty. Memory:
/// about 80 bytes per key plus its bytes, plus 8 bytes per earlier version and a list header
/// for keys that have any. Not thread-safe: the store serialises access.
package struct KeyIndex: Sendable {
    /// A version: its sequence number, with the top bit set for a tombstone.
    package struct VersionRef: Equatable, Sendable {
        package let raw: UInt64
        package init(sequence: UInt64, deleted: Bool) { raw = sequence | (deleted ? 1 << 63 : 0) }
        package init(raw: UInt64) { self.raw = raw }
        package var sequence: UInt64 { raw & ~(1 << 63) }
        package var isTombstone: Bool { raw & (1 << 63) != 0 }
    }

    /// Where a version's frame was when it was recorded: segment number and byte offset. A
    /// lookup that has it skips the segment's offset table (a cache miss in a large store). Only
    /// a hint: a purge rewrites segments and moves frames, so the reader checks that the frame
    /// there is that record and otherwise asks the offset table.
    package struct FrameHint: Equatable, Sendable {
        package let raw: UInt64
        package static let unknown = FrameHint(raw: 0)
        package init(raw: UInt64) { self.raw = raw }
        package init(segment: UInt64, offset: Int) {
            raw = segment < 1 << 32 && offset > 0 && offset < 1 << 32 ? segment << 32 | UInt64(offset) : 0
        }
        package var segment: UInt64? { raw == 0 ? nil : raw >> 32 }
        package var offset: Int { Int(raw & 0xffff_ffff) }
    }

    struct Slot {
        /// hash tag << 32 | (entry + 1); 0 for an empty slot.
        var tagEntry: UInt64 = 0
        /// arena offset << 16 | key length.
        var place: UInt64 = 0
        var latest: UInt64 = 0
        /// Where the latest version's frame is (see ``FrameHint``); 0 if not known.
        var hint: UInt64 = 0
    }

    /// The arrays live in one object so that copying the index (reading it out of the log under
    /// the store's lock, as every `get` does) costs one retain rather than one per array;
    /// mutations copy it first when it is shared (copy-on-write, as the arrays themselves would).
    /// `@unchecked Sendable` as an array buffer is: it is only mutated through `unique()`, that
    /// is while no other index value refers to it.
    ///
    /// Its fields opt out of dynamic exclusivity checks: every access is already exclusive (the
    /// store's lock, or a value not yet shared), and the checks cost about as much as the work on
    /// the hot paths (a lookup, or recording a put while appending).
    final class Storage: @unchecked Sendable {
        @exclusivity(unchecked) var arena = ByteArena()
        @exclusivity(unchecked) var table = [Slot](repeating: Slot(), count: 64)
        @exclusivity(unchecked) var places: [UInt64] = []
        @exclusivity(unchecked) var chains: [Int32] = []
        @exclusivity(unchecked) var earlier: [[VersionRef]] = []
        /// Entry numbers in key order (see ``KeyIndex/blockCapacity``).
        @exclusivity(unchecked) var blocks: [[UInt32]] = []
        /// Out-of-order keys not yet filed, while a rebuild defers ordering.
        @exclusivity(unchecked) var unordered: [UInt32] = []
        @exclusivity(unchecked) var deferring = false
        /// The place of the greatest key in `blocks` (nil while there is none): a key greater than
        /// it is appended to the last block, the common case, without a search.
        @exclusivity(unchecked) var greatest: UInt64?

        init() {}

        init(copying other: Storage) {
            arena = other.arena
            table = other.table
            places = other.places
            chains = other.chains
            earlier = other.earlier
            blocks = other.blocks
            unordered = other.unordered
            deferring = other.deferring
            greatest = other.greatest
        }
    }

    var storage = Storage()

    /// The storage, copied first if another index value shares it.
    mutating func unique() -> Storage {
        if !isKnownUniquelyReferenced(&storage) { storage = Storage(copying: storage) }
        return storage
    }

    package init() {}

    package var keyCount: Int { storage.places.count }

    /// `namespace ‖ 0x00 ‖ key`.
    @inline(__always)
    package static func compositeKey(namespace: some Collection<UInt8>, key: some Collection<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(namespace.count + 1 + key.count)
        out.append(contentsOf: namespace)
        out.append(0)
        out.append(contentsOf: key)
        return out
    }

    @inline(__always)
    static func hash(_ key: [UInt8]) -> UInt64 {
        key.withUnsafeBytes { Memory.xxh3($0) }
    }


    /// The slot holding `key`, if any.
    func find(_ key: [UInt8], hash: UInt64) -> Int? {
        key.withUnsafeBytes { find(bytes: $0, hash: hash) }
    }

    func find(bytes probe: UnsafeRawBufferPointer, hash: UInt64) -> Int? {
        let s = storage
        return Self.probe(s.table, hash: hash, length: probe.count) { slot in s.arena.matches(probe, at: Int(slot.place >> 16)) }
    }

    /// Walks `hash`'s probe path: the first slot whose hash tag and key length match and for
    /// which `matches` holds, or nil at the first empty slot (the key is not recorded).
    @inline(__always)
    static func probe(_ table: [Slot], hash: UInt64, length: Int, _ matches: (Slot) -> Bool) -> Int? {
        let tag = hash >> 32, mask = table.count - 1
        var i = home(tag: tag, mask: mask)
        while true {
            let slot = table[i]
            if slot.tagEntry == 0 { return nil }
            if slot.tagEntry >> 32 == tag, Int(slot.place & 0xffff) == length, matches(slot) { return i }
            i = (i + 1) & mask
        }
    }

    /// The latest version of `namespace`/`key` at or before `asOf`, without allocating: the
    /// composite key is assembled on the stack.
    package func latest(namespace: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, asOf: UInt64?) -> VersionRef? {
        Self.withComposite(namespace: namespace, key: key) { composite -> VersionRef? in
            guard let i = find(bytes: composite, hash: Memory.xxh3(composite)) else { return nil }
            return latest(slot: i, asOf: asOf)
        }
    }

    /// What ``candidate(namespace:key:asOf:)`` found.
    package enum Candidate {
        /// No key with this hash is recorded: the key was never written.
        case absent
        /// The latest version (at or before `asOf`) of the first key whose hash tag and length
        /// match, not compared byte for byte: the caller must check the key in the version's
        /// own record and fall back to ``latest(namespace:key:asOf:)`` if it differs. With
        /// where that record was when it was recorded, if known and it is the latest version.
        case unconfirmed(VersionRef, FrameHint)
        /// Only the full lookup can tell (a tombstone or no version at `asOf`: there is no live
        /// record to confirm the key against).
        case undecided
    }

    /// A lookup that skips the key comparison in the arena, which costs a cache miss of its own
    /// in a large index: `get` confirms the key from the record it reads anyway. A different key
    /// is taken for this one only if it has the same length and 32-bit tag (the tag's low bits
    /// are the home slot, so such keys share a probe path): with n keys of that length, about
    /// n in 2^32 lookups, once in 4,300 at a million keys and once in 43 at a hundred million;
    /// then the record shows it and the caller does the full lookup (a frame read wasted).
    package func candidate(namespace: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, asOf: UInt64?) -> Candidate {
        Self.withComposite(namespace: namespace, key: key) { composite -> Candidate in
            let hash = Memory.xxh3(composite)
            let s = storage
            let slot = Self.probe(s.table, hash: hash, length: composite.count) { _ in true }
            guard let slot else { return .absent }
            guard let version = latest(slot: slot, asOf: asOf), !version.isTombstone else { return .undecided }
            let latestHere = s.table[slot].latest == version.raw
            return .unconfirmed(version, latestHere ? FrameHint(raw: s.table[slot].hint) : .unknown)
        }
    }

    /// Whether `version` is one of the versions recorded for the composite key in `bytes`;
    /// allocates nothing (for checking a snapshot against the log).
    package func contains(_ bytes: UnsafeRawBufferPointer, version: VersionRef) -> Bool {
        guard let i = find(bytes: bytes, hash: Memory.xxh3(bytes)) else { return false }
        let s = storage
        if s.table[i].latest == version.raw { return true }
        let chain = s.chains[Int(s.table[i].tagEntry & 0xffff_ffff) - 1]
        return chain >= 0 && s.earlier[Int(chain)].contains(version)
    }

    /// Total number of versions recorded.
    package var versionCount: Int { storage.places.count + storage.earlier.reduce(0) { $0 + $1.count } }

    /// All versions of a key, oldest first (empty if the key was never written).
    package func versions(of composite: [UInt8]) -> [VersionRef] {
        guard let i = find(composite, hash: KeyIndex.hash(composite)) else { return [] }
        let slot = storage.table[i]
        return all(entry: Int(slot.tagEntry & 0xffff_ffff) - 1, latest: slot.latest)
    }

    func all(entry: Int, latest: UInt64) -> [VersionRef] {
        let chain = storage.chains[entry]
        return (chain >= 0 ? storage.earlier[Int(chain)] : []) + [VersionRef(raw: latest)]
    }

    /// The latest version at or before `asOf` (the latest of all without it).
    package func latest(of composite: [UInt8], asOf: UInt64? = nil) -> VersionRef? {
        guard let i = find(composite, hash: KeyIndex.hash(composite)) else { return nil }
        return latest(slot: i, asOf: asOf)
    }

    func latest(slot i: Int, asOf: UInt64?) -> VersionRef? {
        let s = storage
        let slot = s.table[i]
        let latest = VersionRef(raw: slot.latest)
        guard let limit = asOf, latest.sequence > limit else { return latest }
        let chain = s.chains[Int(slot.tagEntry & 0xffff_ffff) - 1]
        return chain >= 0 ? s.earlier[Int(chain)].last { $0.sequence <= limit } : nil
    }
}
