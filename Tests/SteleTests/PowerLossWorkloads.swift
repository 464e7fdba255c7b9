import Foundation
import Synchronization
@testable import Stele

/// The seeded workloads of ``PowerLossTests``: what runs on the model while crash images are taken.
extension PowerLossTests {
    /// How a workload runs; the seed chooses (``shape(seed:)``).
    enum Shape: CustomStringConvertible {
        /// One thread, 40 operations of every kind.
        case oneWriter
        /// As `oneWriter`, and one sync (of whatever kind comes: `msync`, `fdatasync`, `fsync`,
        /// a directory's, `syncfs`) fails with `EIO` at a call the seed chooses.
        case failedSync
        /// Threads appending at once, each recording its acknowledgements as its calls return;
        /// the first also seals, signs checkpoints and syncs between its appends.
        case concurrentWriters(Int)
        /// As `concurrentWriters`, with Swift tasks through the async API (`try await`).
        case concurrentTasks(Int)

        var description: String {
            switch self {
            case .oneWriter: "one writer"
            case .failedSync: "one writer, a sync fails"
            case .concurrentWriters(let n): "\(n) writers"
            case .concurrentTasks(let n): "\(n) async tasks"
            }
        }
    }

    static func shape(seed: UInt64) -> Shape {
        switch seed % 4 {
        case 0, 1: .oneWriter
        case 2: .failedSync
        default: seed / 4 % 2 == 0 ? .concurrentWriters(3) : .concurrentTasks(6)
        }
    }

    /// What the workloads exercised, printed so a run shows that seals, purges, failed syncs and
    /// concurrent writers really happened.
    struct Coverage {
        var records = 0, seals = 0, checkpoints = 0, purgedVersions = 0, segmentsRewritten = 0
        var storesCut = 0, syncsFailed = 0, refusedAfterFailure = 0, concurrentWorkloads = 0, concurrentAcknowledgements = 0
        var asyncWorkloads = 0
    }

    /// Shared by the crash hook (which runs inside the store's calls, on whichever thread makes
    /// them, the background sync's included) and the workload's threads: every access takes `lock`.
    final class Progress: @unchecked Sendable {
        let lock = NSLock()
        var store: Store?
        var attempted: Set<[UInt8]> = []
        var acknowledged: [(UInt64, [UInt8])] = []
        var points: [CrashPoint] = []
        var failure: Error?
        /// Broken promises seen by the workload itself (an acknowledgement not yet durable).
        var problems: [String] = []
        var acknowledgements = 0

        func attempt(_ encoded: [UInt8]) { lock.withLock { _ = attempted.insert(encoded) } }

        /// Records what a call that returned acknowledged, and checks that `.everyBatch` made it
        /// durable before returning.
        func acknowledge(_ receipt: Receipt, _ encoded: [[UInt8]], policy: CommitPolicy, label: String) {
            let durable = store?.durableRecordCount ?? 0
            lock.withLock {
                for (sequence, record) in zip(receipt.sequences, encoded) { acknowledged.append((sequence, record)) }
                acknowledgements += 1
                if case .everyBatch = policy, durable <= receipt.sequences.upperBound {
                    problems.append("\(label): records \(receipt.sequences) acknowledged, \(durable) durable")
                }
            }
        }
    }

    /// A value of 0-200 bytes or (one in four) 1.5-3.5 KB, a third of them compressible.
    static func randomValue(_ random: inout SplitMix64) -> [UInt8] {
        let length = random.next(below: 4) == 0 ? 1500 + random.next(below: 2000) : random.next(below: 200)
        if random.next(below: 3) == 0 { return [UInt8](repeating: UInt8(random.next(below: 256)), count: length) }
        return (0 ..< length).map { _ in UInt8(truncatingIfNeeded: random.next()) }
    }

