import Foundation
import Glibc
import Synchronization
@testable import Stele
import SteleNative

/// A fresh directory under the system temporary directory, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    /// `inMemory`: on tmpfs (`/dev/shm`) where there is one, for tests whose disk is modelled
    /// and whose syncs would only cost time.
    init(inMemory: Bool = false) {
        let base = inMemory && FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        var template = Array((base + "/stele-test-XXXXXX").utf8CString)
        let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(created != nil, "mkdtemp failed")
        path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// A path inside the directory (not created).
    func child(_ name: String) -> String { path + "/" + name }

    /// A directory inside the directory, created if missing.
    func directory(_ name: String) -> String {
        try? FileManager.default.createDirectory(atPath: child(name), withIntermediateDirectories: true)
        return child(name)
    }

    func remove() {
        // Sealed segments are read-only; make everything writable first.
        _ = try? FileManager.default.subpathsOfDirectory(atPath: path).forEach {
            chmod(path + "/" + $0, 0o755)
        }
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// The sequence number of the first record written to a new store: record 0 is its genesis
/// (the config record of its identity and governance key).
let firstRecord: UInt64 = 1

/// Creates a store with small segments in a temporary directory and hands it to `body`.
func withStore<R>(segmentSize: Int = 64 * 1024, options: Store.Options = .init(),
                  _ body: (TemporaryDirectory, String) throws -> R) throws -> R {
    let dir = TemporaryDirectory()
    defer { dir.remove() }
    let path = dir.child("store")
    try Store.create(at: path, segmentSize: segmentSize)
    return try body(dir, path)
}

/// Opens the store at `path` under `.everyBatch` on a fault-injecting file system, with
/// `configure` applied to the options first (a logger, a metrics backend): the store under
/// test and the file system that fails its calls on demand.
func openOnFaultyFileSystem(_ path: String, _ configure: (inout Store.Options) -> Void = { _ in }) throws -> (Store, FaultyFileSystem) {
    let fs = FaultyFileSystem()
    var options = Store.Options(commitPolicy: .everyBatch)
    options.fileSystem = fs
    configure(&options)
    return (try Store(path: path, options: options), fs)
}

/// Deterministic test entries: key "k<n>", a value of varying length and content.
func testEntry(_ n: Int, valueLength: Int? = nil) -> Entry {
    let length = valueLength ?? (n * 37 % 300)
    var state = UInt64(n) &* 0x9E37_79B9_7F4A_7C15 | 1
    let value = (0 ..< length).map { _ -> UInt8 in
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return UInt8(truncatingIfNeeded: state)
    }
    return Entry(namespace: "tenant-\(n % 3)/events", key: Array("k\(n)".utf8), value: value)
}

func readFile(_ path: String) throws -> [UInt8] {
    Array(try Data(contentsOf: URL(fileURLWithPath: path)))
}

/// Writes bytes to an existing file in place (keeping its size beyond them), as damage would.
func patchFile(_ path: String, at offset: Int, _ bytes: [UInt8]) throws {
    chmod(path, 0o644)
    let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
    try handle.seek(toOffset: UInt64(offset))
    try handle.write(contentsOf: Data(bytes))
    try handle.close()
}

func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    chmod(path, 0o644)
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

func segmentPath(_ store: String, _ index: UInt64) -> String {
    store + "/segments/" + SegmentFiles.name(index)
}

/// A file system that fails chosen calls, for ENOSPC, EIO and permission tests. Every call that
/// can fail can be made to (``operations``); every call is counted, and so is every fault that
/// fired, so that a test knows its fault was reached.
final class FaultyFileSystem: FileSystem {
    /// The names of the calls a rule can fail (`open-rw`: an open for writing).
    static let operations = ["open", "open-rw", "read", "write", "allocate", "truncate", "syncData", "syncAll", "setPermissions",
                             "map", "syncMapped", "lockExclusive", "rename", "syncDirectory", "syncFileSystem", "makeDirectory",
                             "listDirectory", "remove", "status"]

    struct Rule {
        var operation: String
        var pathContains: String?
        var errno: Int32
        /// How many more times it fires; nil for always.
        var remaining: Int?
        /// Matching calls to let through before it fires.
        var skip: Int
    }

    let real = PosixFileSystem()
    private let rules = Mutex<[Rule]>([])
    private let counts = Mutex<(calls: [String: Int], fired: [String: Int], faults: [(operation: String, path: String)])>(([:], [:], []))

    /// Fails `operation` (on paths containing `path`) with `errno`, `times` times (nil: always),
    /// after letting `after` matching calls through.
    func fail(_ operation: String, path: String? = nil, errno: Int32, times: Int? = nil, after: Int = 0) {
        rules.withLock { $0.append(Rule(operation: operation, pathContains: path, errno: errno, remaining: times, skip: after)) }
    }

    func clear() { rules.withLock { $0.removeAll() } }

    /// Calls of `operation` made so far (failed ones included).
    func calls(_ operation: String) -> Int { counts.withLock { $0.calls[operation] ?? 0 } }
    /// Faults fired so far, of `operation` or of all.
    func fired(_ operation: String? = nil) -> Int {
        counts.withLock { counts in operation.map { counts.fired[$0] ?? 0 } ?? counts.fired.values.reduce(0, +) }
    }

    /// Called with the path and bytes of each write before it is made (a test watching what the
    /// store writes, and when).
    let onWrite = Mutex<(@Sendable (String, [UInt8]) -> Void)?>(nil)

    /// Called on the failing call's thread, with its operation and path, just before a fault is
    /// returned (a test making something happen while a call is failing).
    let beforeFault = Mutex<(@Sendable (String, String) -> Void)?>(nil)

    /// Every fault that fired, in order: the call and its path.
    var faults: [(operation: String, path: String)] { counts.withLock { $0.faults } }

    private func check(_ operation: String, _ path: String, reportedAs: String? = nil) throws {
        let errno = rules.withLock { rules -> Int32? in
            guard let i = rules.firstIndex(where: { rule in
                rule.operation == operation && (rule.pathContains.map { path.contains($0) } ?? true) && rule.remaining != 0
            }) else { return nil }
            if rules[i].skip > 0 {
                rules[i].skip -= 1
                return nil
            }
            if let remaining = rules[i].remaining { rules[i].remaining = remaining - 1 }
            return rules[i].errno
        }
        counts.withLock {
            $0.calls[operation, default: 0] += 1
            if errno != nil {
                $0.fired[operation, default: 0] += 1
                $0.faults.append((operation, path))
            }
        }
        if let errno {
            if let hook = beforeFault.withLock({ $0 }) { hook(operation, path) }
            throw SteleError.io(IOError(operation: reportedAs ?? operation, path: path, errno: errno))
        }
    }

    func open(_ path: String, _ mode: OpenMode) throws -> FileDescriptor {
        if case .readWrite = mode { try check("open-rw", path, reportedAs: "open") }
        try check("open", path)
        return try real.open(path, mode)
    }
    func close(_ fd: FileDescriptor) { real.close(fd) }
    func size(_ fd: FileDescriptor) throws -> Int { try real.size(fd) }
    func read(_ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws -> Int {
        try check("read", fd.path); return try real.read(fd, into: buffer, at: offset)
    }
    func write(_ fd: FileDescriptor, _ bytes: UnsafeRawBufferPointer, at offset: Int) throws {
        try check("write", fd.path)
        if let watch = onWrite.withLock({ $0 }) { watch(fd.path, Array(bytes)) }
        try real.write(fd, bytes, at: offset)
    }
    func allocate(_ fd: FileDescriptor, offset: Int, length: Int) throws {
        try check("allocate", fd.path); try real.allocate(fd, offset: offset, length: length)
    }
    func truncate(_ fd: FileDescriptor, to length: Int) throws {
        try check("truncate", fd.path); try real.truncate(fd, to: length)
    }
    func syncData(_ fd: FileDescriptor) throws { try check("syncData", fd.path); try real.syncData(fd) }
    func syncAll(_ fd: FileDescriptor) throws { try check("syncAll", fd.path); try real.syncAll(fd) }
    func setPermissions(_ fd: FileDescriptor, _ mode: UInt32) throws {
        try check("setPermissions", fd.path); try real.setPermissions(fd, mode)
    }
    func map(_ fd: FileDescriptor, length: Int, writable: Bool) throws -> MappedRegion {
        try check("map", fd.path); return try real.map(fd, length: length, writable: writable)
    }
    /// Called on the syncing thread before each `msync` (a test holding a sync in flight).
    let beforeSyncMapped = Mutex<(@Sendable () -> Void)?>(nil)
    func syncMapped(_ region: MappedRegion, _ range: Range<Int>) throws {
        // The hook first: a test may hold a sync, then make it fail.
        if let hook = beforeSyncMapped.withLock({ $0 }) { hook() }
        try check("syncMapped", region.path)
        try real.syncMapped(region, range)
    }
    func lockExclusive(_ fd: FileDescriptor) throws -> Bool { try check("lockExclusive", fd.path); return try real.lockExclusive(fd) }
    func rename(_ from: String, to: String) throws { try check("rename", from); try real.rename(from, to: to) }
    func syncDirectory(_ path: String) throws { try check("syncDirectory", path); try real.syncDirectory(path) }
    func syncFileSystem(_ path: String) throws { try check("syncFileSystem", path); try real.syncFileSystem(path) }
    /// Every writeback start, in order: the file, offset and length.
    let writebacks = Mutex<[(path: String, offset: Int, length: Int)]>([])
    func startWriteback(_ fd: FileDescriptor, offset: Int, length: Int) {
        writebacks.withLock { $0.append((fd.path, offset, length)) }
        real.startWriteback(fd, offset: offset, length: length)
    }
    func makeDirectory(_ path: String) throws { try check("makeDirectory", path); try real.makeDirectory(path) }
    func listDirectory(_ path: String) throws -> [String] { try check("listDirectory", path); return try real.listDirectory(path) }
    func remove(_ path: String) throws { try check("remove", path); try real.remove(path) }
    func status(_ path: String) throws -> FileStatus? { try check("status", path); return try real.status(path) }
}

/// Rewrites the durable end in a segment header (and its checksum): the on-disk state of a
/// crash that happened before the sync covering `offset` completed.
func setDurableEnd(_ segment: String, _ offset: Int) throws {
    var header = Array(try readFile(segment)[0 ..< SegmentHeader.size])
    withUnsafeBytes(of: UInt64(offset).littleEndian) { header.replaceSubrange(88 ..< 96, with: $0) }
    let sum = xxh3(Array(header[0 ..< 120]))
    withUnsafeBytes(of: sum.littleEndian) { header.replaceSubrange(120 ..< 128, with: $0) }
    try patchFile(segment, at: 0, header)
}

/// Leaves the store's `reach` as a writer that had the store open and then crashed would have:
/// naming the segment it last opened or created, and the records durable then. Tests that build
/// a crash state from a cleanly closed store call it, since a clean close records the exact count.
func markCrashed(_ path: String, segment: UInt64 = 1, first: UInt64 = 0, records: UInt64 = firstRecord) throws {
    let config = try Store.readConfig(fs: PosixFileSystem(), layout: StoreLayout(root: path))
    try LogReach(storeID: config.storeID, open: true, segment: segment, first: first, records: records)
        .write(fs: PosixFileSystem(), directory: path)
    // The tiles' state is written only once the records it covers are durable, and at a clean
    // close: a crash state built from a closed store must not keep the close's state, which
    // covers records the crash is meant to have lost (it would rightly be read as loss).
    try? FileManager.default.removeItem(atPath: path + "/tiles/state")
}

/// The offset of the second frame of a segment: the first frame of a new store's first segment
/// is its genesis record.
func secondFrameOffset(_ segment: [UInt8]) -> Int {
    SegmentHeader.size + (Int(segment[SegmentHeader.size]) | Int(segment[SegmentHeader.size + 1]) << 8
        | Int(segment[SegmentHeader.size + 2]) << 16 | Int(segment[SegmentHeader.size + 3]) << 24)
}

/// Creates `path` as a copy of a new store made once beside it (`template-<segment size>`), so
/// that stores compared with each other share their genesis record (and so their trees).
func copyOfNewStore(at path: String, segmentSize: Int) throws {
    let template = (path as NSString).deletingLastPathComponent + "/template-\(segmentSize)"
    if !FileManager.default.fileExists(atPath: template) { try Store.create(at: template, segmentSize: segmentSize) }
    try FileManager.default.copyItem(atPath: template, toPath: path)
}
