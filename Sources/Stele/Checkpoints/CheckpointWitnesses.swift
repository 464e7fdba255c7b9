/// Witnesses that cosign each checkpoint a seal signs before it is published
/// (``Store/Options/checkpointWitnesses``). `SteleMirror`'s `WitnessQuorum` asks
/// c2sp.org/tlog-witness servers over HTTP; this library does no networking itself.
///
/// The contract a store relies on:
/// - ``cosign(_:of:)`` is called on a thread of the store's own (never the caller's, never the
///   cooperative pool), one checkpoint at a time, and never while the store holds a lock: it may
///   block on the network and ask the store for consistency proofs
///   (``Store/consistencyProof(from:to:)``).
/// - It returns only cosignature lines that verify under the witnesses' keys; the store
///   publishes the checkpoint with them when there are at least ``quorum``, and otherwise
///   leaves it unpublished (in `checkpoints/history`, signed by the log alone).
public protocol CheckpointWitnesses: Sendable {
    /// How many cosignatures a checkpoint needs to be published.
    var quorum: Int { get }
    /// Asks the witnesses to cosign `note`, a checkpoint of `store` that is signed and not yet
    /// published.
    /// - Returns: the cosignature lines that verified, and why each other witness gave none.
    func cosign(_ note: String, of store: Store) -> (cosignatures: [String], failures: [String])
}
