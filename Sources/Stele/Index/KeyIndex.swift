/// Key → versions, for every put and tombstone in the log, in memory.
///
/// Invariants: each key's versions are in sequence order (the log is); `sorted ∪ unsorted`
/// holds every key exactly once, `sorted` in byte order. Keys are stored as
/// `namespace ‖ 0x00 ‖ key` (namespaces contain no NUL), so byte order is (namespace, key) order
/// and one array serves both the hash map and the ordered list.
///
/// New keys go to a small sorted delta that is merged into the big sorted array when it
/// passes 1/16 of it, so an insert costs O(log n) amortised and a scan merges two sorted runs.
/// Memory: about 90 bytes per key plus the key and namespace bytes, plus 8 bytes per extra version.
/// Not thread-safe: the store serialises access.
package struct KeyIndex {
    /// A version: its sequence number, with the top bit set for a tombstone.
    package struct VersionRef: Equatable, Sendable {
        package let raw: UInt64
        package init(sequence: UInt64, deleted: Bool) { raw = sequence | (deleted ? 1 << 63 : 0) }
        package init(raw: UInt64) { self.raw = raw }
        package var sequence: UInt64 { raw & ~(1 << 63) }
        package var isTombstone: Bool { raw & (1 << 63) != 0 }
    }

    /// A composite key hashed in bulk (an `[UInt8]` hashes byte by byte, several times slower).
    private struct HashedKey: Hashable {
        let bytes: [UInt8]
        func hash(into hasher: inout Hasher) { bytes.withUnsafeBytes { hasher.combine(bytes: $0) } }
        static func == (a: HashedKey, b: HashedKey) -> Bool { a.bytes == b.bytes }
    }

    /// A key's versions: the latest inline (what `get` reads, without touching another
    /// allocation), the earlier ones in order.
    private struct Versions {
        var earlier: [VersionRef]
        var latest: VersionRef
        var all: [VersionRef] { earlier + [latest] }
    }

    private var versions: [HashedKey: Versions] = [:]
    private var sorted: [[UInt8]] = []
    private var delta: [[UInt8]] = []

    package init() {}

    /// Builds an index from keys already in byte order (a snapshot).
    package init(sortedKeys: [[UInt8]], versions: [[VersionRef]]) {
        var map: [HashedKey: Versions] = [:]
        map.reserveCapacity(sortedKeys.count)
        for (key, refs) in zip(sortedKeys, versions) {
            guard let latest = refs.last else { continue }
            map[HashedKey(bytes: key)] = Versions(earlier: Array(refs.dropLast()), latest: latest)
        }
        self.versions = map
        self.sorted = sortedKeys
    }

    package var keyCount: Int { versions.count }

    /// Every key in byte order with its versions (for snapshots).
    package func forEachKeyInOrder(_ body: ([UInt8], [VersionRef]) -> Void) {
        forEachKey(startingAt: []) { key, refs in
            body(key, refs)
            return true
        }
    }

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

    /// Records a put or tombstone; `sequence` must be larger than any recorded before.
    package mutating func record(_ composite: [UInt8], sequence: UInt64, deleted: Bool) {
        let ref = VersionRef(sequence: sequence, deleted: deleted)
        let key = HashedKey(bytes: composite)
        if let index = versions.index(forKey: key) {
            versions.values[index].earlier.append(versions.values[index].latest)
            versions.values[index].latest = ref
        } else {
            versions[key] = Versions(earlier: [], latest: ref)
            insertNewKey(composite)
        }
    }

    private mutating func insertNewKey(_ key: [UInt8]) {
        delta.insert(key, at: KeyIndex.lowerBound(delta, key))
        if delta.count > max(1024, sorted.count / 16) {
            sorted = KeyIndex.merge(sorted, delta)
            delta.removeAll(keepingCapacity: true)
        }
    }

    /// All versions of a key, oldest first (empty if the key was never written).
    package func versions(of composite: [UInt8]) -> [VersionRef] {
        versions[HashedKey(bytes: composite)]?.all ?? []
    }

    /// The latest version at or before `asOf` (the latest of all without it).
    package func latest(of composite: [UInt8], asOf: UInt64? = nil) -> VersionRef? {
        guard let entry = versions[HashedKey(bytes: composite)] else { return nil }
        guard let limit = asOf, entry.latest.sequence > limit else { return entry.latest }
        return entry.earlier.last { $0.sequence <= limit }
    }

    /// Keys ≥ `from` (or > `after`), in byte order, while `body` returns true.
    package func forEachKey(startingAt from: [UInt8], _ body: ([UInt8], [VersionRef]) throws -> Bool) rethrows {
        var i = KeyIndex.lowerBound(sorted, from), j = KeyIndex.lowerBound(delta, from)
        while i < sorted.count || j < delta.count {
            let key: [UInt8]
            if j >= delta.count || (i < sorted.count && sorted[i].lexicographicallyPrecedes(delta[j])) {
                key = sorted[i]
                i += 1
            } else {
                key = delta[j]
                j += 1
            }
            guard try body(key, versions[HashedKey(bytes: key)]?.all ?? []) else { return }
        }
    }

    static func lowerBound(_ keys: [[UInt8]], _ key: [UInt8]) -> Int {
        var low = 0, high = keys.count
        while low < high {
            let mid = (low + high) / 2
            if keys[mid].lexicographicallyPrecedes(key) { low = mid + 1 } else { high = mid }
        }
        return low
    }

    static func merge(_ a: [[UInt8]], _ b: [[UInt8]]) -> [[UInt8]] {
        var out: [[UInt8]] = []
        out.reserveCapacity(a.count + b.count)
        var i = 0, j = 0
        while i < a.count && j < b.count {
            if a[i].lexicographicallyPrecedes(b[j]) { out.append(a[i]); i += 1 } else { out.append(b[j]); j += 1 }
        }
        out.append(contentsOf: a[i...])
        out.append(contentsOf: b[j...])
        return out
    }
}
