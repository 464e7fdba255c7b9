import Foundation
import Glibc
import Synchronization
@testable import Stele
import SteleNative

/// A file system that knows what a power cut at this moment could leave on disk.
///
/// It passes every call to the real file system and keeps, beside it, a model of durability:
/// - per file (inode): the bytes and size last made durable, by `fdatasync`/`fsync` of the
///   whole file, `msync` of a mapped range, or `syncfs`;
/// - the namespace: every create, rename, unlink and mkdir since the start, each one durable once
///   the directories it touches have been synced (or after `syncfs`).
///
/// ``crashImage(_:)`` returns one state a power cut could leave, chosen adversarially by a seeded
/// generator: all durable namespace operations plus a random prefix of the others, and per file
/// its durable bytes with each page written since its last sync either lost, kept, or torn at
/// 512-byte sector granularity; a grown file may come back at its durable size or its new size,
/// and data past the durable size may read back as zeros (a size that reached the journal before
/// the data did). ``onCall`` runs before every call that changes the disk, and after every
/// store the writer makes into a mapping (``storedIntoMapping(_:_:)``), so a test can take an
/// image at each of them: a crash point. At a store's crash point the store itself may be cut
/// short (a page written back while the store was still copying): the image may keep any prefix
/// of it that ends on an aligned 8-byte word, before the per-page and per-sector choices above.
/// Words, not bytes: x86-64 and arm64 make an aligned 8-byte store single-copy atomic, and the
/// header's fields are such stores (a frame torn inside a word is caught by its checksum as one
/// torn between words is).
///
/// Syncs are recorded, not performed: what survives is decided by the model, so the real disk
/// need not be asked (which also makes thousands of crash points cheap). A sync can be made to
/// fail (``failSync``), with what Linux does then (the "fsyncgate" behaviour): the pages it did
/// not write are marked clean, so a later sync of the same file succeeds without writing them
/// unless they are written again; a failed `syncfs` is reported once more by the next sync of
/// each file it failed to write; a failed directory sync makes nothing durable.
///
/// Modelled simplifications: directory entries in the same directory are not reordered among
/// themselves beyond the prefix rule; permissions come back as they are now.
///
/// A renamed directory takes everything in it along (its files are the same inodes under new
/// names), and a sync of a directory under its new name covers what was done in it under the old
/// one; a removed directory takes along anything the image still has in it.
final class PowerLossFileSystem: FileSystem, @unchecked Sendable {
    /// One state of the disk after a power cut: directories and file contents, relative to `root`.
    struct CrashImage {
        var directories: [String]
        var files: [String: (bytes: [UInt8], permissions: UInt32)]

        /// Writes the image into an empty directory `path`.
        func materialize(at path: String) throws {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            for directory in directories.sorted() {
                try FileManager.default.createDirectory(atPath: path + "/" + directory, withIntermediateDirectories: true)
            }
            for (name, file) in files {
                let full = path + "/" + name
                guard FileManager.default.createFile(atPath: full, contents: Data(file.bytes)) else {
                    throw SteleError.io(IOError(operation: "create", path: full, errno: EIO))
                }
                chmod(full, mode_t(file.permissions))
            }
        }
    }

    struct Inode {
        var durable: [UInt8] = []
        /// Content when its last name went away (for images in which the unlink is lost).
        var lastKnown: [UInt8]?
        var lastPermissions: UInt32 = 0o644
        var path: String?
        /// Pages (4 KiB) a failed sync did not write and the kernel then marked clean: no later
        /// sync writes them, until they are written again.
        var lostPages: Set<Int> = []
        /// A failed `syncfs` left this file unwritten: its own next sync reports the error.
        var unreportedFailure = false
    }

    enum Change {
        case create(String, inode: Int)
        case makeDirectory(String)
        case rename(String, String)
        case renameDirectory(String, String)
        case remove(String)

        var directories: [String] {
            switch self {
            case .create(let p, _), .makeDirectory(let p), .remove(let p): [PowerLossFileSystem.parent(p)]
            case .rename(let a, let b), .renameDirectory(let a, let b): [PowerLossFileSystem.parent(a), PowerLossFileSystem.parent(b)]
            }
        }
    }

