import SteleNative

/// Reading the key section of an index snapshot (written by ``IndexSnapshot``) straight into
/// the index.
extension KeyIndex {
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
            let arenaStart = keyView.withBuffer { s.arena.append($0) }
            if let previous, !s.arena.precedes(previous.lowerBound, previous.count, arenaStart, length) { return nil }
            previous = arenaStart ..< arenaStart + length
            s.places.append(UInt64(arenaStart) << 16 | UInt64(length))
            s.chains.append(-1)
            let entry = s.places.count - 1
            if n > 1 {
                s.chains[entry] = Int32(s.earlier.count)
                s.earlier.append((0 ..< n - 1).map { VersionRef(raw: v.u64(offset + 8 * $0)) })
            }
            let hash = keyView.withBuffer { Memory.xxh3($0) }
            Self.insertSlot(s, hash: hash, entry: entry, latest: v.u64(offset + 8 * (n - 1)))
            offset += 8 * n
        }
        s.blocks = blocks(of: (0 ..< UInt32(s.places.count)).map { $0 })
        s.greatest = s.places.last
        return (index, offset)
    }
}
