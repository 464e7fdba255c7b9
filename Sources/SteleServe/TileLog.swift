import Dispatch
import Logging
import Stele
import Synchronization

/// A store's log as a tile server publishes it: the latest signed checkpoint, and the tiles and
/// entries it covers, read from the store directory while another process writes it.
///
/// Invariants: only a checkpoint whose root the store's own tree reproduces at its size (and,
/// with a verifier key, that carries the log's valid signature) is ever published; tiles and
/// entries are served only within the published checkpoint's tree; the published checkpoint's
/// size never goes back (a checkpoint that fails, or that is older, leaves the last good one in
/// place and is logged). The store is opened read-only, without the writer's lock or a key
/// index, and opened again when a checkpoint needs records it did not have.
public final class TileLog: Sendable {
    /// What is published: the checkpoint note, as signed (with any cosignatures), and the store
    /// its tiles are read from.
    public struct Published: Sendable {
        public let note: String
        public let checkpoint: Checkpoint
        let store: Store
    }

    public let directory: String
    private let verifier: NoteVerifier?
    private let logger: Logger
    private let published = Mutex<Published?>(nil)
    /// The store opened last (kept while there is no checkpoint yet, so a poll does not reopen it).
    private let opened = Mutex<Store?>(nil)
    /// Serialises refreshes (one store open at a time).
    private let refreshing = Mutex(())

    /// Opens the store at `directory` read-only and publishes its latest checkpoint, if any.
    /// - Parameter verifier: the log's key; when given, a checkpoint must carry its signature.
    /// - Throws: ``SteleError`` if the store cannot be opened.
    public init(directory: String, verifier: NoteVerifier?, logger: Logger = Logger(label: "stele.serve")) throws {
        self.directory = directory
        self.verifier = verifier
        self.logger = logger
        try refresh()
    }

    /// The published checkpoint and its store; nil before the log has a checkpoint.
    public var current: Published? { published.withLock { $0 } }

    /// Reads the store's latest checkpoint and publishes it if it is new, larger and verified.
    /// Blocking (it may open the store): call it off the cooperative pool.
    /// - Returns: whether a new checkpoint was published.
    /// - Throws: ``SteleError`` if the store cannot be opened or read; a checkpoint that fails its
    ///   checks is logged and not published, and is not an error of the refresh.
    @discardableResult
    public func refresh() throws -> Bool {
        try refreshing.withLock { _ throws -> Bool in
            let before = current
            var store = try opened.withLock { $0 } ?? Self.open(directory)
            opened.withLock { $0 = store }
            guard let note = try store.latestCheckpoint(), note != before?.note else { return false }
            let checkpoint = try Self.parse(note)
            if let before, checkpoint.treeSize < before.checkpoint.treeSize {
                logger.error("the store's checkpoint went back: not published", metadata: [
                    "stele.published_size": "\(before.checkpoint.treeSize)", "stele.size": "\(checkpoint.treeSize)"])
                return false
            }
            if checkpoint.treeSize > store.treeSize {
                store = try Self.open(directory)
                opened.withLock { $0 = store }
            }
            do {
                try check(note, checkpoint, against: store)
            } catch {
                logger.error("checkpoint not published: \(error)", metadata: ["stele.size": "\(checkpoint.treeSize)"])
                return false
            }
            published.withLock { $0 = Published(note: note, checkpoint: checkpoint, store: store) }
            logger.info("checkpoint published", metadata: ["stele.size": "\(checkpoint.treeSize)"])
            return true
        }
    }

    /// Refreshes every `interval` until the task is cancelled, off the cooperative pool.
    public func follow(every interval: Duration) async {
        while !Task.isCancelled {
            do {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                    DispatchQueue.global(qos: .utility).async { continuation.resume(with: Result { _ = try self.refresh() }) }
                }
            } catch {
                logger.error("refresh failed: \(error)")
            }
            try? await Task.sleep(for: interval)
        }
    }

    private static func open(_ directory: String) throws -> Store {
        var options = Store.Options(readOnly: true)
        options.keyIndex = false
        return try Store(path: directory, options: options)
    }

    /// The checkpoint in a note (its text, before the signature lines).
    static func parse(_ note: String) throws -> Checkpoint {
        try Checkpoint(parsing: SignedNote.split(note).text)
    }

    /// The note's signature (with a verifier) and its root, recomputed from the store's tree.
    private func check(_ note: String, _ checkpoint: Checkpoint, against store: Store) throws {
        if let verifier {
            try store.verifyTiles(checkpoint: note, verifier: verifier)
            return
        }
        guard checkpoint.origin == store.config.origin else {
            throw SteleError.checkpoint(.malformedCheckpoint("origin \(checkpoint.origin) is not the store's \(store.config.origin)"))
        }
        let root = try store.rootHash(treeSize: checkpoint.treeSize)
        guard root == checkpoint.root else {
            throw SteleError.checkpoint(.rootMismatch(size: checkpoint.treeSize, checkpointRoot: checkpoint.root, storeRoot: root))
        }
    }
}