    /// Runs one seeded workload under `policy` and returns its crash points, and any promise the
    /// store broke while it ran.
    static func workload(seed: UInt64, policy: CommitPolicy, shape: Shape, in dir: TemporaryDirectory,
                         coverage: inout Coverage) throws -> (points: [CrashPoint], problems: [String]) {
        var random = SplitMix64(seed: seed)
        var imageRandom = SplitMix64(seed: seed ^ 0x5EED)
        let path = dir.child("store-\(seed)")
        try Store.create(at: path, segmentSize: 64 * 1024)
        let fs = try PowerLossFileSystem(root: path)
        let signer = try NoteSigner.generate(name: "powerloss.test")
        let label = "seed \(seed) \(policy) \(shape)"
        let progress = Progress()
        // The hooks hold the file system and the points: break that cycle when the workload
        // ends, or every workload's crash images stay in memory until the run does.
        defer { fs.onCall = nil; fs.failSync = nil }
        fs.onCall = { call in
            progress.lock.lock()
            defer { progress.lock.unlock() }
            // The claim is read before the image: anything it counts was synced before this call.
            let claim = progress.store?.durableRecordCount ?? 0
            do {
                let image = try fs.crashImage(&imageRandom)
                let durable = progress.acknowledged.filter { $0.0 < claim }
                progress.points.append(CrashPoint(image: image,
                                                  expectation: Expectation(attempted: progress.attempted, durable: durable, durableClaim: claim),
                                                  label: "\(label) call \(call)"))
            } catch {
                progress.failure = error
            }
        }
        var options = Store.Options(commitPolicy: policy, checkpointSigner: signer)
        options.fileSystem = fs
        options.indexSnapshotInterval = 50
        let store = try Store(path: path, options: options)
        progress.lock.withLock { progress.store = store }
        if case .failedSync = shape {
            // Workloads make some 150-600 calls after the open: most of these runs see their
            // failure, some early (a new segment's syncs), some late (a seal's, a checkpoint's).
            let failAt = fs.calls + 1 + random.next(below: 300)
            let failed = Atomic(false)
            fs.failSync = { call, _ in call >= failAt && !failed.exchange(true, ordering: .relaxed) }
        }

        switch shape {
        case .oneWriter, .failedSync:
            try oneWriter(store, seed: seed, policy: policy, signer: signer, random: &random, progress: progress,
                          syncFailed: { fs.syncsFailed > 0 }, coverage: &coverage, label: label)
        case .concurrentWriters(let writers):
            concurrentWriters(writers, store, seed: seed, policy: policy, signer: signer, progress: progress, label: label)
            coverage.concurrentWorkloads += 1
        case .concurrentTasks(let tasks):
            concurrentTasks(tasks, store, seed: seed, policy: policy, signer: signer, progress: progress, label: label)
            coverage.concurrentWorkloads += 1
            coverage.asyncWorkloads += 1
        }
        coverage.records += Int(store.recordCount)
        coverage.storesCut += fs.storesSeen
        coverage.syncsFailed += fs.syncsFailed
        do {
            try store.close()
        } catch where fs.syncsFailed > 0 {
            // A store whose sync failed refuses to close cleanly (it never claims what it could not sync).
        }
        return try progress.lock.withLock {
            progress.store = nil
            switch shape {
            case .concurrentWriters, .concurrentTasks: coverage.concurrentAcknowledgements += progress.acknowledgements
            default: break
            }
            if let failure = progress.failure { throw failure }
            return (progress.points, progress.problems)
        }
    }

