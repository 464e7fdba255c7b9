import CSteleSys
import CXXHash

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
/// - `sorted` + `delta`: entry numbers in key order; new keys that sort after every other go to
///   the end of `sorted`, others to the small sorted delta (at most ``deltaLimit``), merged into
///   `sorted` when it fills; a rebuild collects them unsorted and sorts once (``deferOrdering()``).
/// Invariants: each key's versions are in sequence order (the log is); every key is in exactly
/// one of `sorted`, `delta` and (only while a rebuild defers ordering) `unordered`. Memory:
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

    private struct Slot {
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
    private final class Storage: @unchecked Sendable {
        @exclusivity(unchecked) var arena: [UInt8] = []
        @exclusivity(unchecked) var table = [Slot](repeating: Slot(), count: 64)
        @exclusivity(unchecked) var places: [UInt64] = []
        @exclusivity(unchecked) var chains: [Int32] = []
        @exclusivity(unchecked) var earlier: [[VersionRef]] = []
        @exclusivity(unchecked) var sorted: [UInt32] = []
        @exclusivity(unchecked) var delta: [UInt32] = []
        /// Out-of-order keys not yet filed, while a rebuild defers ordering.
        @exclusivity(unchecked) var unordered: [UInt32] = []
        @exclusivity(unchecked) var deferring = false
        /// The place of the greatest key in `sorted` and `delta` (nil while both are empty): a
        /// key greater than it is appended to `sorted`, the common case, without reading either.
        @exclusivity(unchecked) var greatest: UInt64?

        init() {}

        init(copying other: Storage) {
            arena = other.arena
            table = other.table
            places = other.places
            chains = other.chains
            earlier = other.earlier
            sorted = other.sorted
            delta = other.delta
            unordered = other.unordered
            deferring = other.deferring
            greatest = other.greatest
        }
    }

    private var storage = Storage()

    /// The storage, copied first if another index value shares it.
    private mutating func unique() -> Storage {
        if !isKnownUniquelyReferenced(&storage) { storage = Storage(copying: storage) }
        return storage
    }

    package init() {}

    /// Decodes the key section of a snapshot straight into the index (no per-key arrays but the
    /// earlier-version lists): `count` × (u16 length | key | u32 n | n × u64). Returns the index
    /// and the offset after the section, or nil if the bytes are malformed or out of order.
    package static func decode(_ v: ByteView, at start: Int, count: UInt64, end: Int) -> (KeyIndex, Int)? {
        let index = KeyIndex()
        let s = index.storage
        // Every key takes at least 15 bytes: a count beyond that is a lie, not a table size.
        guard end >= start, count <= UInt64((end - start) / 15) else { return nil }
        var capacity = 64
        while capacity < Int(count) * 2 { capacity *= 2 }
        s.table = [Slot](repeating: Slot(), count: capacity)
        s.places.reserveCapacity(Int(count))
        s.chains.reserveCapacity(Int(count))
        s.arena.reserveCapacity(end - start)
        var offset = start
        var previous: Range<Int>?
        for _ in 0 ..< count {
            guard offset + 2 <= end else { return nil }
            let length = Int(v.u16(offset))
            guard length > 0, offset + 2 + length + 4 <= end else { return nil }
            let keyView = v.slice(offset + 2, length)
            // A composite key always holds the NUL that ends its namespace.
            guard keyView.withBuffer({ $0.contains(0) }) else { return nil }
            let n = Int(v.u32(offset + 2 + length))
            offset += 6 + length
            guard n > 0, n <= (end - offset) / 8 else { return nil }
            for i in 1 ..< n where v.u64(offset + 8 * i) & ~(1 << 63) <= v.u64(offset + 8 * (i - 1)) & ~(1 << 63) { return nil }
            let arenaStart = s.arena.count
            keyView.withBuffer { s.arena.append(contentsOf: $0) }
            if let previous, !s.arena[previous].lexicographicallyPrecedes(s.arena[arenaStart...]) { return nil }
            previous = arenaStart ..< s.arena.count
            s.places.append(UInt64(arenaStart) << 16 | UInt64(length))
            s.chains.append(-1)
            let entry = s.places.count - 1
            if n > 1 {
                s.chains[entry] = Int32(s.earlier.count)
                s.earlier.append((0 ..< n - 1).map { VersionRef(raw: v.u64(offset + 8 * $0)) })
            }
            let hash = keyView.withBuffer { XXH3_64bits($0.baseAddress, $0.count) }
            Self.insertSlot(s, hash: hash, entry: entry, latest: v.u64(offset + 8 * (n - 1)))
            offset += 8 * n
        }
        s.sorted = (0 ..< UInt32(s.places.count)).map { $0 }
        s.greatest = s.places.last
        return (index, offset)
    }

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
    private static func hash(_ key: [UInt8]) -> UInt64 {
        key.withUnsafeBytes { XXH3_64bits($0.baseAddress, $0.count) }
    }

    // MARK: Lookup

    /// The slot holding `key`, if any.
    private func find(_ key: [UInt8], hash: UInt64) -> Int? {
        key.withUnsafeBytes { find(bytes: $0, hash: hash) }
    }

    private func find(bytes probe: UnsafeRawBufferPointer, hash: UInt64) -> Int? {
        let s = storage
        return s.table.withUnsafeBufferPointer { table in
            s.arena.withUnsafeBytes { stored -> Int? in
                Self.probe(table, hash: hash, length: probe.count) { slot in
                    guard let p = probe.baseAddress, let base = stored.baseAddress else { return false }
                    return memcmp(base + Int(slot.place >> 16), p, probe.count) == 0
                }
            }
        }
    }

    /// Walks `hash`'s probe path: the first slot whose hash tag and key length match and for
    /// which `matches` holds, or nil at the first empty slot (the key is not recorded).
    @inline(__always)
    private static func probe(_ table: UnsafeBufferPointer<Slot>, hash: UInt64, length: Int,
                              _ matches: (Slot) -> Bool) -> Int? {
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
            guard let i = find(bytes: composite, hash: XXH3_64bits(composite.baseAddress, composite.count)) else { return nil }
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
            let hash = XXH3_64bits(composite.baseAddress, composite.count)
            let s = storage
            let slot = s.table.withUnsafeBufferPointer { Self.probe($0, hash: hash, length: composite.count) { _ in true } }
            guard let slot else { return .absent }
            guard let version = latest(slot: slot, asOf: asOf), !version.isTombstone else { return .undecided }
            let latestHere = s.table[slot].latest == version.raw
            return .unconfirmed(version, latestHere ? FrameHint(raw: s.table[slot].hint) : .unknown)
        }
    }

    /// Whether `version` is one of the versions recorded for the composite key in `bytes`;
    /// allocates nothing (for checking a snapshot against the log).
    package func contains(_ bytes: UnsafeRawBufferPointer, version: VersionRef) -> Bool {
        guard let i = find(bytes: bytes, hash: XXH3_64bits(bytes.baseAddress, bytes.count)) else { return false }
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

    private func all(entry: Int, latest: UInt64) -> [VersionRef] {
        let chain = storage.chains[entry]
        return (chain >= 0 ? storage.earlier[Int(chain)] : []) + [VersionRef(raw: latest)]
    }

    /// The latest version at or before `asOf` (the latest of all without it).
    package func latest(of composite: [UInt8], asOf: UInt64? = nil) -> VersionRef? {
        guard let i = find(composite, hash: KeyIndex.hash(composite)) else { return nil }
        return latest(slot: i, asOf: asOf)
    }

    private func latest(slot i: Int, asOf: UInt64?) -> VersionRef? {
        let s = storage
        let slot = s.table[i]
        let latest = VersionRef(raw: slot.latest)
        guard let limit = asOf, latest.sequence > limit else { return latest }
        let chain = s.chains[Int(slot.tagEntry & 0xffff_ffff) - 1]
        return chain >= 0 ? s.earlier[Int(chain)].last { $0.sequence <= limit } : nil
    }

    // MARK: Recording

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
        withComposite(namespace: namespace, key: key) { XXH3_64bits($0.baseAddress, $0.count) }
    }

    /// Starts loading the table slot for a key of this ``hash(namespace:key:)``, without
    /// waiting. Called for a whole batch before its records are added, it lets their cache
    /// misses (one per new key in a large index, the dominant cost of an insert) overlap.
    @inline(__always)
    package func prefetch(hash: UInt64) {
        storage.table.withUnsafeBufferPointer { table in
            if let base = table.baseAddress { stele_prefetch_write(base + Self.home(tag: hash >> 32, mask: table.count - 1)) }
        }
    }

    /// Calls `body` with `namespace ‖ 0x00 ‖ key` in a stack buffer.
    @inline(__always)
    private static func withComposite<R>(namespace: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer,
                                         _ body: (UnsafeRawBufferPointer) -> R) -> R {
        withUnsafeTemporaryAllocation(byteCount: namespace.count + 1 + key.count, alignment: 1) { buffer in
            let base = buffer.baseAddress!  // never nil: the buffer holds at least the NUL
            if let ns = namespace.baseAddress { base.copyMemory(from: ns, byteCount: namespace.count) }
            base.storeBytes(of: 0, toByteOffset: namespace.count, as: UInt8.self)
            if let k = key.baseAddress { (base + namespace.count + 1).copyMemory(from: k, byteCount: key.count) }
            return body(UnsafeRawBufferPointer(buffer))
        }
    }

    private mutating func record(composite: UnsafeRawBufferPointer, sequence: UInt64, deleted: Bool, hint: FrameHint,
                                 hash known: UInt64? = nil) {
        let ref = VersionRef(sequence: sequence, deleted: deleted)
        let hash = known ?? XXH3_64bits(composite.baseAddress, composite.count)
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
        s.places.append(UInt64(s.arena.count) << 16 | UInt64(composite.count))
        s.chains.append(-1)
        s.arena.append(contentsOf: composite)
        let entry = s.places.count - 1
        if s.places.count * 2 > s.table.count { Self.grow(s) }
        Self.insertSlot(s, hash: hash, entry: entry, latest: ref.raw, hint: hint.raw)
        insertSorted(s, UInt32(entry), key: composite, place: s.places[entry])
    }

    /// The first slot of a key's probe path: the low bits of its tag (the hash's top half).
    @inline(__always)
    private static func home(tag: UInt64, mask: Int) -> Int { Int(truncatingIfNeeded: tag) & mask }

    private static func insertSlot(_ s: Storage, hash: UInt64, entry: Int, latest: UInt64, hint: UInt64 = 0) {
        let mask = s.table.count - 1
        var i = home(tag: hash >> 32, mask: mask)
        while s.table[i].tagEntry != 0 { i = (i + 1) & mask }
        s.table[i] = Slot(tagEntry: (hash >> 32) << 32 | UInt64(entry + 1), place: s.places[entry], latest: latest, hint: hint)
    }

    /// Doubles the table. Each slot's new home comes from its tag alone, so the keys are not
    /// read (a cache miss each in a large arena) nor hashed again, and as a slot's new home is
    /// its old one or that plus the old size, the new table is written almost in order.
    private static func grow(_ s: Storage) {
        let old = s.table
        var table = [Slot](repeating: Slot(), count: old.count * 2)
        let mask = table.count - 1
        table.withUnsafeMutableBufferPointer { table in
            for slot in old where slot.tagEntry != 0 {
                var i = home(tag: slot.tagEntry >> 32, mask: mask)
                while table[i].tagEntry != 0 { i = (i + 1) & mask }
                table[i] = slot
            }
        }
        s.table = table
    }

    // MARK: Order

    private func key(_ entry: Int) -> ArraySlice<UInt8> {
        let place = storage.places[entry]
        let start = Int(place >> 16)
        return storage.arena[start ..< start + Int(place & 0xffff)]
    }

    /// The bytes of a key in the arena, by its place.
    @inline(__always)
    private static func bytes(_ arena: UnsafeRawBufferPointer, _ place: UInt64) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: arena[Int(place >> 16) ..< Int(place >> 16) + Int(place & 0xffff)])
    }

    /// Byte order: `memcmp` over the common length, then the shorter first.
    @inline(__always)
    private static func less(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        let common = min(a.count, b.count)
        guard common > 0, let x = a.baseAddress, let y = b.baseAddress else { return a.count < b.count }
        let order = memcmp(x, y, common)
        return order < 0 || (order == 0 && a.count < b.count)
    }

    private func precedes(_ a: Int, _ b: Int) -> Bool {
        let s = storage
        return s.arena.withUnsafeBytes { Self.less(Self.bytes($0, s.places[a]), Self.bytes($0, s.places[b])) }
    }

    private static func lowerBound(_ s: Storage, _ entries: [UInt32], _ target: UnsafeRawBufferPointer, arena: UnsafeRawBufferPointer) -> Int {
        var low = 0, high = entries.count
        while low < high {
            let mid = (low + high) / 2
            if less(bytes(arena, s.places[Int(entries[mid])]), target) { low = mid + 1 } else { high = mid }
        }
        return low
    }

    private func lowerBound(_ entries: [UInt32], _ target: [UInt8]) -> Int {
        let s = storage
        return s.arena.withUnsafeBytes { arena in target.withUnsafeBytes { Self.lowerBound(s, entries, $0, arena: arena) } }
    }

    /// At most this many keys wait in `delta`: an out-of-order insert shifts half of it (a few
    /// KB), and a merge costs a binary search per delta key plus one copy of `sorted`. A delta
    /// proportional to the index (it was 1/16) made each insert shift up to megabytes once the
    /// index held millions of keys: rebuilding 2 M out-of-order keys took seconds.
    static let deltaLimit = 4096

    /// Files the new key `entry` (bytes `new`, arena place `place`) in key order. Keys that
    /// arrive in order (sequential ids, timestamps) go to the end of `sorted` in O(1); others
    /// into the small `delta` by binary search, or, while a rebuild defers ordering
    /// (``deferOrdering()``), to the end of `unordered`.
    private func insertSorted(_ s: Storage, _ entry: UInt32, key new: UnsafeRawBufferPointer, place: UInt64) {
        let inOrder = s.greatest.map { greatest in s.arena.withUnsafeBytes { Self.less(Self.bytes($0, greatest), new) } } ?? true
        if inOrder {
            s.sorted.append(entry)
            s.greatest = place
        } else if s.deferring {
            s.unordered.append(entry)
        } else {
            s.arena.withUnsafeBytes { s.delta.insert(entry, at: Self.lowerBound(s, s.delta, new, arena: $0)) }
        }
        if s.delta.count > Self.deltaLimit { Self.mergeDelta(s) }
    }

    /// Merges `delta` into `sorted`: for each delta key in turn, a binary search for its place
    /// in the rest of `sorted`, then the run before it copied whole.
    private static func mergeDelta(_ s: Storage) {
        guard !s.delta.isEmpty else { return }
        var merged: [UInt32] = []
        merged.reserveCapacity(s.sorted.count + s.delta.count)
        let sorted = s.sorted
        s.arena.withUnsafeBytes { arena in
            var from = 0
            for entry in s.delta {
                let key = bytes(arena, s.places[Int(entry)])
                var low = from, high = sorted.count
                while low < high {
                    let mid = (low + high) / 2
                    if less(bytes(arena, s.places[Int(sorted[mid])]), key) { low = mid + 1 } else { high = mid }
                }
                merged.append(contentsOf: sorted[from ..< low])
                merged.append(entry)
                from = low
            }
            merged.append(contentsOf: sorted[from...])
        }
        s.sorted = merged
        s.delta.removeAll(keepingCapacity: true)
    }

    /// Lets new out-of-order keys pile up unsorted until ``finishOrdering()``: a rebuild from
    /// the log then sorts them once (O(n log n)) instead of filing each as it comes. Walks in
    /// key order are not allowed in between.
    package mutating func deferOrdering() {
        unique().deferring = true
    }

    /// Sorts the keys that ``deferOrdering()`` let pile up and files them in order.
    package mutating func finishOrdering() {
        let s = unique()
        s.deferring = false
        guard !s.unordered.isEmpty else { return }
        var pending = s.unordered + s.delta
        s.unordered = []
        s.arena.withUnsafeBytes { arena in
            s.places.withUnsafeBufferPointer { places in
                pending = Self.sortedByBytes(pending, arena: arena, places: places)
            }
        }
        // One two-way merge of the sorted run and the newly sorted keys.
        var merged: [UInt32] = []
        merged.reserveCapacity(s.sorted.count + pending.count)
        let sorted = s.sorted
        s.arena.withUnsafeBytes { arena in
            var i = 0, j = 0
            while i < sorted.count && j < pending.count {
                if Self.less(Self.bytes(arena, s.places[Int(sorted[i])]), Self.bytes(arena, s.places[Int(pending[j])])) {
                    merged.append(sorted[i]); i += 1
                } else {
                    merged.append(pending[j]); j += 1
                }
            }
            merged.append(contentsOf: sorted[i...])
            merged.append(contentsOf: pending[j...])
        }
        s.sorted = merged
        s.greatest = merged.last.map { s.places[Int($0)] }
        s.delta.removeAll(keepingCapacity: true)
    }

    /// `entries` in the byte order of their keys.
    ///
    /// Each key's 24 bytes after the prefix all of them share are read once, in the order given
    /// (the order the keys were added, so the arena is read front to back), into three integers
    /// that order most pairs without touching the arena again; ties fall back to the bytes.
    /// With only the first 8 bytes, keys under a common prefix (`tenant-17/orders` + NUL +
    /// `order-000123`) all tied, and the sort spent its time in cache misses on the arena.
    private static func sortedByBytes(_ entries: [UInt32], arena: UnsafeRawBufferPointer,
                                      places: UnsafeBufferPointer<UInt64>) -> [UInt32] {
        guard let first = entries.first else { return [] }
        let firstKey = bytes(arena, places[Int(first)])
        var shared = firstKey.count
        for entry in entries.dropFirst() where shared > 0 {
            let key = bytes(arena, places[Int(entry)])
            var i = 0
            while i < min(shared, key.count) && key[i] == firstKey[i] { i += 1 }
            shared = i
        }
        func chunk(_ key: UnsafeRawBufferPointer, _ start: Int) -> UInt64 {
            var value: UInt64 = 0
            for i in start ..< start + 8 { value = value << 8 | UInt64(i < key.count ? key[i] : 0) }
            return value
        }
        var keyed = entries.map { entry -> (UInt64, UInt64, UInt64, UInt32) in
            let key = bytes(arena, places[Int(entry)])
            return (chunk(key, shared), chunk(key, shared + 8), chunk(key, shared + 16), entry)
        }
        keyed.sort { a, b in
            if a.0 != b.0 { return a.0 < b.0 }
            if a.1 != b.1 { return a.1 < b.1 }
            if a.2 != b.2 { return a.2 < b.2 }
            return less(bytes(arena, places[Int(a.3)]), bytes(arena, places[Int(b.3)]))
        }
        return keyed.map(\.3)
    }

    /// Keys ≥ `from`, in byte order, with their versions, while `body` returns true. Not while
    /// ordering is deferred (the keys waiting in `unordered` would be missed).
    package func forEachKey(startingAt from: [UInt8], _ body: ([UInt8], [VersionRef]) throws -> Bool) rethrows {
        let sorted = storage.sorted, delta = storage.delta
        var i = lowerBound(sorted, from), j = lowerBound(delta, from)
        while i < sorted.count || j < delta.count {
            let entry: Int
            if j >= delta.count || (i < sorted.count && precedes(Int(sorted[i]), Int(delta[j]))) {
                entry = Int(sorted[i])
                i += 1
            } else {
                entry = Int(delta[j])
                j += 1
            }
            let bytes = Array(key(entry))
            guard let slot = find(bytes, hash: KeyIndex.hash(bytes)) else { continue }
            guard try body(bytes, all(entry: entry, latest: storage.table[slot].latest)) else { return }
        }
    }

    /// Every key in byte order with its versions (for snapshots).
    package func forEachKeyInOrder(_ body: ([UInt8], [VersionRef]) -> Void) {
        forEachKey(startingAt: []) { key, refs in
            body(key, refs)
            return true
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
