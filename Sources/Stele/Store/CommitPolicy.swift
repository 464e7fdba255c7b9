import SteleNative

/// When appended records are made durable (synced to stable storage).
///
/// | policy | an append returns | durable when |
/// |---|---|---|
/// | ``everyBatch`` | after `msync(MS_SYNC)` of its records | on return |
/// | ``interval(_:)`` | at once | the next timer tick, at most the interval later |
/// | ``none`` | at once | after ``Store/sync()-7ufge``, a seal, or a clean ``Store/close()`` |
///
/// Under every policy a sealed segment is durable, and a failed sync disables writes until the
/// store is reopened (``SteleError/writesDisabled(cause:)``), so success is never reported for
/// data the disk did not take.
public enum CommitPolicy: Sendable, Equatable, CustomStringConvertible {
    /// No sync on append; the OS writes back when it likes.
    case none
    /// Group commit on a timer: a background sync every `interval`, shared by all appends.
    case interval(Duration)
    /// Every append call (one record or a batch) is durable before it returns. Concurrent
    /// callers share syncs (group commit).
    case everyBatch

    /// `none`, `interval(…)` or `every-batch`.
    public var description: String {
        switch self {
        case .none: "none"
        case .interval(let d): "interval(\(d))"
        case .everyBatch: "every-batch"
        }
    }
}

/// What an append acknowledges.
public struct Receipt: Sendable, Equatable {
    /// The sequence numbers given to the appended records, in order.
    public let sequences: ClosedRange<UInt64>
    /// Under which condition they are durable.
    public let durability: Durability

    /// The durability promise of a ``Receipt``.
    public enum Durability: Sendable, Equatable {
        /// Synced before the call returned: survives a crash or power loss from now on.
        case durable
        /// Durable at the next interval tick (or a failed tick disables writes).
        case withinInterval(Duration)
        /// Durable only after ``Store/sync()-7ufge`` returns, a segment seal, or ``Store/close()``.
        case afterSync
    }
}
