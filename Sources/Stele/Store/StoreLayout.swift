import SteleNative

/// Where everything lives inside a store directory (see `docs/format.md`, "Store layout").
package struct StoreLayout: Sendable {
    package let root: String
    package init(root: String) { self.root = root }

    package var config: String { root + "/" + StoreConfig.fileName }
    package var lock: String { root + "/LOCK" }
    /// How far the log is known to have reached (``LogReach``).
    package var reach: String { root + "/" + LogReach.fileName }
    package var segments: String { root + "/segments" }
    package var tiles: String { root + "/tiles" }
    package var checkpoints: String { root + "/checkpoints" }
    package var index: String { root + "/index" }
    package var lostAndFound: String { root + "/lost+found" }
    /// An encrypted store's data keys, wrapped by its master key (``Keyring``).
    package var keyring: String { root + "/keyring" }

    /// The writer epoch the store holds in its off-host copy (SteleMirror's `WriterEpoch`).
    package static let epochFileName = "epoch"

    /// Directories created at `init`.
    package var directories: [String] { [segments, tiles, checkpoints, index] }
}
