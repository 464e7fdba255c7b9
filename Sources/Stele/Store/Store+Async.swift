/// The write API for Swift concurrency: the same calls as the blocking API, under the same
/// names, for `try await`.
///
/// An async write is validated (and compressed) on the calling task and, under
/// ``CommitPolicy/everyBatch``, handed to the group commit: the store's committer thread appends
/// it with every other waiting write under one hold of the writer lock, syncs once, and resumes
/// the task. No thread of the cooperative pool waits for the disk or for the writer lock. Under
/// the other policies the call appends on the calling task (microseconds, under the writer lock)
/// and returns, as the blocking one does.
///
/// Cancellation: a task cancelled before the call writes nothing and gets `CancellationError`.
/// Once the write is handed to the group commit, cancellation no longer interrupts the call: it waits for the
/// sync and returns the receipt (or the error that stopped writes), so that a write is never
/// left half-acknowledged.
///
/// Reads (`get`, `history`, `scan`, proofs) stay synchronous: they take the store's lock only to
/// find a record and read it from memory-mapped segments, never waiting for a sync.
extension Store {
    /// Writes a new version of `key` and returns once it is durable under ``CommitPolicy/everyBatch``
    /// (see ``put(namespace:key:value:)-9jesu``, the blocking form, for the rest).
    /// - Throws: `CancellationError` if the task was cancelled before anything was written; else
    ///   as ``append(contentsOf:)-3q6im``.
    @discardableResult
    public func put(namespace: String, key: [UInt8], value: [UInt8]) async throws -> Receipt {
        try Task.checkCancellation()
        return try await awaitCommit(prepareEntries(CollectionOfOne(Entry(namespace: namespace, key: key, value: value))))
    }

    /// Appends one put record; see ``append(contentsOf:)-3q6im``.
    @discardableResult
    public func append(_ entry: Entry) async throws -> Receipt {
        try Task.checkCancellation()
        return try await awaitCommit(prepareEntries(CollectionOfOne(entry)))
    }

    /// Appends `entries` as consecutive records and returns once they are durable under
    /// ``CommitPolicy/everyBatch`` (see ``append(contentsOf:)-3q6im`` for limits, errors and cost).
    @discardableResult
    public func append(contentsOf entries: [Entry]) async throws -> Receipt {
        try Task.checkCancellation()
        return try await awaitCommit(prepareEntries(entries))
    }

    /// Writes several versions as consecutive records; see ``append(contentsOf:)-3q6im``.
    @discardableResult
    public func putBatch(_ entries: [Entry]) async throws -> Receipt {
        try Task.checkCancellation()
        return try await awaitCommit(prepareEntries(entries))
    }

    /// Writes the versions in `batch` as consecutive records; see ``putBatch(_:)-87d25``.
    @discardableResult
    public func putBatch(_ batch: EntryBatch) async throws -> Receipt {
        try Task.checkCancellation()
        return try await awaitCommit(preparePacked(batch.packed))
    }

    /// Deletes `key` logically (a tombstone); see ``delete(namespace:key:)-94bpv``.
    @discardableResult
    public func delete(namespace: String, key: [UInt8]) async throws -> Receipt {
        try Task.checkCancellation()
        return try await awaitCommit(prepareEntries(
            CollectionOfOne(Entry(type: .tombstone, namespace: Array(namespace.utf8), key: key, value: []))))
    }

    /// Makes every record appended so far durable, whatever the commit policy, sharing the
    /// group commit's sync with concurrent writers; see ``sync()-7ufge``.
    /// - Returns: the number of durable records (sequence numbers `0 ..< n`).
    @discardableResult
    public func sync() async throws -> UInt64 {
        try await durable(recordsToSync())
        return durableCount.load(ordering: .acquiring)
    }

    /// Makes `append` and commits as the policy says; under ``CommitPolicy/everyBatch`` the group
    /// commit appends it and resumes the task once it is durable.
    private func awaitCommit(_ append: @escaping GroupCommit.LockedAppend) async throws -> Receipt {
        guard options.commitPolicy == .everyBatch, let groupCommit else { return try commit(append) }
        return Receipt(sequences: try await groupCommit.appendDurably(append, in: self), durability: .durable)
    }

    /// Suspends until the first `count` records are durable.
    private func durable(_ count: UInt64) async throws {
        if durableCount.load(ordering: .acquiring) >= count { return }
        guard let groupCommit else { throw SteleError.readOnly }
        try await groupCommit.durable(count, in: self)
    }
}