    struct Model {
        var inodes: [Inode] = []
        var baseFiles: [String: Int] = [:]
        var baseDirectories: Set<String> = []
        var changes: [(change: Change, durable: Bool)] = []
        var byDescriptor: [Int32: Int] = [:]
        var byRegion: [ObjectIdentifier: Int] = [:]
        var calls = 0
        /// Syncs of files the model does not know: each would make the model wrong, so images fail.
        var gaps: [String] = []
        /// Per writable mapping: its bytes as of the last store or write the model saw, so that a
        /// store's crash point knows what the store overwrote.
        var shadows: [ObjectIdentifier: [UInt8]] = [:]
        /// The store whose crash point is being taken: an image may keep any prefix of it.
        var storeInProgress: (inode: Int, range: Range<Int>, old: [UInt8])?
        var storesSeen = 0
        var syncsFailed = 0
    }

    let real = PosixFileSystem()
    /// The directory modelled (absolute, no trailing slash); paths outside it are passed through.
    let root: String
    let model = Mutex(Model())
    /// Called before each call that changes the disk, with the number of such calls so far.
    var onCall: ((Int) -> Void)?
    /// Asked at every sync, after its crash point, with the call's number: true makes it fail
    /// with `EIO` (see the type's comment for what the model then keeps).
    var failSync: ((_ call: Int, _ operation: String) -> Bool)?

    /// Creates a store of 64 KiB segments at `path` (on the real disk, taken as durable) and
    /// opens it on the model with `policy`: the store under test and the model that cuts it.
    static func openNewStore(at path: String, policy: CommitPolicy) throws -> (Store, PowerLossFileSystem) {
        try Store.create(at: path, segmentSize: 64 * 1024)
        let fs = try PowerLossFileSystem(root: path)
        var options = Store.Options(commitPolicy: policy)
        options.fileSystem = fs
        return (try Store(path: path, options: options), fs)
    }

