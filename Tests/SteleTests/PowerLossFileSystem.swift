import Foundation
import Glibc
import Synchronization
@testable import Stele

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
/// the data did). ``onCall`` runs before every call that changes the disk, so a test can take an
/// image at each of them: a crash point.
///
/// Syncs are recorded, not performed: what survives is decided by the model, so the real disk
/// need not be asked (which also makes thousands of crash points cheap).
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

    private struct Inode {
        var durable: [UInt8] = []
        /// Content when its last name went away (for images in which the unlink is lost).
        var lastKnown: [UInt8]?
        var lastPermissions: UInt32 = 0o644
        var path: String?
    }

    private enum Change {
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

    private struct Model {
        var inodes: [Inode] = []
        var baseFiles: [String: Int] = [:]
        var baseDirectories: Set<String> = []
        var changes: [(change: Change, durable: Bool)] = []
        var byDescriptor: [Int32: Int] = [:]
        var byRegion: [ObjectIdentifier: Int] = [:]
        var calls = 0
        /// Syncs of files the model does not know: each would make the model wrong, so images fail.
        var gaps: [String] = []
    }

    let real = PosixFileSystem()
    /// The directory modelled (absolute, no trailing slash); paths outside it are passed through.
    let root: String
    private let model = Mutex(Model())
    /// Called before each call that changes the disk, with the number of such calls so far.
    var onCall: ((Int) -> Void)?

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

    static func parent(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "" }
        return String(path[..<slash])
    }

    /// Whether `path` is `directory` or under it.
    static func within(_ path: String, _ directory: String) -> Bool {
        path == directory || path.hasPrefix(directory + "/")
    }

    /// `path` once the directory `from` is called `to`: renamed if it is `from` or under it.
    static func moving(_ path: String, from: String, to: String) -> String {
        within(path, from) ? to + path.dropFirst(from.count) : path
    }

    private func relative(_ path: String) -> String? {
        if path == root { return "" }
        guard path.hasPrefix(root + "/") else { return nil }
        return String(path.dropFirst(root.count + 1))
    }

    private static let tracing = ProcessInfo.processInfo.environment["STELE_POWERLOSS_TRACE"] != nil

    private func tick(_ what: @autoclosure () -> String = "") {
        let n = model.withLock { state -> Int in
            state.calls += 1
            return state.calls
        }
        if Self.tracing { print("call \(n): \(what())") }
        onCall?(n)
    }

    private func currentInode(_ state: Model, path: String) -> Int? {
        state.inodes.lastIndex { $0.path == path }
    }

    /// The file now at `path`: its bytes as last made durable and as they are now.
    func contents(of path: String) throws -> (durable: [UInt8], current: [UInt8])? {
        guard let durable = model.withLock({ state in currentInode(state, path: path).map { state.inodes[$0].durable } }) else { return nil }
        return (durable, try readFile(path))
    }

    // MARK: The image

    /// One state a power cut now could leave (see the type's comment); `random` makes the choices.
    func crashImage(_ random: inout SplitMix64) throws -> CrashImage {
        let state = model.withLock { $0 }
        if let gap = state.gaps.first { throw SteleError.io(IOError(operation: "power-loss model: \(gap)", path: root, errno: 0)) }
        var files = state.baseFiles
        var directories = state.baseDirectories
        let pending = state.changes.indices.filter { !state.changes[$0].durable }
        let keptPending = Set(pending.prefix(random.next(below: pending.count + 1)))
        for (i, entry) in state.changes.enumerated() where entry.durable || keptPending.contains(i) {
            switch entry.change {
            case .create(let path, let inode): files[path] = inode
            case .makeDirectory(let path): directories.insert(path)
            case .rename(let from, let to):
                guard let inode = files.removeValue(forKey: from) else { continue }
                files[to] = inode
            case .renameDirectory(let from, let to):
                guard directories.contains(from) else { continue }
                // An empty directory at `to` is replaced (rename(2) refuses a full one).
                directories = Set(directories.filter { !Self.within($0, to) }.map { Self.moving($0, from: from, to: to) })
                var moved: [String: Int] = [:]
                for (path, inode) in files where !Self.within(path, to) { moved[Self.moving(path, from: from, to: to)] = inode }
                files = moved
            case .remove(let path):
                files.removeValue(forKey: path)
                directories.remove(path)
            }
        }
        // A directory whose removal is in the image takes along what the image still has in it.
        directories = directories.filter { directory in
            var above = Self.parent(directory)
            while !above.isEmpty {
                if !directories.contains(above) { return false }
                above = Self.parent(above)
            }
            return true
        }
        var image = CrashImage(directories: directories.filter { !$0.isEmpty }.sorted(), files: [:])
        for (path, inode) in files where directories.contains(Self.parent(path)) {
            let node = state.inodes[inode]
            var permissions = node.lastPermissions
            var current = node.lastKnown ?? node.durable
            if let live = node.path, let status = try real.status(live) {
                current = try readFile(live)
                permissions = status.permissions
            }
            image.files[path] = (Self.mix(durable: node.durable, current: current, &random), permissions)
        }
        return image
    }

    /// Byte-for-byte equality in one `memcmp`.
    private static func same(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        a.count == b.count && a.withUnsafeBytes { a in
            b.withUnsafeBytes { b in
                guard let x = a.baseAddress, let y = b.baseAddress else { return true }  // both empty
                return memcmp(x, y, a.count) == 0
            }
        }
    }

    /// Durable bytes, with every page that differs in `current` lost, kept or torn per sector.
    private static func mix(durable: [UInt8], current: [UInt8], _ random: inout SplitMix64) -> [UInt8] {
        let length = current.count == durable.count || random.next(below: 2) == 0 ? current.count : durable.count
        let zerosPastDurable = random.next(below: 4) == 0
        // Nothing written since the last sync: the durable bytes, which the loop below would copy
        // one by one without drawing again (slow in a debug build, and most files are synced).
        if Self.same(durable, current) { return durable }
        var out = [UInt8](repeating: 0, count: length)
        func old(_ i: Int) -> UInt8 { i < durable.count ? durable[i] : 0 }
        func new(_ i: Int) -> UInt8 { i < current.count && !(zerosPastDurable && i >= durable.count) ? current[i] : 0 }
        var page = 0
        while page < length {
            let end = min(page + 4096, length)
            let differs = (page ..< end).contains { old($0) != new($0) }
            let choice = differs ? random.next(below: 3) : 0
            var sector = page
            while sector < end {
                let sectorEnd = min(sector + 512, end)
                let takeNew = choice == 1 || (choice == 2 && random.next(below: 2) == 0)
                for i in sector ..< sectorEnd { out[i] = takeNew ? new(i) : old(i) }
                sector = sectorEnd
            }
            page = end
        }
        return out
    }

    // MARK: Durability events

    private func makeDurable(inode: Int, bytes: [UInt8]) {
        model.withLock { $0.inodes[inode].durable = bytes }
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

    private func syncDescriptor(_ fd: FileDescriptor) throws {
        guard let inode = model.withLock({ $0.byDescriptor[fd.raw] }) else {
            if relative(fd.path) != nil { model.withLock { $0.gaps.append("sync of unknown descriptor \(fd.path)") } }
            return
        }
        makeDurable(inode: inode, bytes: try contents(fd))
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
    }

    func allocate(_ fd: FileDescriptor, offset: Int, length: Int) throws {
        tick("allocate \(fd.path)"); try real.allocate(fd, offset: offset, length: length)
    }

    func truncate(_ fd: FileDescriptor, to length: Int) throws {
        tick("truncate \(fd.path) \(length)"); try real.truncate(fd, to: length)
    }

    func syncData(_ fd: FileDescriptor) throws {
        tick("syncData \(fd.path)"); try syncDescriptor(fd)
    }

    func syncAll(_ fd: FileDescriptor) throws {
        tick("syncAll \(fd.path)"); try syncDescriptor(fd)
    }

    func setPermissions(_ fd: FileDescriptor, _ mode: UInt32) throws {
        tick(); try real.setPermissions(fd, mode)
    }

    func map(_ fd: FileDescriptor, length: Int, writable: Bool) throws -> MappedRegion {
        let region = try real.map(fd, length: length, writable: writable)
        model.withLock { state in
            if let inode = state.byDescriptor[fd.raw] { state.byRegion[ObjectIdentifier(region)] = inode }
        }
        return region
    }

    func syncMapped(_ region: MappedRegion, _ range: Range<Int>) throws {
        tick("msync \(region.path) \(range)")
        let start = range.lowerBound & ~4095
        let end = min(region.count, (range.upperBound + 4095) & ~4095)
        guard start < end else { return }
        let page = [UInt8](UnsafeRawBufferPointer(start: region.base + start, count: end - start))
        model.withLock { state in
            guard let inode = state.byRegion[ObjectIdentifier(region)] else {
                if relative(region.path) != nil { state.gaps.append("msync of unknown mapping \(region.path)") }
                return
            }
            var durable = state.inodes[inode].durable
            if durable.count < end { durable.append(contentsOf: [UInt8](repeating: 0, count: end - durable.count)) }
            durable.replaceSubrange(start ..< end, with: page)
            state.inodes[inode].durable = durable
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
        tick()
        guard let directory = relative(path) else { return }
        directoriesSynced { $0 == directory }
    }

    /// Starting writeback promises nothing: in the model, as on a disk, unsynced bytes may or
    /// may not survive a cut whether or not it was started.
    func startWriteback(_ fd: FileDescriptor, offset: Int, length: Int) {}

    func syncFileSystem(_ path: String) throws {
        tick()
        let live = model.withLock { state in state.inodes.indices.compactMap { i in state.inodes[i].path.map { (i, $0) } } }
        for (inode, path) in live {
            if let bytes = try? readFile(path) { makeDurable(inode: inode, bytes: bytes) }
        }
        directoriesSynced { _ in true }
    }

    func makeDirectory(_ path: String) throws {
        tick()
        try real.makeDirectory(path)
        guard let name = relative(path) else { return }
        model.withLock { $0.changes.append((.makeDirectory(name), false)) }
    }

    func listDirectory(_ path: String) throws -> [String] { try real.listDirectory(path) }

    func remove(_ path: String) throws {
        tick()
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
