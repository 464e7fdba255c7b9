import Synchronization

/// An object built once, on first use, and then read by any thread without a lock: a retained
/// reference published through an atomic pointer (release on publish, acquire on read), so a
/// reader either sees nothing yet or the whole object. Builders are serialised by a mutex.
///
/// For derived tables that many readers share and that cost too much to build eagerly (a sealed
/// segment's frame offsets). Released when this goes.
package final class PublishedOnce<Value: AnyObject>: @unchecked Sendable {
    @usableFromInline let published = Atomic<UnsafeRawPointer?>(nil)
    @usableFromInline let building = Mutex(())

    @inlinable package init() {}

    deinit {
        if let raw = published.load(ordering: .acquiring) { Unmanaged<Value>.fromOpaque(raw).release() }
    }

    /// The object, built by `make` if no thread has built it yet.
    /// - Throws: what `make` throws; nothing is published then, and the next call tries again.
    @inlinable package func value(_ make: () throws -> Value) rethrows -> Value {
        if let raw = published.load(ordering: .acquiring) { return Unmanaged<Value>.fromOpaque(raw).takeUnretainedValue() }
        return try building.withLock { _ in
            if let raw = published.load(ordering: .acquiring) { return Unmanaged<Value>.fromOpaque(raw).takeUnretainedValue() }
            let value = try make()
            published.store(UnsafeRawPointer(Unmanaged.passRetained(value).toOpaque()), ordering: .releasing)
            return value
        }
    }
}
