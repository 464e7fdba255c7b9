/// A read-only window onto bytes owned by someone else (a mapping or an array's storage).
///
/// All multi-byte integers in Stele's formats are little-endian; these accessors decode them
/// from any alignment. Offsets are checked with `precondition`: decoders validate lengths that
/// come from disk *before* reading, so a failed precondition is a bug in Stele, never bad data.
@frozen @usableFromInline package struct ByteView {
    @usableFromInline package let base: UnsafeRawPointer
    @usableFromInline package let count: Int

    @inlinable package init(base: UnsafeRawPointer, count: Int) {
        self.base = base
        self.count = count
    }

    @inlinable @inline(__always) func check(_ offset: Int, _ size: Int) {
        precondition(offset >= 0 && size >= 0 && offset <= count - size, "read outside view")
    }

    @inlinable @inline(__always) package func u8(_ offset: Int) -> UInt8 {
        check(offset, 1)
        return base.load(fromByteOffset: offset, as: UInt8.self)
    }

    @inlinable @inline(__always) package func u16(_ offset: Int) -> UInt16 {
        check(offset, 2)
        return UInt16(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inlinable @inline(__always) package func u32(_ offset: Int) -> UInt32 {
        check(offset, 4)
        return UInt32(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inlinable @inline(__always) package func u64(_ offset: Int) -> UInt64 {
        check(offset, 8)
        return UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    @inlinable @inline(__always) package func i64(_ offset: Int) -> Int64 { Int64(bitPattern: u64(offset)) }

    /// The 8 bytes at `offset` as a word in memory order (no byte swap): for values kept as
    /// raw bytes in words, such as a digest.
    @inlinable @inline(__always) package func memoryWord(_ offset: Int) -> UInt64 {
        check(offset, 8)
        return base.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
    }

    /// A sub-view of `count` bytes at `offset`.
    @inlinable package func slice(_ offset: Int, _ length: Int) -> ByteView {
        check(offset, length)
        return ByteView(base: base + offset, count: length)
    }

    /// A copy of the bytes.
    package var array: [UInt8] { Array(UnsafeRawBufferPointer(start: base, count: count)) }

    /// Whether every byte is zero.
    @inlinable package var isAllZero: Bool {
        let words = count / 8
        for i in 0 ..< words where base.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self) != 0 { return false }
        for i in words * 8 ..< count where base.load(fromByteOffset: i, as: UInt8.self) != 0 { return false }
        return true
    }

    /// Offset of the last non-zero byte, or nil if all bytes are zero (a word at a time: a
    /// torn tail is found by scanning a zeroed segment back from its end).
    @inlinable package var lastNonZero: Int? {
        var i = count
        while i >= 8 {
            if base.loadUnaligned(fromByteOffset: i - 8, as: UInt64.self) != 0 { break }
            i -= 8
        }
        while i > 0 {
            if base.load(fromByteOffset: i - 1, as: UInt8.self) != 0 { return i - 1 }
            i -= 1
        }
        return nil
    }

    /// Offset of the first non-zero byte, or nil if all are zero.
    package var firstNonZero: Int? {
        for i in 0 ..< count where base.load(fromByteOffset: i, as: UInt8.self) != 0 { return i }
        return nil
    }

    package func equals(_ bytes: [UInt8]) -> Bool {
        bytes.count == count && bytes.withUnsafeBytes { memcmp($0.baseAddress ?? base, base, count) == 0 }
    }

    /// Runs `body` with the bytes as a buffer pointer (for C calls).
    @inlinable package func withBuffer<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    /// A view of an array's bytes for the duration of `body`.
    @inlinable package static func of<R>(_ bytes: [UInt8], _ body: (ByteView) throws -> R) rethrows -> R {
        try bytes.withUnsafeBytes { raw in
            try body(ByteView(base: raw.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, count: raw.count))
        }
    }
}

/// A bounds-checked little-endian writer into memory owned by someone else.
@frozen @usableFromInline package struct ByteWriter {
    @usableFromInline package let base: UnsafeMutableRawPointer
    @usableFromInline package let count: Int

    @inlinable package init(base: UnsafeMutableRawPointer, count: Int) {
        self.base = base
        self.count = count
    }

    @inlinable @inline(__always) func check(_ offset: Int, _ size: Int) {
        precondition(offset >= 0 && size >= 0 && offset <= count - size, "write outside buffer")
    }

    @inlinable @inline(__always) package func put(_ value: UInt8, at offset: Int) {
        check(offset, 1)
        base.storeBytes(of: value, toByteOffset: offset, as: UInt8.self)
    }

    @inlinable @inline(__always) package func put(_ value: UInt16, at offset: Int) {
        check(offset, 2)
        base.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt16.self)
    }

    @inlinable @inline(__always) package func put(_ value: UInt32, at offset: Int) {
        check(offset, 4)
        base.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt32.self)
    }

    @inlinable @inline(__always) package func put(_ value: UInt64, at offset: Int) {
        check(offset, 8)
        base.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt64.self)
    }

    @inlinable @inline(__always) package func put(_ value: Int64, at offset: Int) { put(UInt64(bitPattern: value), at: offset) }

    /// Copies `bytes` to `offset`.
    @inlinable @inline(__always) package func put(_ bytes: UnsafeRawBufferPointer, at offset: Int) {
        check(offset, bytes.count)
        if let source = bytes.baseAddress, bytes.count > 0 {
            (base + offset).copyMemory(from: source, byteCount: bytes.count)
        }
    }

    @inlinable package func put(_ bytes: [UInt8], at offset: Int) {
        bytes.withUnsafeBytes { put($0, at: offset) }
    }

    package func zero(_ range: Range<Int>) {
        check(range.lowerBound, range.count)
        (base + range.lowerBound).initializeMemory(as: UInt8.self, repeating: 0, count: range.count)
    }

    /// The bytes written so far, read back.
    @inlinable package var view: ByteView { ByteView(base: UnsafeRawPointer(base), count: count) }

    /// Lets `body` fill `count` bytes on the stack (no heap allocation) and use them.
    @inlinable @inline(__always)
    package static func withTemporary<R>(count: Int, _ body: (ByteWriter) -> R) -> R {
        withUnsafeTemporaryAllocation(byteCount: max(count, 1), alignment: 8) { raw in
            guard let base = raw.baseAddress else { preconditionFailure("a temporary allocation without an address") }
            return body(ByteWriter(base: base, count: count))
        }
    }

    /// Lets `body` write into the first `count` bytes of `bytes` (which must hold them).
    @inlinable package static func into<R>(_ bytes: inout [UInt8], count: Int, _ body: (ByteWriter) throws -> R) rethrows -> R {
        precondition(count >= 0 && count <= bytes.count, "write outside the array")
        return try bytes.withUnsafeMutableBytes { raw in
            guard let base = raw.baseAddress else { return try body(ByteWriter(base: UnsafeMutableRawPointer(bitPattern: 1)!, count: 0)) }
            return try body(ByteWriter(base: base, count: count))
        }
    }

    /// Allocates a zeroed array of `count` bytes and lets `body` fill it.
    package static func makeArray(count: Int, _ body: (ByteWriter) throws -> Void) rethrows -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { raw in
            guard let base = raw.baseAddress else { return }
            try body(ByteWriter(base: base, count: raw.count))
        }
        return bytes
    }
}

#if canImport(Glibc)
import Glibc
#endif

extension UnsafeRawBufferPointer {
    /// A ``ByteView`` of the same bytes (a dangling-safe base for empty buffers).
    @inlinable @inline(__always) package var view: ByteView {
        ByteView(base: baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, count: count)
    }
}

extension UnsafeMutableRawBufferPointer {
    /// Copies `source` into these bytes from `offset`: false, copying nothing, if it would not
    /// fit. The bounds-checked copy for code outside this target (which does no pointer work).
    @inlinable @inline(__always) @discardableResult
    package func copy(_ source: UnsafeRawBufferPointer, at offset: Int = 0) -> Bool {
        guard offset >= 0, offset <= count, source.count <= count - offset else { return false }
        guard let base = baseAddress, let from = source.baseAddress, !source.isEmpty else { return true }
        (base + offset).copyMemory(from: from, byteCount: source.count)
        return true
    }
}
