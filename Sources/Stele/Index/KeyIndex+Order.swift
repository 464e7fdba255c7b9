import SteleNative

/// Keys in byte order: the sorted run, the small delta beside it, the deferred ordering of a
/// rebuild, and the ordered walks that scans and snapshots use.
extension KeyIndex {
    /// Where a key's bytes are in the arena: offset and length, from its place.
    @inline(__always)
    static func span(_ place: UInt64) -> (offset: Int, length: Int) { (Int(place >> 16), Int(place & 0xffff)) }

    func key(_ entry: Int) -> ArraySlice<UInt8> {
        let key = Self.span(storage.places[entry])
        return storage.arena.slice(key.offset, key.length)
    }

    /// Whether the key at `place` sorts before `other`'s bytes.
    @inline(__always)
    static func precedes(_ s: Storage, _ place: UInt64, _ other: UnsafeRawBufferPointer) -> Bool {
        let key = span(place)
        return s.arena.precedes(key.offset, key.length, other)
    }

    /// Whether the key at place `a` sorts before the key at place `b`.
    @inline(__always)
    static func precedes(_ s: Storage, _ a: UInt64, _ b: UInt64) -> Bool {
        let (x, y) = (span(a), span(b))
        return s.arena.precedes(x.offset, x.length, y.offset, y.length)
    }

    func precedes(_ a: Int, _ b: Int) -> Bool {
        Self.precedes(storage, storage.places[a], storage.places[b])
    }

    static func lowerBound(_ s: Storage, _ entries: [UInt32], _ target: UnsafeRawBufferPointer) -> Int {
        var low = 0, high = entries.count
        while low < high {
            let mid = (low + high) / 2
            if precedes(s, s.places[Int(entries[mid])], target) { low = mid + 1 } else { high = mid }
        }
        return low
    }

    func lowerBound(_ entries: [UInt32], _ target: [UInt8]) -> Int {
        target.withUnsafeBytes { Self.lowerBound(storage, entries, $0) }
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
    func insertSorted(_ s: Storage, _ entry: UInt32, key new: UnsafeRawBufferPointer, place: UInt64) {
        let inOrder = s.greatest.map { Self.precedes(s, $0, new) } ?? true
        if inOrder {
            s.sorted.append(entry)
            s.greatest = place
        } else if s.deferring {
            s.unordered.append(entry)
        } else {
            s.delta.insert(entry, at: Self.lowerBound(s, s.delta, new))
        }
        if s.delta.count > Self.deltaLimit { Self.mergeDelta(s) }
    }

    /// Merges `delta` into `sorted`: for each delta key in turn, a binary search for its place
    /// in the rest of `sorted`, then the run before it copied whole.
    static func mergeDelta(_ s: Storage) {
        guard !s.delta.isEmpty else { return }
        var merged: [UInt32] = []
        merged.reserveCapacity(s.sorted.count + s.delta.count)
        let sorted = s.sorted
        var from = 0
        for entry in s.delta {
            let key = s.places[Int(entry)]
            var low = from, high = sorted.count
            while low < high {
                let mid = (low + high) / 2
                if precedes(s, s.places[Int(sorted[mid])], key) { low = mid + 1 } else { high = mid }
            }
            merged.append(contentsOf: sorted[from ..< low])
            merged.append(entry)
            from = low
        }
        merged.append(contentsOf: sorted[from...])
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
        pending = Self.sortedByBytes(pending, s)
        // One two-way merge of the sorted run and the newly sorted keys.
        var merged: [UInt32] = []
        merged.reserveCapacity(s.sorted.count + pending.count)
        let sorted = s.sorted
        var i = 0, j = 0
        while i < sorted.count && j < pending.count {
            if Self.precedes(s, s.places[Int(sorted[i])], s.places[Int(pending[j])]) {
                merged.append(sorted[i]); i += 1
            } else {
                merged.append(pending[j]); j += 1
            }
        }
        merged.append(contentsOf: sorted[i...])
        merged.append(contentsOf: pending[j...])
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
    static func sortedByBytes(_ entries: [UInt32], _ s: Storage) -> [UInt32] {
        guard let first = entries.first else { return [] }
        let firstKey = span(s.places[Int(first)])
        var shared = firstKey.length
        for entry in entries.dropFirst() where shared > 0 {
            let key = span(s.places[Int(entry)])
            shared = s.arena.sharedPrefix(firstKey.offset, firstKey.length, key.offset, key.length, limit: shared)
        }
        var keyed = entries.map { entry -> (UInt64, UInt64, UInt64, UInt32) in
            let key = span(s.places[Int(entry)])
            return (s.arena.word(key.offset, key.length, from: shared), s.arena.word(key.offset, key.length, from: shared + 8),
                    s.arena.word(key.offset, key.length, from: shared + 16), entry)
        }
        keyed.sort { a, b in
            if a.0 != b.0 { return a.0 < b.0 }
            if a.1 != b.1 { return a.1 < b.1 }
            if a.2 != b.2 { return a.2 < b.2 }
            return precedes(s, s.places[Int(a.3)], s.places[Int(b.3)])
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