    /// One thread: 40 operations of every kind the store has. Once a sync has failed, an
    /// operation may be refused (that is the point: nothing is acknowledged that the disk did not
    /// take); before, every refusal is a failure of the test.
    private static func oneWriter(_ store: Store, seed: UInt64, policy: CommitPolicy, signer: NoteSigner, random: inout SplitMix64,
                                  progress: Progress, syncFailed: () -> Bool, coverage: inout Coverage, label: String) throws {
        var keys: [String] = []
        var counter = 0
        func newEntry() -> (Entry, [UInt8]) {
            counter += 1
            let reuse = !keys.isEmpty && random.next(below: 3) == 0
            let key = reuse ? keys[random.next(below: keys.count)] : "k\(seed)-\(counter)"
            if !reuse { keys.append(key) }
            let namespace = "tenant-\(random.next(below: 3))"
            let bytes = randomValue(&random)
            let entry = Entry(namespace: namespace, key: Array(key.utf8), value: bytes)
            return (entry, encode(namespace, entry.key, bytes))
        }
        func acknowledge(_ receipt: Receipt, _ encoded: [[UInt8]]) {
            progress.acknowledge(receipt, encoded, policy: policy, label: label)
        }

        for _ in 0 ..< 40 {
            do {
                switch random.next(below: 22) {
                case 0 ..< 7:
                    let (entry, encoded) = newEntry()
                    progress.attempt(encoded)
                    acknowledge(try store.append(entry), [encoded])
                case 7 ..< 11:
                    // One batch in six is large enough to be appended on two threads (SegmentLog+Batch).
                    let count = random.next(below: 6) == 0 ? SegmentLog.parallelBatchMinimum + random.next(below: 40)
                                                           : 2 + random.next(below: 25)
                    let batch = (0 ..< count).map { _ in newEntry() }
                    for (_, encoded) in batch { progress.attempt(encoded) }
                    acknowledge(try store.append(contentsOf: batch.map(\.0)), batch.map(\.1))
                case 11 ..< 13 where !keys.isEmpty:
                    let key = Array(keys[random.next(below: keys.count)].utf8)
                    let namespace = "tenant-\(random.next(below: 3))"
                    let encoded = encode(namespace, key, nil)
                    progress.attempt(encoded)
                    acknowledge(try store.delete(namespace: namespace, key: key), [encoded])
                case 13:
                    let (entry, encoded) = newEntry()
                    progress.attempt(encoded)
                    let lock = RetentionLock(mode: .governance, retainUntil: Int64(Date().timeIntervalSince1970 * 1e9) + 3_600_000_000_000)
                    acknowledge(try store.put(namespace: String(decoding: entry.namespace, as: UTF8.self), key: entry.key,
                                              value: entry.value, lock: lock), [encoded])
                case 14:
                    try store.seal()
                    coverage.seals += 1
                case 15:
                    _ = try store.checkpoint(signer: signer)
                    coverage.checkpoints += 1
                case 16:
                    _ = try store.sync()
                case 17:
                    let report = try store.purge()
                    coverage.purgedVersions += report.purged.count
                    coverage.segmentsRewritten += report.segmentsRewritten
                case 18 where !keys.isEmpty, 19 where !keys.isEmpty:
                    let key = Array(keys[random.next(below: keys.count)].utf8)
                    do {
                        try store.setLegalHold(namespace: "tenant-\(random.next(below: 3))", key: key, on: random.next(below: 2) == 0,
                                               reason: "power-cut test")
                    } catch SteleError.retention {
                        // No version of that key in that namespace: refused, and rightly.
                    }
                default:
                    let (entry, encoded) = newEntry()
                    progress.attempt(encoded)
                    acknowledge(try store.append(entry), [encoded])
                }
            } catch where syncFailed() {
                coverage.refusedAfterFailure += 1
            }
        }
    }

