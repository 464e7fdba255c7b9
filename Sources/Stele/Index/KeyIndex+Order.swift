import SteleNative

/// Keys in byte order: the blocks of entry numbers, the deferred ordering of a
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

    /// The first position in `entries` (in key order) whose key does not sort before `target`.
    static func lowerBound(_ s: Storage, _ entries: [UInt32], _ target: UnsafeRawBufferPointer) -> Int {
        // The arrays are read through locals: one retain each, not one per step.
        let (arena, places) = (s.arena, s.places)
        var low = 0, high = entries.count
        while low < high {
            let mid = (low + high) / 2
            let key = span(places[Int(entries[mid])])
            if arena.precedes(key.offset, key.length, target) { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// Entries per block of the key order. An out-of-order key shifts half a block on average
    /// (1 KB) and a full block splits in two; no insert ever touches more. (A sorted array with a
    /// delta merged in when it filled cost 2-4 ms per merge at 200,000 keys, under the writer
    /// lock: with 64 writers, that stall was most of the puts' p99.)
    static let blockCapacity = 512

    /// The first position (block, index within it) whose key does not sort before `target`;
    /// `(blocks.count, 0)` if every key does.
    static func position(_ s: Storage, of target: UnsafeRawBufferPointer) -> (block: Int, index: Int) {
        // The first block whose first key does not sort before the target: the target's place
        // is in the block before it, or at its very start.
        let (arena, places, blocks) = (s.arena, s.places, s.blocks)
        var low = 0, high = blocks.count
        while low < high {
            let mid = (low + high) / 2
            let key = span(places[Int(blocks[mid][0])])
            if arena.precedes(key.offset, key.length, target) { low = mid + 1 } else { high = mid }
        }
        guard low > 0 else { return (0, 0) }
        let index = lowerBound(s, blocks[low - 1], target)
        return index < blocks[low - 1].count ? (low - 1, index) : (low, 0)
    }

    /// Files the new key `entry` (bytes `new`, arena place `place`) in key order. Keys that
    /// arrive in order (sequential ids, timestamps) go to the end of the last block in O(1);
    /// others into their block by binary search, or, while a rebuild defers ordering
    /// (``deferOrdering()``), to the end of `unordered`.
    func insertSorted(_ s: Storage, _ entry: UInt32, key new: UnsafeRawBufferPointer, place: UInt64) {
        let inOrder = s.greatest.map { Self.precedes(s, $0, new) } ?? true
        if inOrder {
            if s.blocks.isEmpty || s.blocks[s.blocks.count - 1].count >= Self.blockCapacity {
                s.blocks.append([])
                s.blocks[s.blocks.count - 1].reserveCapacity(Self.blockCapacity)
            }
            s.blocks[s.blocks.count - 1].append(entry)
            s.greatest = place
        } else if s.deferring {
            s.unordered.append(entry)
        } else {
            // A new key is in no block: its place is inside a block or at the end of one.
            var (block, index) = Self.position(s, of: new)
            if index == 0, block > 0 {
                block -= 1
                index = s.blocks[block].count
            }
            s.blocks[block].insert(entry, at: index)
            if s.blocks[block].count > Self.blockCapacity {
                let upper = Array(s.blocks[block][(Self.blockCapacity / 2)...])
                s.blocks[block].removeSubrange((Self.blockCapacity / 2)...)
                s.blocks.insert(upper, at: block + 1)
            }
        }
    }

    /// `entries` (in key order) cut into blocks.
    static func blocks(of entries: [UInt32]) -> [[UInt32]] {
        stride(from: 0, to: entries.count, by: blockCapacity).map {
            Array(entries[$0 ..< min($0 + blockCapacity, entries.count)])
        }
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
        let pending = Self.sortedByBytes(s.unordered, s)
        s.unordered = []
        // One two-way merge of the keys in order and the newly sorted ones.
        let sorted = Array(s.blocks.joined())
        var merged: [UInt32] = []
        merged.reserveCapacity(sorted.count + pending.count)
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
        s.greatest = merged.last.map { s.places[Int($0)] }
        s.blocks = Self.blocks(of: merged)
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
        let blocks = storage.blocks
        var (block, index) = from.withUnsafeBytes { Self.position(storage, of: $0) }
        while block < blocks.count {
            for entry in blocks[block][index...] {
                let bytes = Array(key(Int(entry)))
                guard let slot = find(bytes, hash: KeyIndex.hash(bytes)) else { continue }
                guard try body(bytes, all(entry: Int(entry), latest: storage.table[slot].latest)) else { return }
            }
            (block, index) = (block + 1, 0)
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
