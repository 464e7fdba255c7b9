import CXXHash

/// Key → versions, for every put and tombstone in the log, in memory.
///
/// Layout, chosen so that a lookup touches two cache lines (its table slot and the key's bytes)
/// and a key costs no heap object of its own:
/// - `arena`: every composite key `namespace ‖ 0x00 ‖ key` (namespaces contain no NUL, so byte
///   order is (namespace, key) order), back to back;
/// - `table`: open addressing with linear probing, at most half full; each slot holds a 32-bit
///   hash tag with the entry number, the key's place in the arena and the latest version;
/// - per entry: the key's place (for ordered walks) and, for keys with more than one version,
///   a list of the earlier ones;
/// - `sorted` + `delta`: entry numbers in key order; new keys go to the small sorted delta,
///   merged into `sorted` when it passes 1/16 of it (amortised O(log n) per insert).
/// Invariants: each key's versions are in sequence order (the log is); every key is in exactly
/// one of `sorted` and `delta`. Memory: about 60 bytes per key plus its bytes, plus 8 bytes per
/// earlier version and a list header for keys that have any. Not thread-safe: the store
/// serialises access.
package struct KeyIndex {
    /// A version: its sequence number, with the top bit set for a tombstone.
    package struct VersionRef: Equatable, Sendable {
        package let raw: UInt64
        package init(sequence: UInt64, deleted: Bool) { raw = sequence | (deleted ? 1 << 63 : 0) }
        package init(raw: UInt64) { self.raw = raw }
        package var sequence: UInt64 { raw & ~(1 << 63) }
        package var isTombstone: Bool { raw & (1 << 63) != 0 }
    }

    private struct Slot {
        /// hash tag << 32 | (entry + 1); 0 for an empty slot.
        var tagEntry: UInt64 = 0
        /// arena offset << 16 | key length.
        var place: UInt64 = 0
        var latest: UInt64 = 0
    }

    private var arena: [UInt8] = []
    private var table = [Slot](repeating: Slot(), count: 64)
    private var places: [UInt64] = []
    private var chains: [Int32] = []
    private var earlier: [[VersionRef]] = []
    private var sorted: [UInt32] = []
    private var delta: [UInt32] = []

    package init() {}

    /// Decodes the key section of a snapshot straight into the index (no per-key arrays but the
    /// earlier-version lists): `count` × (u16 length | key | u32 n | n × u64). Returns the index
    /// and the offset after the section, or nil if the bytes are malformed or out of order.
    package static func decode(_ v: ByteView, at start: Int, count: UInt64, end: Int) -> (KeyIndex, Int)? {
        var index = KeyIndex()
        // Every key takes at least 15 bytes: a count beyond that is a lie, not a table size.
        guard end >= start, count <= UInt64((end - start) / 15) else { return nil }
        var capacity = 64
        while capacity < Int(count) * 2 { capacity *= 2 }
        index.table = [Slot](repeating: Slot(), count: capacity)
        index.places.reserveCapacity(Int(count))
        index.chains.reserveCapacity(Int(count))
        index.arena.reserveCapacity(end - start)
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
            let arenaStart = index.arena.count
            keyView.withBuffer { index.arena.append(contentsOf: $0) }
            if let previous, !index.arena[previous].lexicographicallyPrecedes(index.arena[arenaStart...]) { return nil }
            previous = arenaStart ..< index.arena.count
            index.places.append(UInt64(arenaStart) << 16 | UInt64(length))
            index.chains.append(-1)
            let entry = index.places.count - 1
            if n > 1 {
                index.chains[entry] = Int32(index.earlier.count)
                index.earlier.append((0 ..< n - 1).map { VersionRef(raw: v.u64(offset + 8 * $0)) })
            }
            let hash = keyView.withBuffer { XXH3_64bits($0.baseAddress, $0.count) }
            index.insertSlot(hash: hash, entry: entry, latest: v.u64(offset + 8 * (n - 1)))
            offset += 8 * n
        }
        index.sorted = (0 ..< UInt32(index.places.count)).map { $0 }
        return (index, offset)
    }

    package var keyCount: Int { places.count }

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
        let mask = table.count - 1
        let tag = hash >> 32
        var i = Int(truncatingIfNeeded: hash) & mask
        return arena.withUnsafeBytes { stored -> Int? in
            while true {
                let slot = table[i]
                if slot.tagEntry == 0 { return nil }
                if slot.tagEntry >> 32 == tag, Int(slot.place & 0xffff) == probe.count,
                   let p = probe.baseAddress, let base = stored.baseAddress,
                   memcmp(base + Int(slot.place >> 16), p, probe.count) == 0 {
                    return i
                }
                i = (i + 1) & mask
            }
        }
    }

    /// The latest version of `namespace`/`key` at or before `asOf`, without allocating: the
    /// composite key is assembled on the stack.
    package func latest(namespace: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, asOf: UInt64?) -> VersionRef? {
        let length = namespace.count + 1 + key.count
        return withUnsafeTemporaryAllocation(byteCount: length, alignment: 1) { buffer -> VersionRef? in
            guard let base = buffer.baseAddress else { return nil }
            if let ns = namespace.baseAddress { base.copyMemory(from: ns, byteCount: namespace.count) }
            base.storeBytes(of: 0, toByteOffset: namespace.count, as: UInt8.self)
            if let k = key.baseAddress { (base + namespace.count + 1).copyMemory(from: k, byteCount: key.count) }
            let composite = UnsafeRawBufferPointer(buffer)
            guard let i = find(bytes: composite, hash: XXH3_64bits(base, length)) else { return nil }
            return latest(slot: i, asOf: asOf)
        }
    }

    /// Whether `version` is one of the versions recorded for the composite key in `bytes`;
    /// allocates nothing (for checking a snapshot against the log).
    package func contains(_ bytes: UnsafeRawBufferPointer, version: VersionRef) -> Bool {
        guard let i = find(bytes: bytes, hash: XXH3_64bits(bytes.baseAddress, bytes.count)) else { return false }
        if table[i].latest == version.raw { return true }
        let chain = chains[Int(table[i].tagEntry & 0xffff_ffff) - 1]
        return chain >= 0 && earlier[Int(chain)].contains(version)
    }

    /// Total number of versions recorded.
    package var versionCount: Int { places.count + earlier.reduce(0) { $0 + $1.count } }

    /// All versions of a key, oldest first (empty if the key was never written).
    package func versions(of composite: [UInt8]) -> [VersionRef] {
        guard let i = find(composite, hash: KeyIndex.hash(composite)) else { return [] }
        return all(entry: Int(table[i].tagEntry & 0xffff_ffff) - 1, latest: table[i].latest)
    }

    private func all(entry: Int, latest: UInt64) -> [VersionRef] {
        let chain = chains[entry]
        return (chain >= 0 ? earlier[Int(chain)] : []) + [VersionRef(raw: latest)]
    }

    /// The latest version at or before `asOf` (the latest of all without it).
    package func latest(of composite: [UInt8], asOf: UInt64? = nil) -> VersionRef? {
        guard let i = find(composite, hash: KeyIndex.hash(composite)) else { return nil }
        return latest(slot: i, asOf: asOf)
    }

    private func latest(slot i: Int, asOf: UInt64?) -> VersionRef? {
        let latest = VersionRef(raw: table[i].latest)
        guard let limit = asOf, latest.sequence > limit else { return latest }
        let chain = chains[Int(table[i].tagEntry & 0xffff_ffff) - 1]
        return chain >= 0 ? earlier[Int(chain)].last { $0.sequence <= limit } : nil
    }

    // MARK: Recording

    /// Records a put or tombstone; `sequence` must be larger than any recorded before.
    package mutating func record(_ composite: [UInt8], sequence: UInt64, deleted: Bool) {
        let ref = VersionRef(sequence: sequence, deleted: deleted)
        let hash = KeyIndex.hash(composite)
        if let i = find(composite, hash: hash) {
            let entry = Int(table[i].tagEntry & 0xffff_ffff) - 1
            let previous = VersionRef(raw: table[i].latest)
            if chains[entry] < 0 {
                chains[entry] = Int32(earlier.count)
                earlier.append([previous])
            } else {
                earlier[Int(chains[entry])].append(previous)
            }
            table[i].latest = ref.raw
            return
        }
        let entry = appendEntry(composite)
        if places.count * 2 > table.count { grow() }
        insertSlot(hash: hash, entry: entry, latest: ref.raw)
        insertSorted(UInt32(entry))
    }

    private mutating func appendEntry(_ key: [UInt8]) -> Int {
        places.append(UInt64(arena.count) << 16 | UInt64(key.count))
        chains.append(-1)
        arena.append(contentsOf: key)
        return places.count - 1
    }

    private mutating func insertSlot(hash: UInt64, entry: Int, latest: UInt64) {
        let mask = table.count - 1
        var i = Int(truncatingIfNeeded: hash) & mask
        while table[i].tagEntry != 0 { i = (i + 1) & mask }
        table[i] = Slot(tagEntry: (hash >> 32) << 32 | UInt64(entry + 1), place: places[entry], latest: latest)
    }

    private mutating func grow() {
        let old = table
        table = [Slot](repeating: Slot(), count: old.count * 2)
        let mask = table.count - 1
        for slot in old where slot.tagEntry != 0 {
            let entry = Int(slot.tagEntry & 0xffff_ffff) - 1
            let hash = key(entry).withUnsafeBufferPointer { XXH3_64bits($0.baseAddress, $0.count) }
            var i = Int(truncatingIfNeeded: hash) & mask
            while table[i].tagEntry != 0 { i = (i + 1) & mask }
            table[i] = slot
        }
    }

    // MARK: Order

    private func key(_ entry: Int) -> ArraySlice<UInt8> {
        let place = places[entry]
        let start = Int(place >> 16)
        return arena[start ..< start + Int(place & 0xffff)]
    }

    private func precedes(_ a: ArraySlice<UInt8>, _ b: some Collection<UInt8>) -> Bool {
        a.lexicographicallyPrecedes(b)
    }

    private func lowerBound(_ entries: [UInt32], _ target: [UInt8]) -> Int {
        var low = 0, high = entries.count
        while low < high {
            let mid = (low + high) / 2
            if precedes(key(Int(entries[mid])), target) { low = mid + 1 } else { high = mid }
        }
        return low
    }

    private mutating func insertSorted(_ entry: UInt32) {
        delta.insert(entry, at: lowerBound(delta, Array(key(Int(entry)))))
        if delta.count > max(1024, sorted.count / 16) {
            var merged: [UInt32] = []
            merged.reserveCapacity(sorted.count + delta.count)
            var i = 0, j = 0
            while i < sorted.count && j < delta.count {
                if precedes(key(Int(sorted[i])), key(Int(delta[j]))) { merged.append(sorted[i]); i += 1 } else { merged.append(delta[j]); j += 1 }
            }
            merged.append(contentsOf: sorted[i...])
            merged.append(contentsOf: delta[j...])
            sorted = merged
            delta.removeAll(keepingCapacity: true)
        }
    }

    /// Keys ≥ `from`, in byte order, with their versions, while `body` returns true.
    package func forEachKey(startingAt from: [UInt8], _ body: ([UInt8], [VersionRef]) throws -> Bool) rethrows {
        var i = lowerBound(sorted, from), j = lowerBound(delta, from)
        while i < sorted.count || j < delta.count {
            let entry: Int
            if j >= delta.count || (i < sorted.count && precedes(key(Int(sorted[i])), key(Int(delta[j])))) {
                entry = Int(sorted[i])
                i += 1
            } else {
                entry = Int(delta[j])
                j += 1
            }
            let bytes = Array(key(entry))
            guard let slot = find(bytes, hash: KeyIndex.hash(bytes)) else { continue }
            guard try body(bytes, all(entry: entry, latest: table[slot].latest)) else { return }
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
