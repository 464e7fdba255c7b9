#if canImport(Glibc)
import Glibc
#endif
import CSteleSys
import CXXHash

/// Small memory primitives the engine's hot paths need, inlinable so that moving them out of
/// the engine costs no call: byte comparison, hashing of a raw range, a prefetch hint.
@usableFromInline package enum Memory {
    /// `memcmp` of `count` bytes: negative, zero or positive as `a` sorts before, equal to or
    /// after `b`.
    @inlinable @inline(__always)
    package static func compare(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, count: Int) -> Int32 {
        memcmp(a, b, count)
    }

    /// XXH3-64 (seed 0) of a raw range (see ``xxh3(_:)-(ByteView)``).
    @inlinable @inline(__always)
    package static func xxh3(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        XXH3_64bits(bytes.baseAddress, bytes.count)
    }

    /// Starts loading the cache line at `address` for writing, without waiting.
    @inlinable @inline(__always)
    package static func prefetchForWriting(_ address: UnsafeRawPointer) {
        stele_prefetch_write(address)
    }

    /// Gives up the processor to another runnable thread (a spin-wait's pause).
    @inlinable @inline(__always)
    package static func yieldThread() {
        sched_yield()
    }
}
