import Foundation
import Testing
@testable import Stele
import SteleNative

/// Every file-system call the store makes, failed in turn (`EIO`, or `ENOSPC` for calls that
/// allocate): one workload (create, open, appends under `everyBatch`, a seal, a signed checkpoint,
/// close) is run once to count its calls, then again with the k-th call of one kind failing, for
/// every kind and a spread of k. Each run must keep the promises of docs/durability.md:
/// - every error is a ``SteleError`` (no trap, no other error type);
/// - no append is acknowledged after a sync of a segment file failed on the same `Store` (a
///   failed sync disables writes until the store is reopened);
/// - reopened on the real file system with no fault, the store opens without help, holds every
///   acknowledged record byte for byte, and fsck finds nothing wrong; a create that failed left
///   no store (`notAStore`) or a complete one.
@Suite struct FaultSweepTests {
    struct Outcome {
        var acknowledged: [(sequence: UInt64, entry: Entry)] = []
        var errors: [String] = []
        var untyped: [String] = []
        var createFailed = false
        /// Appends acknowledged after a sync of a segment file had failed on the same store.
        var acknowledgedAfterFailedSync: [UInt64] = []
    }

    static let syncs: Set<String> = ["syncData", "syncAll", "syncMapped"]

    /// The calls that allocate space fail with ENOSPC, the rest with EIO.
    static func errno(for operation: String) -> Int32 {
        ["write", "allocate", "makeDirectory", "rename"].contains(operation) ? ENOSPC : EIO
    }

    static func workload(_ fs: FaultyFileSystem, path: String, signer: NoteSigner) -> Outcome {
        var outcome = Outcome()
        func note(_ error: any Error, _ step: String) {
            outcome.errors.append("\(step): \(error)")
            if !(error is SteleError) { outcome.untyped.append("\(step): \(type(of: error)) \(error)") }
        }
        do {
            try Store.create(at: path, segmentSize: 64 * 1024, origin: nil, fileSystem: fs, clock: SystemClock())
        } catch {
            note(error, "create")
            outcome.createFailed = true
            return outcome
        }
        var options = Store.Options(commitPolicy: .everyBatch, checkpointSigner: signer)
        options.fileSystem = fs
        let store: Store
        do {
            store = try Store(path: path, options: options)
        } catch {
            note(error, "open")
            return outcome
        }
        // A sync of a segment file that holds records. (A new segment that fails its own sync or
        // its directory's is removed, and the next append makes it again before any record goes in.)
        func segmentSyncFailed() -> Bool {
            fs.faults.contains { Self.syncs.contains($0.operation) && $0.path.hasSuffix(".seg") }
        }
        for batch in 0 ..< 12 {
            let entries = (0 ..< 30).map { testEntry(batch * 30 + $0, valueLength: 150) }
            let failedBefore = segmentSyncFailed()
            do {
                let receipt = try store.append(contentsOf: entries)
                if failedBefore { outcome.acknowledgedAfterFailedSync.append(receipt.sequences.lowerBound) }
                for (sequence, entry) in zip(receipt.sequences, entries) { outcome.acknowledged.append((sequence, entry)) }
            } catch {
                note(error, "append \(batch)")
            }
            do {
                if batch == 4 { try store.seal() }
                if batch == 7 { _ = try store.checkpoint(signer: signer) }
            } catch {
                note(error, batch == 4 ? "seal" : "checkpoint")
            }
        }
        do { try store.close() } catch { note(error, "close") }
        return outcome
    }

    /// Reopens what a run left with no fault and checks it. Returns problems found.
    static func check(_ outcome: Outcome, path: String) -> [String] {
        var problems = outcome.untyped.map { "an error that is not a SteleError: \($0)" }
        if !outcome.acknowledgedAfterFailedSync.isEmpty {
            problems.append("appends acknowledged after a failed segment sync, at \(outcome.acknowledgedAfterFailedSync)")
        }
        let store: Store
        do {
            store = try Store(path: path)
        } catch SteleError.notAStore where outcome.createFailed {
            return problems
        } catch {
            return problems + ["reopening with no fault failed: \(error)"]
        }
        defer { try? store.close() }
        for (sequence, entry) in outcome.acknowledged {
            guard let record = try? store.record(at: sequence) else {
                problems.append("acknowledged record \(sequence) is missing")
                continue
            }
            if record.key != entry.key || record.value != entry.value { problems.append("acknowledged record \(sequence) differs") }
        }
        if outcome.createFailed && store.recordCount != 1 { problems.append("a failed create left \(store.recordCount) records") }
        try? store.close()
        do {
            let report = try Fsck.check(path: path)
            problems += report.problems.map { "fsck: \($0)" }
        } catch {
            problems.append("fsck failed: \(error)")
        }
        return problems
    }

    @Test func everyCallThatFailsOnceKeepsTheDurabilityPromises() throws {
        try Self.sweep(times: 1, firstCalls: 12, spread: 12)
    }

    /// A fault that stays (a full disk, a dead device) from the k-th call on.
    @Test func everyCallThatKeepsFailingKeepsTheDurabilityPromises() throws {
        try Self.sweep(times: nil, firstCalls: 6, spread: 6)
    }

    /// Runs the workload once to count its calls, then once per kind of call and k with the
    /// k-th call failing (`times` times; nil: from then on): every one of the first calls, then
    /// a spread over the rest.
    static func sweep(times: Int?, firstCalls: Int, spread: Int) throws {
        let signer = try NoteSigner.generate(name: "faults.test/log")
        let dir = TemporaryDirectory(inMemory: true)
        defer { dir.remove() }

        let counting = FaultyFileSystem()
        let reference = Self.workload(counting, path: dir.child("reference"), signer: signer)
        #expect(reference.errors.isEmpty && reference.acknowledged.count == 360, "\(reference.errors)")
        #expect(Self.check(reference, path: dir.child("reference")).isEmpty)

        var runs = 0
        var faultsFired = 0
        var failures: [String] = []
        for operation in FaultyFileSystem.operations {
            let total = counting.calls(operation)
            var indices = Set(0 ..< min(total, firstCalls))
            if total > firstCalls { for step in 0 ..< spread { indices.insert(firstCalls + (total - firstCalls) * step / spread) } }
            for k in indices.sorted() {
                let fs = FaultyFileSystem()
                fs.fail(operation, errno: Self.errno(for: operation), times: times, after: k)
                let path = dir.child("\(operation)-\(k)")
                let outcome = Self.workload(fs, path: path, signer: signer)
                runs += 1
                faultsFired += fs.fired()
                if k < min(total, firstCalls) && fs.fired() == 0 {
                    failures.append("\(operation) #\(k): the fault did not fire (\(fs.calls(operation)) calls)")
                }
                for problem in Self.check(outcome, path: path) {
                    failures.append("\(operation) #\(k) (first fault: \(fs.faults.first.map { "\($0.operation) \($0.path)" } ?? "none")): \(problem)")
                }
                removeTree(path)
            }
        }
        // Every kind of call the store makes was failed at least once.
        let made = FaultyFileSystem.operations.filter { counting.calls($0) > 0 }
        print("fault sweep (\(times.map { "\($0)x" } ?? "persistent")): \(runs) runs, \(faultsFired) faults fired over \(made.count) kinds of call: "
            + made.map { "\($0) \(counting.calls($0))" }.joined(separator: ", "))
        #expect(made.count >= 15, "calls made: \(made)")
        #expect(failures.isEmpty, "\(failures.count) failures:\n\(failures.prefix(40).joined(separator: "\n"))")
    }
}
