import Dispatch
import Logging
import Synchronization

/// Takes the checkpoints that seals sign to their witnesses and publishes each once a quorum
/// cosigned (``Store/Options/checkpointWitnesses``).
///
/// Invariants:
/// - A seal only hands its note over (``submit(_:of:)`` never blocks and takes no store lock):
///   the network is never on the write path.
/// - One checkpoint is with the witnesses at a time, on this object's own queue. A newer note
///   that arrives meanwhile replaces any older one still waiting: checkpoints of one store
///   extend each other, so cosigning the newest covers the older ones, and the queue never grows
///   with a slow witness.
/// - A checkpoint below its quorum is not published; ``failure`` says why until a later one is.
///   It stays in `checkpoints/history`, and the next writable open hands the newest such
///   checkpoint over again (as does the next seal, with a newer one).
/// - Once the store closes (``finish()``), nothing new is taken: a seal racing the close leaves
///   its checkpoint unpublished for the next open, rather than a worker publishing into a store
///   whose lock it no longer holds.
final class SealWitnessing: Sendable {
    private struct State {
        var waiting: String?
        var running = false
        var failure: String?
        var finished = false
    }

    private let witnesses: any CheckpointWitnesses
    private let logger: Logger
    private let queue = DispatchQueue(label: "stele.seal-witnessing")
    private let busy = DispatchGroup()
    private let state = Mutex(State())
    private static let onQueue = DispatchSpecificKey<Bool>()

    init(witnesses: any CheckpointWitnesses, logger: Logger) {
        self.witnesses = witnesses
        self.logger = logger
        queue.setSpecific(key: Self.onQueue, value: true)
    }

    /// Why the latest checkpoint a seal signed is not published, if it is not.
    var failure: String? { state.withLock { $0.failure } }

    func submit(_ note: String, of store: Store) {
        let start = state.withLock { state -> Bool in
            guard !state.finished else { return false }
            state.waiting = note
            guard !state.running else { return false }
            state.running = true
            busy.enter()  // under the lock: a close that sees `running` also waits for it
            return true
        }
        guard start else { return }
        queue.async {
            defer { self.busy.leave() }
            while let note = self.state.withLock({ state -> String? in
                defer { state.waiting = nil }
                if state.waiting == nil { state.running = false }
                return state.waiting
            }) {
                self.witness(note, of: store)
            }
        }
    }

    /// Takes no more checkpoints, and returns once none is with the witnesses (at once when
    /// called from the queue). A note waiting behind the one in flight is dropped: it is in the
    /// history, for the next open.
    func finish() {
        state.withLock {
            $0.finished = true
            $0.waiting = nil
        }
        guard DispatchQueue.getSpecific(key: Self.onQueue) == nil else { return }
        busy.wait()
    }

    private func witness(_ note: String, of store: Store) {
        let (lines, failures) = witnesses.cosign(note, of: store)
        let size = note.split(separator: "\n").dropFirst().first.map(String.init) ?? "?"
        var failure: String?
        if lines.count >= witnesses.quorum {
            do {
                try store.publishCheckpoint(note, cosignatures: lines)
                logger.info("seal checkpoint cosigned and published", metadata: ["stele.tree_size": "\(size)", "stele.cosignatures": "\(lines.count)"])
            } catch {
                failure = "the cosigned checkpoint of size \(size) could not be published: \(error)"
            }
        } else {
            failure = "\(lines.count) of the witnesses cosigned the checkpoint of size \(size), \(witnesses.quorum) needed: "
                + failures.joined(separator: "; ")
        }
        if let failure {
            logger.error("seal checkpoint not published", metadata: ["stele.tree_size": "\(size)", "stele.error": "\(failure)"])
        }
        state.withLock { $0.failure = failure }
    }
}
