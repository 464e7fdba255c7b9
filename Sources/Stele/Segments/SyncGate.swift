import Synchronization
import SteleNative

/// Serialises the syncs of the active segment and remembers the first one that failed.
///
/// Why: Linux reports a writeback error once per open file (its `errseq`), to whichever sync
/// asks first, and marks the pages that failed clean, so no later sync writes them. The group
/// commit syncs outside the store's lock while a seal, a purge or a checkpoint syncs inside it;
/// two such syncs of one segment at once could see one fail and the other succeed, and the store
/// then claimed records durable on the strength of the success while the failed pages never
/// reached the disk (found by the power-cut model, whose syncs can fail, with the interval
/// policy's background sync beside a seal). Through the gate, syncs run one at a time, and once
/// one has failed every later one fails with the same cause: no durability is claimed after any
/// sync of the log failed.
///
/// Lock order: the gate is taken last (nothing else is locked while it is held).
package final class SyncGate: Sendable {
    private let failure = Mutex<IOError?>(nil)

    package init() {}

    /// Runs `sync` with no other sync of the log beside it.
    /// - Throws: ``SteleError/io(_:)`` with the first failure's cause if a sync failed before,
    ///   without running `sync`; whatever `sync` throws, kept as that failure if it is an I/O error.
    package func run(_ sync: () throws -> Void) throws {
        try failure.withLock { failure in
            if let failure { throw SteleError.io(failure) }
            do {
                try sync()
            } catch SteleError.io(let cause) {
                failure = cause
                throw SteleError.io(cause)
            }
        }
    }
}
