import Synchronization
import SteleNative

/// Merkle tiles on disk in the C2SP `tlog-tiles` layout, under the store's `tiles/` directory:
/// `tile/<L>/<N>` holds 256 hashes (8,192 bytes), `tile/<L>/<N>.p/<W>` a partial tile of W hashes.
/// Level 0 holds leaf hashes; a hash at level L ≥ 1 is the root of a full tile at level L−1.
///
/// One exception, measured: full level-0 tiles (one per 256 records) are not separate files but
/// slots in pack files `pack/0/<K>`, 4,096 slots of 9,152 bytes each: the tile's 256 hashes
/// (exactly the C2SP `tile/0/<N>` bytes, which a tile server or mirror serves from the pack)
/// followed by the 30 interior nodes at heights 4-7 (``TileInterior``). Creating a file per 256
/// records cut append throughput from about 2.5 M to 0.34 M records/s here (ext4 inode
/// allocation); a slot costs one `pwrite`. The interior nodes cost 12% more tile space and save
/// a proof about 236 of the 247 hashes it would otherwise spend inside a level-0 tile.
///
/// Tiles are derived data: the log is the source of truth. Full tiles are written as they
/// complete, without a sync; at a seal or checkpoint the store writes the partial tiles for that
/// tree size, `syncfs`es, and records the size in `tiles/state`. On open, tiles past that size
/// are rebuilt from the log. A tile that cannot be written (say, a full disk) is kept in memory
/// and written again at the next persist; read-only stores keep rebuilt tiles only in memory.
package final class TileStore: Sendable {
    package static let width = 256
    package static let tileBytes = 256 * 32
    package static let slotBytes = (256 + TileInterior.count) * 32

    package let directory: String
    private let fs: any FileSystem
    private let writable: Bool
    /// Verifying mode (`stele fsck`): full tiles are compared with the disk instead of written.
    private let verifying: Bool
    /// Tiles that differ from (or are missing on) the disk, in verifying mode.
    package let mismatches = Mutex<[(level: Int, index: UInt64, missing: Bool, partial: Bool)]>([])
    private let madeDirectories = Mutex<Set<String>>([])
    /// Full tiles not (yet) on disk.
    private let unwritten = Mutex<[TileKey: [Digest]]>([:])
    /// Open level-0 pack files, by pack index.
    private let packs = Mutex<[UInt64: FileDescriptor]>([:])
    /// Level-0 tiles written (`end`: one past the highest) and how far their writeback has
    /// been started (see ``startWritebackIfDue()``).
    private let writeback = Mutex<(end: UInt64, started: UInt64)>((0, 0))
    private let writebackStarts: BackgroundWriteback
    /// Set when a persist's `syncfs` failed: the kernel may have dropped any tile written since
    /// the last good one (and a later `syncfs` does not write them again), so the next persist
    /// must rewrite them from the records first (see `SegmentLog.makeTilesDurable()`).
    private let syncLost = Mutex(false)

    /// Level-0 tiles per pack file.
    package static let tilesPerPack: UInt64 = 4096
    /// How many level-0 tiles written make a writeback start worth its system call (4.7 MB).
    private static let writebackTiles: UInt64 = 512

    deinit {
        // Pack descriptors stay open until a writeback start using them has returned.
        writebackStarts.join()
        for fd in packs.withLock({ Array($0.values) }) { fs.close(fd) }
    }

    /// Starts writeback, without waiting, of the level-0 tiles written since the last start,
    /// once there are ``writebackTiles`` of them, on another thread: the seal's `syncfs` then
    /// finds the 32 bytes per record that tiles take mostly on disk already, instead of waiting
    /// for all of a segment's (14 MB per 64 MiB segment of 100-byte records: 12-23 ms per seal,
    /// measured). Not a durability point; call it between batches, not during one.
    package func startWritebackIfDue() {
        guard writable, !verifying else { return }
        let range = writeback.withLock { state -> Range<UInt64>? in
            guard state.end >= state.started + TileStore.writebackTiles else { return nil }
            defer { state.started = state.end }
            return state.started ..< state.end
        }
        guard let range else { return }
        var spans: [(fd: FileDescriptor, offset: Int, length: Int)] = []
        var tile = range.lowerBound
        while tile < range.upperBound {
            let pack = tile / TileStore.tilesPerPack
            let end = min(range.upperBound, (pack + 1) * TileStore.tilesPerPack)
            if let fd = packs.withLock({ $0[pack] }) {
                let offset = Int(tile % TileStore.tilesPerPack) * TileStore.slotBytes
                spans.append((fd, offset, Int(end - tile) * TileStore.slotBytes))
            }
            tile = end
        }
        writebackStarts.start(spans)
    }

    /// `pack/0/<K>`, K in six digits.
    package static func packPath(_ pack: UInt64) -> String {
        let digits = String(pack)
        return "pack/0/" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }

    private func packDescriptor(_ pack: UInt64, create: Bool) throws -> FileDescriptor? {
        if let fd = packs.withLock({ $0[pack] }) { return fd }
        let path = absolute(TileStore.packPath(pack))
        if try fs.status(path) == nil {
            guard create else { return nil }
            try makeDirectories(absolute("pack/0"))
            let fd = try fs.open(path, .createNew(permissions: 0o644))
            fs.close(fd)
        }
        let fd = try fs.open(path, writable ? .readWrite : .readOnly)
        return packs.withLock { open in
            if let existing = open[pack] {
                fs.close(fd)
                return existing
            }
            open[pack] = fd
            return fd
        }
    }

    package init(fs: any FileSystem, directory: String, writable: Bool, verifying: Bool = false) {
        self.fs = fs
        self.directory = directory
        self.writable = writable && !verifying
        self.verifying = verifying
        writebackStarts = BackgroundWriteback(fs: fs)
    }

    // MARK: Paths

    /// `tile/<L>/<N>[.p/<W>]` relative to the tiles directory, `N` as `x001/x234/067`.
    package static func path(level: Int, index: UInt64, partialWidth: Int? = nil) -> String {
        var groups: [String] = []
        var n = index
        repeat {
            let digits = String(n % 1000)
            groups.append(String(repeating: "0", count: 3 - digits.count) + digits)
            n /= 1000
        } while n > 0
        let encoded = groups.reversed().enumerated().map { i, g in i == groups.count - 1 ? g : "x" + g }.joined(separator: "/")
        let base = "tile/\(level)/" + encoded
        if let partialWidth { return base + ".p/\(partialWidth)" }
        return base
    }

    private func absolute(_ relative: String) -> String { directory + "/" + relative }

    // MARK: Writing

    /// Writes a full tile; on failure it is kept in memory and retried by ``persist``.
    /// `interior` holds the 30 interior nodes for a level-0 tile, nothing for other levels.
    package func writeFull(level: Int, index: UInt64, hashes: [Digest], interior: [Digest]) {
        precondition(hashes.count == TileStore.width)
        let all = hashes + interior
        if verifying {
            let onDisk = try? (level == 0 ? readLevel0(index) : read(level: level, index: index))
            if onDisk != all { mismatches.withLock { $0.append((level, index, onDisk == nil, false)) } }
            verifyPartials(level: level, index: index, hashes: hashes)
            return
        }
        guard writable else {
            unwritten.withLock { $0[TileKey(level: level, index: index)] = all }
            return
        }
        do {
            try writeTile(level: level, index: index, all)
        } catch {
            unwritten.withLock { $0[TileKey(level: level, index: index)] = all }
        }
    }

    /// Makes the tiles of a tree of `size` leaves durable: retries unwritten full tiles, writes
    /// the partial tiles for `size`, syncs the file system, then records `size` and `root` in
    /// `tiles/state`. A checkpoint may be signed over `size` only after this returns.
    package func persist(size: UInt64, root: Digest, partials: [[Digest]]) throws {
        guard writable else { throw SteleError.readOnly }
        let pending = unwritten.withLock { $0 }
        for (key, hashes) in pending.sorted(by: { ($0.key.level, $0.key.index) < ($1.key.level, $1.key.index) }) {
            try writeTile(level: key.level, index: key.index, hashes)
            unwritten.withLock { _ = $0.removeValue(forKey: key) }
        }
        for (level, hashes) in partials.enumerated() where !hashes.isEmpty {
            let index = size >> (8 * UInt64(level + 1))
            try writeFile(TileStore.path(level: level, index: index, partialWidth: hashes.count), hashes)
        }
        do {
            try fs.syncFileSystem(directory)
        } catch {
            syncLost.withLock { $0 = true }
            throw error
        }
        syncLost.withLock { $0 = false }
        try TileState(size: size, root: root).write(fs: fs, directory: directory)
    }

    /// Whether the last persist's `syncfs` failed (cleared by one that succeeds).
    package var tilesMayBeLost: Bool { syncLost.withLock { $0 } }

    private static func bytes(_ hashes: [Digest]) -> [UInt8] {
        ByteWriter.makeArray(count: hashes.count * 32) { w in
            for (i, h) in hashes.enumerated() { h.write(to: w, at: i * 32) }
        }
    }

    /// Writes a full tile: level 0 (with its interior nodes) into its pack slot, higher levels
    /// as C2SP files.
    private func writeTile(level: Int, index: UInt64, _ hashes: [Digest]) throws {
        guard level == 0 else { return try writeFile(TileStore.path(level: level, index: index), hashes) }
        precondition(hashes.count == TileStore.width + TileInterior.count)
        guard let fd = try packDescriptor(index / TileStore.tilesPerPack, create: true) else { return }
        try TileStore.bytes(hashes).withUnsafeBytes {
            try fs.write(fd, $0, at: Int(index % TileStore.tilesPerPack) * TileStore.slotBytes)
        }
        writeback.withLock { state in
            if state.end == 0 { state.started = index }  // the first tile this process writes
            state.end = max(state.end, index + 1)
        }
    }

    private func writeFile(_ relative: String, _ hashes: [Digest]) throws {
        let path = absolute(relative)
        let parent = String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
        try makeDirectories(parent)
        let bytes = TileStore.bytes(hashes)
        let fd = try fs.open(path, .createOrTruncate(permissions: 0o644))
        defer { fs.close(fd) }
        do {
            try bytes.withUnsafeBytes { try fs.write(fd, $0, at: 0) }
        } catch {
            // A failed write leaves a truncated file; a full tile is written again at the next
            // persist, but a partial tile of a size the tree has passed never is: no tile beats
            // a wrong one (found by FaultSweepTests).
            try? fs.remove(path)
            throw error
        }
    }

    /// `mkdir -p` below the tiles directory, remembering what exists.
    private func makeDirectories(_ path: String) throws {
        if madeDirectories.withLock({ $0.contains(path) }) { return }
        var current = directory
        for component in path.dropFirst(directory.count).split(separator: "/") {
            current += "/" + component
            if try fs.status(current) == nil { try fs.makeDirectory(current) }
        }
        madeDirectories.withLock { _ = $0.insert(path) }
    }

    // MARK: Reading

    /// The hashes of a tile: `width` nil for a full tile. Returns nil when the file does not exist.
    /// - Throws: ``SteleError/corruption(_:)`` when the file has the wrong size.
    package func read(level: Int, index: UInt64, partialWidth: Int? = nil) throws -> [Digest]? {
        if level == 0 && partialWidth == nil { return try readLevel0(index).map { Array($0.prefix(TileStore.width)) } }
        if partialWidth == nil, let hashes = unwritten.withLock({ $0[TileKey(level: level, index: index)] }) {
            return hashes
        }
        let path = absolute(TileStore.path(level: level, index: index, partialWidth: partialWidth))
        guard let status = try fs.status(path) else { return nil }
        let count = partialWidth ?? TileStore.width
        guard status.isRegularFile, status.size == count * 32 else {
            throw SteleError.corruption(Corruption(file: path, detail: "tile is \(status.size) bytes, expected \(count * 32)"))
        }
        let fd = try fs.open(path, .readOnly)
        defer { fs.close(fd) }
        var bytes = [UInt8](repeating: 0, count: count * 32)
        let n = try bytes.withUnsafeMutableBytes { try fs.read(fd, into: $0, at: 0) }
        guard n == bytes.count else {
            throw SteleError.corruption(Corruption(file: path, detail: "tile shrank while being read"))
        }
        return ByteView.of(bytes) { view in (0 ..< count).map { Digest(view, at: $0 * 32) } }
    }

    /// Compares every partial tile `tile/<level>/<index>.p/<W>` on disk with the first W of
    /// `hashes` (the recomputed tile so far); a partial wider than `hashes` is bogus.
    package func verifyPartials(level: Int, index: UInt64, hashes: [Digest]) {
        let directory = absolute(TileStore.path(level: level, index: index) + ".p")
        for name in (try? fs.listDirectory(directory)) ?? [] {
            guard let width = Int(name), width >= 1, width <= 255 else {
                mismatches.withLock { $0.append((level, index, false, true)) }
                continue
            }
            let onDisk = try? read(level: level, index: index, partialWidth: width)
            if width > hashes.count || onDisk != Array(hashes.prefix(width)) {
                mismatches.withLock { $0.append((level, index, false, true)) }
            }
        }
    }

    /// Rewrites or removes the partial tiles of tile `level/index` wider than `durableWidth` that
    /// disagree with `hashes` (what the records give for that tile, so far); returns how many it
    /// changed. Partials that wide were written by a persist whose `syncfs` failed or was cut
    /// short, so they may be torn; no checkpoint was signed over them (only a persist that
    /// completes records its size), so rewriting them from the records hides nothing.
    /// With `rewriteMatching`, partials that read right are written again too (after a failed
    /// `syncfs` the page cache shows what the disk may have lost).
    package func reconcilePartials(level: Int, index: UInt64, durableWidth: Int, hashes: [Digest],
                                   rewriteMatching: Bool = false) throws -> Int {
        let relative = TileStore.path(level: level, index: index) + ".p"
        guard try fs.status(absolute(relative)) != nil else { return 0 }
        var changed = 0
        for name in try fs.listDirectory(absolute(relative)) {
            guard let width = Int(name), width > durableWidth else { continue }
            if width <= hashes.count && width <= 255 {
                let wanted = Array(hashes.prefix(width))
                if !rewriteMatching, (try? read(level: level, index: index, partialWidth: width)) == wanted { continue }
                try writeFile(relative + "/" + name, wanted)
            } else {
                try fs.remove(absolute(relative + "/" + name))
            }
            changed += 1
        }
        return changed
    }

    /// A full level-0 tile with its interior nodes (256 + 30 hashes); nil if the slot was never
    /// written (all zeros or past the end: SHA-256 never yields 9 KiB of zeros).
    package func readLevel0(_ index: UInt64) throws -> [Digest]? {
        if let hashes = unwritten.withLock({ $0[TileKey(level: 0, index: index)] }) { return hashes }
        guard let fd = try packDescriptor(index / TileStore.tilesPerPack, create: false) else { return nil }
        var bytes = [UInt8](repeating: 0, count: TileStore.slotBytes)
        let n = try bytes.withUnsafeMutableBytes { try fs.read(fd, into: $0, at: Int(index % TileStore.tilesPerPack) * TileStore.slotBytes) }
        guard n == TileStore.slotBytes, bytes.contains(where: { $0 != 0 }) else { return nil }
        return ByteView.of(bytes) { view in (0 ..< TileStore.width + TileInterior.count).map { Digest(view, at: $0 * 32) } }
    }

    package func readState() throws -> TileState? {
        try TileState.read(fs: fs, directory: directory)
    }
}

