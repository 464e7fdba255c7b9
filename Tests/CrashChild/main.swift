// A writer for the crash and sync-trace tests: opens the store given as the first argument and
// appends batches until it is killed (or, with --records, until that many records are in the
// store; then it closes the store and exits 0). After each append returns, it prints the last
// acknowledged sequence number on its own line, in one write(2), so the parent knows exactly
// what had been promised at that moment (and a system-call trace shows the promise in order).
//
//   stele-crash-child STORE [BATCH] [--policy every-batch|none] [--writers K | --tasks K] [--records N]
//
// With --writers K, K threads append concurrently (group commit), each printing its own
// acknowledgements; with --tasks K, K Swift tasks do the same through the async API
// (`try await store.append(contentsOf:)`). Record n has namespace "crash", key "k<n>" and value "value-<n>;" repeated
// to 40 + (n % 7) * 300 bytes (the crash test regenerates it to check every byte); with several
// writers, n is the record's sequence number only in the store, so the key names the writer and
// its own counter instead ("w<writer>-<i>").
import Foundation
import Stele
import Synchronization

var arguments = Array(CommandLine.arguments.dropFirst())
/// The value of `--name VALUE`, removed from `arguments`.
@MainActor func option(_ name: String) -> String? {
    guard let i = arguments.firstIndex(of: name), i + 1 < arguments.count else { return nil }
    defer { arguments.removeSubrange(i ... i + 1) }
    return arguments[i + 1]
}
let policyName = option("--policy") ?? "every-batch"
let tasks = Int(option("--tasks") ?? "0") ?? 0
let writers = max(1, Int(option("--writers") ?? "1") ?? 1)
let limit = option("--records").flatMap { UInt64($0) }
guard let path = arguments.first, let policy: CommitPolicy = policyName == "every-batch" ? .everyBatch : policyName == "none" ? CommitPolicy.none : nil else {
    FileHandle.standardError.write(Data("usage: stele-crash-child STORE [BATCH] [--policy every-batch|none] [--writers K] [--records N]\n".utf8))
    exit(2)
}
let batch = arguments.count >= 2 ? max(1, Int(arguments[1]) ?? 1) : 1

enum Child {
    static func value(_ n: UInt64) -> [UInt8] { Array(String(repeating: "value-\(n);", count: 300).utf8.prefix(40 + Int(n % 7) * 300)) }

    /// One line per acknowledgement, in a single write(2) so that lines from several writers never mix.
    /// `count` tasks appending through the async API until killed (or `limit` records are in).
    static func runTasks(_ count: Int, store: Store, batch: Int, limit: UInt64?) throws {
        final class Failure: Sendable { let message = Mutex<String?>(nil) }
        let failure = Failure()
        let finished = DispatchSemaphore(value: 0)
        Task {
            await withTaskGroup(of: Void.self) { group in
                for writer in 0 ..< count {
                    group.addTask {
                        var i: UInt64 = 0
                        do {
                            while limit.map({ store.recordCount < $0 }) ?? true {
                                let entries = (0 ..< UInt64(batch)).map { j in
                                    Entry(namespace: "crash", key: Array("t\(writer)-\(i + j)".utf8), value: value(i + j))
                                }
                                i += UInt64(batch)
                                acknowledge(try await store.append(contentsOf: entries).sequences.upperBound)
                            }
                        } catch {
                            failure.message.withLock { $0 = "\(error)" }
                        }
                    }
                }
            }
            finished.signal()
        }
        finished.wait()
        if let message = failure.message.withLock({ $0 }) { throw ChildError.writer(message) }
    }

    static func acknowledge(_ sequence: UInt64) {
        let line = Array("\(sequence)\n".utf8)
        line.withUnsafeBytes { _ = write(STDOUT_FILENO, $0.baseAddress, $0.count) }
    }
}

do {
    let store = try Store(path: path, options: .init(commitPolicy: policy))
    if tasks > 0 {
        try Child.runTasks(tasks, store: store, batch: batch, limit: limit)
    } else if writers == 1 {
        var next = store.recordCount
        while limit.map({ next < $0 }) ?? true {
            let entries = (next ..< next + UInt64(batch)).map { n in Entry(namespace: "crash", key: Array("k\(n)".utf8), value: Child.value(n)) }
            let receipt = try store.append(contentsOf: entries)
            next = receipt.sequences.upperBound + 1
            Child.acknowledge(receipt.sequences.upperBound)
        }
    } else {
        let failure = Mutex<String?>(nil)
        let done = DispatchGroup()
        let (batch, limit) = (batch, limit)
        for writer in 0 ..< writers {
            done.enter()
            Thread.detachNewThread {
                defer { done.leave() }
                var i: UInt64 = 0
                do {
                    while limit.map({ store.recordCount < $0 }) ?? true {
                        let entries = (0 ..< UInt64(batch)).map { j in
                            Entry(namespace: "crash", key: Array("w\(writer)-\(i + j)".utf8), value: Child.value(i + j))
                        }
                        i += UInt64(batch)
                        Child.acknowledge(try store.append(contentsOf: entries).sequences.upperBound)
                    }
                } catch {
                    failure.withLock { $0 = "\(error)" }
                }
            }
        }
        done.wait()
        if let message = failure.withLock({ $0 }) { throw ChildError.writer(message) }
    }
    try store.close()
} catch {
    FileHandle.standardError.write(Data("stele-crash-child: \(error)\n".utf8))
    exit(1)
}

enum ChildError: Error { case writer(String) }