    /// `writers` threads at once, 14 operations each (single puts, batches of 2-12, deletes of
    /// their own keys); writer 0 also seals, signs checkpoints and syncs. Each thread records
    /// what a call acknowledged as soon as the call returns, so a crash image taken after that
    /// (by any thread) must hold it.
    private static func concurrentWriters(_ writers: Int, _ store: Store, seed: UInt64, policy: CommitPolicy, signer: NoteSigner,
                                          progress: Progress, label: String) {
        let group = DispatchGroup()
        for writer in 0 ..< writers {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                var input = WriterInput(seed: seed &* 0x9E37 &+ UInt64(writer), namespace: "tenant-\(writer)", keyPrefix: "w\(writer)-")
                for step in 0 ..< 14 {
                    do {
                        switch input.random.next(below: 10) {
                        case 0 ..< 5:
                            let (entry, encoded) = input.entry(step * 100)
                            progress.attempt(encoded)
                            progress.acknowledge(try store.append(entry), [encoded], policy: policy, label: label)
                        case 5 ..< 8:
                            let batch = (0 ..< 2 + input.random.next(below: 11)).map { input.entry(step * 100 + $0) }
                            for (_, encoded) in batch { progress.attempt(encoded) }
                            progress.acknowledge(try store.append(contentsOf: batch.map(\.0)), batch.map(\.1), policy: policy, label: label)
                        case 8 where writer == 0:
                            try store.seal()
                        case 9 where writer == 0:
                            if input.random.next(below: 2) == 0 { _ = try store.checkpoint(signer: signer) } else { _ = try store.sync() }
                        default:
                            guard let key = input.someKey() else { continue }
                            let encoded = encode(input.namespace, key, nil)
                            progress.attempt(encoded)
                            progress.acknowledge(try store.delete(namespace: input.namespace, key: key), [encoded], policy: policy, label: label)
                        }
                    } catch {
                        progress.lock.withLock { progress.problems.append("\(label): writer \(writer) step \(step): \(error)") }
                    }
                }
            }
        }
        group.wait()
    }

    /// `tasks` Swift tasks at once through the async API, 14 operations each, as
    /// ``concurrentWriters(_:_:seed:policy:signer:progress:label:)`` does with threads; task 0
    /// also seals, signs checkpoints and syncs (`try await store.sync()`). Each task records what
    /// a call acknowledged as soon as its `await` returns.
    private static func concurrentTasks(_ tasks: Int, _ store: Store, seed: UInt64, policy: CommitPolicy, signer: NoteSigner,
                                        progress: Progress, label: String) {
        let finished = DispatchSemaphore(value: 0)
        Task {
            await withTaskGroup(of: Void.self) { group in
                for writer in 0 ..< tasks {
                    group.addTask {
                        var input = WriterInput(seed: seed &* 0x7A5C &+ UInt64(writer), namespace: "task-\(writer)", keyPrefix: "t\(writer)-")
                        for step in 0 ..< 14 {
                            do {
                                switch input.random.next(below: 10) {
                                case 0 ..< 5:
                                    let (entry, encoded) = input.entry(step * 100)
                                    progress.attempt(encoded)
                                    progress.acknowledge(try await store.append(entry), [encoded], policy: policy, label: label)
                                case 5 ..< 8:
                                    let batch = (0 ..< 2 + input.random.next(below: 11)).map { input.entry(step * 100 + $0) }
                                    for (_, encoded) in batch { progress.attempt(encoded) }
                                    progress.acknowledge(try await store.putBatch(batch.map(\.0)), batch.map(\.1), policy: policy, label: label)
                                case 8 where writer == 0:
                                    try store.seal()
                                case 9 where writer == 0:
                                    if input.random.next(below: 2) == 0 { _ = try store.checkpoint(signer: signer) } else { _ = try await store.sync() }
                                default:
                                    guard let key = input.someKey() else { continue }
                                    let encoded = encode(input.namespace, key, nil)
                                    progress.attempt(encoded)
                                    progress.acknowledge(try await store.delete(namespace: input.namespace, key: key), [encoded], policy: policy, label: label)
                                }
                            } catch {
                                progress.lock.withLock { progress.problems.append("\(label): task \(writer) step \(step): \(error)") }
                            }
                        }
                    }
                }
            }
            finished.signal()
        }
        finished.wait()
    }

    /// One concurrent writer's input: its seeded draws, its namespace and the keys it wrote.
    struct WriterInput {
        var random: SplitMix64
        let namespace: String
        let keyPrefix: String
        var keys: [[UInt8]] = []

        init(seed: UInt64, namespace: String, keyPrefix: String) {
            random = SplitMix64(seed: seed)
            self.namespace = namespace
            self.keyPrefix = keyPrefix
        }

        /// Entry `n` (key `<prefix><n>`, a random value) and its encoding, remembered for deletes.
        mutating func entry(_ n: Int) -> (Entry, [UInt8]) {
            let key = Array("\(keyPrefix)\(n)".utf8)
            keys.append(key)
            let value = PowerLossTests.randomValue(&random)
            return (Entry(namespace: namespace, key: key, value: value), PowerLossTests.encode(namespace, key, value))
        }

        /// One of the keys written so far, drawn at random (nil before the first).
        mutating func someKey() -> [UInt8]? { keys.randomElement(using: &random) }
    }
}
