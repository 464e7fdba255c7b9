import Foundation
import Logging
import ServiceLifecycle
import Testing
@testable import Stele
import SteleMirror
import SteleService

/// SteleService: the store's seal timer and shutdown, and the mirror's passes, run by a real
/// `ServiceGroup` and shut down gracefully.
@Suite struct ServiceTests {
    /// Tasks write through the async API while the group runs; a graceful shutdown closes the
    /// store (later writes are refused), and every acknowledged record is there after a reopen
    /// that had nothing to recover (the close was clean).
    @Test func gracefulShutdownClosesTheStoreAfterEveryAcknowledgedWrite() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.child("store")
        try Store.create(at: path, segmentSize: 1 << 20)
        let store = try Store(path: path)
        let group = ServiceGroup(configuration: .init(services: [StoreService(store: store, sealInterval: .milliseconds(20))],
                                                      logger: Logger(label: "test")))
        let running = Task { try await group.run() }
        let acknowledged = try await withThrowingTaskGroup(of: UInt64.self) { writers in
            for writer in 0 ..< 32 {
                writers.addTask {
                    var last: UInt64 = 0
                    for i in 0 ..< 25 {
                        last = try await store.put(namespace: "svc", key: Array("w\(writer)-\(i)".utf8), value: Array("v\(i)".utf8))
                            .sequences.upperBound
                    }
                    return last
                }
            }
            return try await writers.reduce(0) { max($0, $1) }
        }
        // The seal timer runs while the service does: wait (bounded) for a seal it made.
        let deadline = ContinuousClock.now + .seconds(30)
        while try store.stats().sealedSegments == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(try store.stats().sealedSegments > 0, "the service sealed on its timer")
        await group.triggerGracefulShutdown()
        try await running.value
        await #expect(throws: SteleError.closed) { try await store.put(namespace: "svc", key: [1], value: [1]) }

        let reopened = try Store(path: path)
        defer { try? reopened.close() }
        #expect(reopened.recordCount == firstRecord + 32 * 25 && reopened.recordCount > acknowledged)
        #expect(reopened.recovery.isClean && reopened.recovery.rewroteAfterUncleanShutdown == nil,
                "the service closed the store cleanly: \(reopened.recovery)")
        #expect(try reopened.get(namespace: "svc", key: Array("w31-24".utf8))?.value == Array("v24".utf8))
    }

    /// The mirror service copies what the store seals while both run in one group, and stops at
    /// the graceful shutdown.
    @Test func theMirrorServiceFollowsTheStore() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.child("store"), copy = dir.child("copy")
        try Store.create(at: path, segmentSize: 1 << 20)
        let store = try Store(path: path)
        let mirror = Mirror(storePath: path, target: DirectoryTarget(root: copy))
        let group = ServiceGroup(configuration: .init(services: [
            StoreService(store: store, sealInterval: .milliseconds(20)), MirrorService(mirror: mirror, interval: .milliseconds(20)),
        ], logger: Logger(label: "test")))
        let running = Task { try await group.run() }
        for i in 0 ..< 50 { try await store.put(namespace: "svc", key: Array("k\(i)".utf8), value: [UInt8(i)]) }
        let deadline = ContinuousClock.now + .seconds(30)
        var copied: [String] = []
        while ContinuousClock.now < deadline {
            copied = (try? FileManager.default.subpathsOfDirectory(atPath: copy)) ?? []
            if copied.contains(where: { $0.hasPrefix("segments/") && $0.hasSuffix(".seg") }) { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(copied.contains { $0.hasPrefix("segments/") && $0.hasSuffix(".seg") }, "the mirror service copied a sealed segment: \(copied)")
    }

    /// A newer writer epoch in the copy (a standby promoted elsewhere) fences the store the
    /// service mirrors: the service ends with `fenced`, and the store it was given refuses every
    /// write from that moment, and every writable open after.
    @Test func aFencedMirrorServiceFencesItsStore() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.child("store"), copy = DirectoryTarget(root: dir.child("copy"))
        try Store.create(at: path, segmentSize: 1 << 20)
        let store = try Store(path: path)
        defer { try? store.close() }
        try await store.put(namespace: "svc", key: [1], value: [1])
        try store.seal()
        _ = try Mirror(storePath: path, target: copy).runOnce()
        let successor = WriterEpoch(epoch: 2, storeID: store.config.storeID, firstSequence: store.recordCount, claimedAt: 1, holder: "standby-b")
        try copy.put(successor.objectName, successor.encoded, retention: nil, label: nil)
        let service = MirrorService(mirror: Mirror(storePath: path, target: copy), interval: .milliseconds(10), store: store)
        await #expect(throws: SteleError.mirror(.fenced(epoch: 2, holder: "standby-b"))) { try await service.run() }
        #expect(throws: SteleError.fenced(epoch: 2, holder: "standby-b")) { try store.put(namespace: "svc", key: [2], value: [2]) }
        await #expect(throws: SteleError.fenced(epoch: 2, holder: "standby-b")) { try await store.put(namespace: "svc", key: [3], value: [3]) }
        #expect(throws: SteleError.fenced(epoch: 2, holder: "standby-b")) { try store.seal() }
        #expect(try store.get(namespace: "svc", key: [1])?.value == [1], "reads go on")
    }
}