package struct TileKey: Hashable, Sendable {
    package var level: Int
    package var index: UInt64
}

/// `tiles/state`: the tree size up to which tiles are durable, and the root at that size.
/// One line, `stele-tiles 1 <size> <root hex> <xxh3 hex>`; written atomically.
package struct TileState: Equatable, Sendable {
    package var size: UInt64
    package var root: Digest

    static let fileName = "state"

    private var body: String { "stele-tiles 1 \(size) \(root.hex)" }

    private static func checksum(_ body: String) -> String {
        let digits = String(xxh3(Array(body.utf8)), radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    package var encoded: [UInt8] { Array((body + " " + TileState.checksum(body) + "\n").utf8) }

    func write(fs: any FileSystem, directory: String) throws {
        try fs.writeAtomically(encoded, to: directory + "/" + TileState.fileName, permissions: 0o644, directory: directory)
    }

    /// nil when there is no state file; a damaged file is corruption.
    static func read(fs: any FileSystem, directory: String) throws -> TileState? {
        let path = directory + "/" + fileName
        guard let bytes = try fs.readWholeFile(path, limit: 512) else { return nil }
        return try decode(bytes, path: path)
    }

    /// The state file's bytes; a damaged file is corruption.
    package static func decode(_ bytes: [UInt8], path: String) throws -> TileState {
        // Exactly one space between fields: the file is the one text `encoded` writes.
        let parts = String(decoding: bytes, as: UTF8.self).split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 5, parts[0] == "stele-tiles" else {
            throw SteleError.corruption(Corruption(file: path, detail: "not a tile state file"))
        }
        guard parts[1] == "1" else {
            throw SteleError.unsupportedVersion(file: path, found: Int(parts[1]) ?? -1, supported: 1)
        }
        guard let size = UInt64(parts[2]), let root = Digest(hex: parts[3]) else {
            throw SteleError.corruption(Corruption(file: path, detail: "malformed tile state"))
        }
        let state = TileState(size: size, root: root)
        // The checksum covers the text as written (so a case change in the hex is caught too).
        guard parts[4] == checksum(parts[0 ..< 4].joined(separator: " ")) + "\n", parts[0 ..< 4].joined(separator: " ") == state.body else {
            throw SteleError.corruption(Corruption(file: path, detail: "tile state checksum mismatch"))
        }
        return state
    }
}