    /// Starts modelling `root`, taking everything already in it as durable.
    init(root: String) throws {
        self.root = root
        var state = Model()
        state.baseDirectories.insert("")
        for relative in try FileManager.default.subpathsOfDirectory(atPath: root).sorted() {
            var isDirectory: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: root + "/" + relative, isDirectory: &isDirectory)
            if isDirectory.boolValue {
                state.baseDirectories.insert(relative)
            } else {
                state.inodes.append(Inode(durable: try readFile(root + "/" + relative), path: root + "/" + relative))
                state.baseFiles[relative] = state.inodes.count - 1
            }
        }
        model.withLock { $0 = state }
    }

    /// Calls that changed the disk so far.
    var calls: Int { model.withLock { $0.calls } }
    /// Stores into mappings reported so far (each was a crash point).
    var storesSeen: Int { model.withLock { $0.storesSeen } }
    /// Syncs that ``failSync`` made fail.
    var syncsFailed: Int { model.withLock { $0.syncsFailed } }

    private func relative(_ path: String) -> String? {
        if path == root { return "" }
        guard path.hasPrefix(root + "/") else { return nil }
        return String(path.dropFirst(root.count + 1))
    }

    private static let tracing = ProcessInfo.processInfo.environment["STELE_POWERLOSS_TRACE"] != nil

    @discardableResult
    private func tick(_ what: @autoclosure () -> String = "") -> Int {
        let n = model.withLock { state -> Int in
            state.calls += 1
            return state.calls
        }
        if Self.tracing { print("call \(n): \(what())") }
        onCall?(n)
        return n
    }

    /// Whether the sync that is call `n` is to fail (``failSync``); counts it if so.
    private func syncFails(_ n: Int, _ operation: String) -> Bool {
        guard let failSync, failSync(n, operation) else { return false }
        model.withLock { $0.syncsFailed += 1 }
        if Self.tracing { print("call \(n) fails (EIO)") }
        return true
    }

    private func injectedFailure(_ operation: String, _ path: String) -> SteleError {
        SteleError.io(IOError(operation: operation + " (injected by the power-cut model)", path: path, errno: EIO))
    }

    private func currentInode(_ state: Model, path: String) -> Int? {
        state.inodes.lastIndex { $0.path == path }
    }

    /// The file now at `path`: its bytes as last made durable and as they are now.
    func contents(of path: String) throws -> (durable: [UInt8], current: [UInt8])? {
        guard let durable = model.withLock({ state in currentInode(state, path: path).map { state.inodes[$0].durable } }) else { return nil }
        return (durable, try readFile(path))
    }

    // MARK: Durability events

    /// What a successful sync of `inode` leaves on disk: `bytes`, except the pages a failed sync
    /// lost and nothing has written since, which keep what the disk had.
    private func makeDurable(inode: Int, bytes: [UInt8]) {
        model.withLock { state in
            var bytes = bytes
            let old = state.inodes[inode].durable
            for page in state.inodes[inode].lostPages where page * 4096 < bytes.count {
                for i in page * 4096 ..< min(bytes.count, page * 4096 + 4096) { bytes[i] = i < old.count ? old[i] : 0 }
            }
            state.inodes[inode].durable = bytes
        }
    }

    /// A failed sync of `inode`: the pages that differ from the disk are marked clean unwritten.
    private func loseDirtyPages(_ state: inout Model, inode: Int, current: [UInt8]) {
        let durable = state.inodes[inode].durable
        for page in 0 ..< (max(current.count, durable.count) + 4095) / 4096 {
            let range = page * 4096 ..< min(max(current.count, durable.count), page * 4096 + 4096)
            if range.contains(where: { ($0 < current.count ? current[$0] : 0) != ($0 < durable.count ? durable[$0] : 0) }) {
                state.inodes[inode].lostPages.insert(page)
            }
        }
    }

    /// `range` of `inode` was written again: its pages are dirty, a later sync writes them.
    private func rewritten(_ state: inout Model, inode: Int, _ range: Range<Int>) {
        guard !state.inodes[inode].lostPages.isEmpty, !range.isEmpty else { return }
        for page in range.lowerBound / 4096 ... (range.upperBound - 1) / 4096 { state.inodes[inode].lostPages.remove(page) }
    }

    /// Keeps the shadows of `inode`'s writable mappings equal to the file over `range`.
    private func refreshShadows(_ state: inout Model, inode: Int, _ range: Range<Int>, from region: MappedRegion? = nil) {
        for (id, mapped) in state.byRegion where mapped == inode {
            guard var shadow = state.shadows[id] else { continue }
            let end = min(range.upperBound, shadow.count)
            guard range.lowerBound < end else { continue }
            if let region, ObjectIdentifier(region) == id {
                shadow.replaceSubrange(range.lowerBound ..< end,
                                       with: UnsafeRawBufferPointer(start: region.base + range.lowerBound, count: end - range.lowerBound))
            } else if let path = state.inodes[inode].path, let bytes = try? readFile(path) {
                for i in range.lowerBound ..< end { shadow[i] = i < bytes.count ? bytes[i] : 0 }
            }
            state.shadows[id] = shadow
        }
    }

    private func contents(_ fd: FileDescriptor) throws -> [UInt8] {
        let size = try real.size(fd)
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let n = try bytes.withUnsafeMutableBytes { try real.read(fd, into: UnsafeMutableRawBufferPointer(rebasing: $0[done...]), at: done) }
            if n == 0 { break }
            done += n
        }
        return Array(bytes.prefix(done))
    }

    private func syncDescriptor(_ fd: FileDescriptor, call: Int, _ operation: String) throws {
        guard let inode = model.withLock({ $0.byDescriptor[fd.raw] }) else {
            if relative(fd.path) != nil { model.withLock { $0.gaps.append("sync of unknown descriptor \(fd.path)") } }
            return
        }
        try sync(inode: inode, current: try contents(fd), call: call, operation, fd.path)
    }

    /// A sync of one file: fails if asked to (losing its dirty pages) or if a failed `syncfs`
    /// left it unwritten (reported now, once); otherwise makes `current` durable.
    private func sync(inode: Int, current: [UInt8], call: Int, _ operation: String, _ path: String) throws {
        let fails = syncFails(call, operation)
        let unreported = model.withLock { state -> Bool in
            defer { state.inodes[inode].unreportedFailure = false }
            if fails { loseDirtyPages(&state, inode: inode, current: current) }
            return state.inodes[inode].unreportedFailure
        }
        if fails || unreported { throw injectedFailure(operation, path) }
        makeDurable(inode: inode, bytes: current)
    }

    private func directoriesSynced(_ synced: (String) -> Bool) {
        model.withLock { state in
            let directoryRenames = state.changes.indices.compactMap { i -> (Int, String, String)? in
                guard case .renameDirectory(let from, let to) = state.changes[i].change else { return nil }
                return (i, from, to)
            }
            for i in state.changes.indices where !state.changes[i].durable {
                // A directory synced under a later name is the one the change was made in.
                var directories = state.changes[i].change.directories
                for (j, from, to) in directoryRenames where j > i {
                    directories = directories.map { Self.moving($0, from: from, to: to) }
                }
                if directories.allSatisfy(synced) { state.changes[i].durable = true }
            }
        }
    }

    // MARK: FileSystem

    func open(_ path: String, _ mode: OpenMode) throws -> FileDescriptor {
        let creates: Bool
        switch mode {
        case .readOnly, .readWrite: creates = false
        case .createNew, .createOrTruncate: creates = true
        }
        if creates { tick("create \(path)") }
        let existed = try real.status(path) != nil
        let fd = try real.open(path, mode)
        guard let name = relative(path) else { return fd }
        model.withLock { state in
            if let inode = currentInode(state, path: path) {
                state.byDescriptor[fd.raw] = inode
            } else if creates && !existed {
                state.inodes.append(Inode(durable: [], path: path))
                let inode = state.inodes.count - 1
                state.changes.append((.create(name, inode: inode), false))
                state.byDescriptor[fd.raw] = inode
            }
        }
        return fd
    }

    func close(_ fd: FileDescriptor) {
        model.withLock { _ = $0.byDescriptor.removeValue(forKey: fd.raw) }
        real.close(fd)
    }

    func size(_ fd: FileDescriptor) throws -> Int { try real.size(fd) }

    func read(_ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws -> Int {
        try real.read(fd, into: buffer, at: offset)
    }

    func write(_ fd: FileDescriptor, _ bytes: UnsafeRawBufferPointer, at offset: Int) throws {
        tick("write \(fd.path) \(offset) +\(bytes.count)"); try real.write(fd, bytes, at: offset)
        model.withLock { state in
            guard let inode = state.byDescriptor[fd.raw] else { return }
            rewritten(&state, inode: inode, offset ..< offset + bytes.count)
            refreshShadows(&state, inode: inode, offset ..< offset + bytes.count)
        }
    }

    func allocate(_ fd: FileDescriptor, offset: Int, length: Int) throws {
        tick("allocate \(fd.path)"); try real.allocate(fd, offset: offset, length: length)
    }

    func truncate(_ fd: FileDescriptor, to length: Int) throws {
        tick("truncate \(fd.path) \(length)"); try real.truncate(fd, to: length)
    }

    func syncData(_ fd: FileDescriptor) throws {
        try syncDescriptor(fd, call: tick("syncData \(fd.path)"), "fdatasync")
    }

    func syncAll(_ fd: FileDescriptor) throws {
        try syncDescriptor(fd, call: tick("syncAll \(fd.path)"), "fsync")
    }

    func setPermissions(_ fd: FileDescriptor, _ mode: UInt32) throws {
        tick("chmod \(fd.path)"); try real.setPermissions(fd, mode)
    }

    func map(_ fd: FileDescriptor, length: Int, writable: Bool) throws -> MappedRegion {
        let region = try real.map(fd, length: length, writable: writable)
        model.withLock { state in
            if let inode = state.byDescriptor[fd.raw] { state.byRegion[ObjectIdentifier(region)] = inode }
            // A new mapping may reuse a dead one's identity: its shadow starts afresh.
            state.shadows[ObjectIdentifier(region)] = writable ? [UInt8](UnsafeRawBufferPointer(start: region.base, count: region.count)) : nil
        }
        return region
    }

    func syncMapped(_ region: MappedRegion, _ range: Range<Int>) throws {
        let call = tick("msync \(region.path) \(range)")
        let start = range.lowerBound & ~4095
        let end = min(region.count, (range.upperBound + 4095) & ~4095)
        guard start < end else { return }
        let pages = [UInt8](UnsafeRawBufferPointer(start: region.base + start, count: end - start))
        guard let inode = model.withLock({ $0.byRegion[ObjectIdentifier(region)] }) else {
            if relative(region.path) != nil { model.withLock { $0.gaps.append("msync of unknown mapping \(region.path)") } }
            return
        }
        // What the file would hold were the range synced: the durable bytes with these pages.
        var current = model.withLock { $0.inodes[inode].durable }
        if current.count < end { current.append(contentsOf: [UInt8](repeating: 0, count: end - current.count)) }
        current.replaceSubrange(start ..< end, with: pages)
        try sync(inode: inode, current: current, call: call, "msync", region.path)
    }

    /// A crash point after each store into a writable mapping; the image may cut the store short.
    var observesMappedStores: Bool { true }

    func storedIntoMapping(_ region: MappedRegion, _ range: Range<Int>) {
        let id = ObjectIdentifier(region)
        model.withLock { state in
            guard let inode = state.byRegion[id], let shadow = state.shadows[id], range.upperBound <= shadow.count else { return }
            state.storeInProgress = (inode, range, Array(shadow[range]))
            state.storesSeen += 1
            rewritten(&state, inode: inode, range)
        }
        tick("store \(region.path) \(range)")
        model.withLock { state in
            state.storeInProgress = nil
            if let inode = state.byRegion[id] { refreshShadows(&state, inode: inode, range, from: region) }
        }
    }

    func lockExclusive(_ fd: FileDescriptor) throws -> Bool { try real.lockExclusive(fd) }

    func rename(_ from: String, to: String) throws {
        tick("rename \(from) \(to)")
        let isDirectory = try real.status(from)?.isDirectory == true
        let replaced = try? readFile(to)
        let replacedPermissions = try real.status(to)?.permissions
        try real.rename(from, to: to)
        guard let a = relative(from), let b = relative(to) else { return }
        model.withLock { state in
            if isDirectory {
                // Its files are the same inodes, now under the new name.
                for i in state.inodes.indices {
                    if let path = state.inodes[i].path { state.inodes[i].path = Self.moving(path, from: from, to: to) }
                }
                state.changes.append((.renameDirectory(a, b), false))
                return
            }
            if let old = currentInode(state, path: to) {
                state.inodes[old].lastKnown = replaced
                state.inodes[old].lastPermissions = replacedPermissions ?? 0o644
                state.inodes[old].path = nil
            }
            if let moved = currentInode(state, path: from) { state.inodes[moved].path = to }
            state.changes.append((.rename(a, b), false))
        }
    }

    func syncDirectory(_ path: String) throws {
        let call = tick("syncDirectory \(path)")
        guard let directory = relative(path) else { return }
        if syncFails(call, "fsync (directory)") { throw injectedFailure("fsync (directory)", path) }
        directoriesSynced { $0 == directory }
    }

    /// Starting writeback promises nothing: in the model, as on a disk, unsynced bytes may or
    /// may not survive a cut whether or not it was started.
    func startWriteback(_ fd: FileDescriptor, offset: Int, length: Int) {}

    func syncFileSystem(_ path: String) throws {
        let call = tick("syncfs")
        let live = model.withLock { state in state.inodes.indices.compactMap { i in state.inodes[i].path.map { (i, $0) } } }
        if syncFails(call, "syncfs") {
            // Every file with unwritten pages lost them, and will say so at its own next sync.
            model.withLock { state in
                for (inode, path) in live {
                    guard let bytes = try? readFile(path), bytes != state.inodes[inode].durable else { continue }
                    loseDirtyPages(&state, inode: inode, current: bytes)
                    state.inodes[inode].unreportedFailure = true
                }
            }
            throw injectedFailure("syncfs", path)
        }
        for (inode, path) in live {
            if let bytes = try? readFile(path) { makeDurable(inode: inode, bytes: bytes) }
        }
        directoriesSynced { _ in true }
    }

    func makeDirectory(_ path: String) throws {
        tick("mkdir \(path)")
        try real.makeDirectory(path)
        guard let name = relative(path) else { return }
        model.withLock { $0.changes.append((.makeDirectory(name), false)) }
    }

    func listDirectory(_ path: String) throws -> [String] { try real.listDirectory(path) }

    func remove(_ path: String) throws {
        tick("remove \(path)")
        let last = try? readFile(path)
        let lastPermissions = try real.status(path)?.permissions
        try real.remove(path)
        guard let name = relative(path) else { return }
        model.withLock { state in
            if let inode = currentInode(state, path: path) {
                state.inodes[inode].lastKnown = last
                state.inodes[inode].lastPermissions = lastPermissions ?? 0o644
                state.inodes[inode].path = nil
            }
            state.changes.append((.remove(name), false))
        }
    }

    func status(_ path: String) throws -> FileStatus? { try real.status(path) }
}
