/// Byte strings stored back to back in one growable buffer, each addressed by its offset and
/// length: a key index's keys without a heap object per key. Every access is bounds-checked.
///
/// Ordering is byte order: `memcmp` over the common length, then the shorter first (so a
/// namespace ‖ 0x00 ‖ key string sorts by namespace, then key). Inlinable: the key index calls
/// these on every lookup and insert, across the module boundary.
@frozen @usableFromInline package struct ByteArena: Sendable {
    @usableFromInline var storage: [UInt8] = []

    @inlinable package init() {}

    /// Bytes stored so far: the offset the next string gets.
    @inlinable package var count: Int { storage.count }

    @inlinable package mutating func reserveCapacity(_ capacity: Int) { storage.reserveCapacity(capacity) }

    /// Appends `bytes` and returns the offset they start at.
    @inlinable @discardableResult
    package mutating func append(_ bytes: UnsafeRawBufferPointer) -> Int {
        let offset = storage.count
        storage.append(contentsOf: bytes)
        return offset
    }

    /// The string at `offset` of `length` bytes, copied.
    @inlinable package func slice(_ offset: Int, _ length: Int) -> ArraySlice<UInt8> {
        storage[offset ..< offset + length]
    }

    /// Whether the `probe.count` bytes at `offset` are `probe`'s.
    @inlinable package func matches(_ probe: UnsafeRawBufferPointer, at offset: Int) -> Bool {
        precondition(offset >= 0 && offset + probe.count <= storage.count, "arena read out of range")
        return storage.withUnsafeBytes { stored in
            guard let base = stored.baseAddress, let other = probe.baseAddress else { return probe.isEmpty }
            return Memory.compare(base + offset, other, count: probe.count) == 0
        }
    }

    /// Whether the string at (`offset`, `length`) sorts before `other`.
    @inlinable package func precedes(_ offset: Int, _ length: Int, _ other: UnsafeRawBufferPointer) -> Bool {
        precondition(offset >= 0 && offset + length <= storage.count, "arena read out of range")
        return storage.withUnsafeBytes { stored in
            Self.less(UnsafeRawBufferPointer(rebasing: stored[offset ..< offset + length]), other)
        }
    }

    /// Whether the string at (`a`, `aLength`) sorts before the one at (`b`, `bLength`).
    @inlinable package func precedes(_ a: Int, _ aLength: Int, _ b: Int, _ bLength: Int) -> Bool {
        precondition(a >= 0 && a + aLength <= storage.count && b >= 0 && b + bLength <= storage.count, "arena read out of range")
        return storage.withUnsafeBytes { stored in
            Self.less(UnsafeRawBufferPointer(rebasing: stored[a ..< a + aLength]), UnsafeRawBufferPointer(rebasing: stored[b ..< b + bLength]))
        }
    }

    /// The 8 bytes of the string at (`offset`, `length`) from `start`, big-endian, zeros past
    /// its end: sorting by these words orders most strings without reading them again.
    @inlinable package func word(_ offset: Int, _ length: Int, from start: Int) -> UInt64 {
        var value: UInt64 = 0
        for i in start ..< start + 8 { value = value << 8 | UInt64(i < length ? storage[offset + i] : 0) }
        return value
    }

    /// How many leading bytes the strings at (`a`, `aLength`) and (`b`, `bLength`) share, up to
    /// `limit`.
    @inlinable package func sharedPrefix(_ a: Int, _ aLength: Int, _ b: Int, _ bLength: Int, limit: Int) -> Int {
        var i = 0
        let end = min(limit, aLength, bLength)
        while i < end && storage[a + i] == storage[b + i] { i += 1 }
        return i
    }

    /// Byte order of two ranges.
    @inlinable static func less(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        let common = min(a.count, b.count)
        guard common > 0, let x = a.baseAddress, let y = b.baseAddress else { return a.count < b.count }
        let order = Memory.compare(x, y, count: common)
        return order < 0 || (order == 0 && a.count < b.count)
    }
}

extension Memory {
    /// Calls `body` with `a ‖ separator ‖ b` assembled on the stack (no heap allocation).
    @inlinable @inline(__always)
    package static func withJoined<R>(_ a: UnsafeRawBufferPointer, separator: UInt8, _ b: UnsafeRawBufferPointer,
                                      _ body: (UnsafeRawBufferPointer) -> R) -> R {
        withUnsafeTemporaryAllocation(byteCount: a.count + 1 + b.count, alignment: 1) { buffer in
            guard let base = buffer.baseAddress else { return body(UnsafeRawBufferPointer(buffer)) }
            if let first = a.baseAddress { base.copyMemory(from: first, byteCount: a.count) }
            base.storeBytes(of: separator, toByteOffset: a.count, as: UInt8.self)
            if let second = b.baseAddress { (base + a.count + 1).copyMemory(from: second, byteCount: b.count) }
            return body(UnsafeRawBufferPointer(buffer))
        }
    }

    /// Starts loading `array[index]`'s cache line for writing, without waiting.
    @inlinable @inline(__always)
    package static func prefetchForWriting<Element>(_ array: [Element], at index: Int) {
        precondition(index >= 0 && index < array.count, "prefetch out of range")
        array.withUnsafeBufferPointer { elements in
            if let base = elements.baseAddress { prefetchForWriting(UnsafeRawPointer(base + index)) }
        }
    }
}
