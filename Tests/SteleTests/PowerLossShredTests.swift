import Foundation
import Synchronization
import Testing
@testable import Stele
import SteleNative

/// Power cuts during a shred (issue 20): before every call that changes the disk, from the open
/// that shreds through the writes after it to the close, an adversarial crash image is taken
/// (``PowerLossFileSystem``); each is opened by a writer with the master key. A shred is all or
/// nothing, and once acknowledged never undone: before the acknowledgement the namespace reads
/// back whole or is shredded (its record durable), after it it is always shredded; the keyring
/// agrees with the log once a writer has opened it (the key destroyed iff the log has the shred
/// record); the other namespace is intact and fsck finds nothing wrong.
@Suite struct PowerLossShredTests {
    struct Point {
        var image: PowerLossFileSystem.CrashImage
        var acknowledged: Bool
        var label: String
    }

    static func value(_ n: Int) -> [UInt8] {
        n % 3 == 0 ? [UInt8](repeating: UInt8(n), count: 1500) : Array("acme value \(n)".utf8)
    }

    @Test func aShredIsAllOrNothingAndNeverUndoneOnceAcknowledged() throws {
        var checked = 0, acknowledgedPoints = 0, shreddedBeforeAcknowledgement = 0
        var failures: [String] = []
        for seed in UInt64(1) ... 4 {
            let dir = TemporaryDirectory(inMemory: true)
            defer { dir.remove() }
            let master = try EncryptionKey.generate()
            let path = dir.child("store")
            try Store.create(at: path, segmentSize: 64 * 1024, encryptionKey: master)
            var options = Store.Options()
            options.encryptionKey = master
            do {
                let store = try Store(path: path, options: options)
                for n in 0 ..< 40 {
                    try store.put(namespace: "acme", key: Array("a\(n)".utf8), value: Self.value(n))
                    try store.put(namespace: "globex", key: Array("g\(n)".utf8), value: Array("globex \(n)".utf8))
                }
                if seed % 2 == 0 { try store.seal() }
                try store.close()
            }
            let fs = try PowerLossFileSystem(root: path)
            var random = SplitMix64(seed: seed)
            let acknowledged = Atomic(false)
            let points = Mutex<[Point]>([])
            defer { fs.onCall = nil }
            fs.onCall = { call in
                guard let image = try? fs.crashImage(&random) else { return }
                points.withLock { $0.append(Point(image: image, acknowledged: acknowledged.load(ordering: .acquiring), label: "seed \(seed) call \(call)")) }
            }
            var shredding = options
            shredding.fileSystem = fs
            let store = try Store(path: path, options: shredding)
            try store.shred(namespace: "acme", reason: "erasure request")
            acknowledged.store(true, ordering: .releasing)
            for n in 40 ..< 45 { try store.put(namespace: "globex", key: Array("g\(n)".utf8), value: Array("globex \(n)".utf8)) }
            try store.close()

            for point in points.withLock({ $0 }) {
                checked += 1
                if point.acknowledged { acknowledgedPoints += 1 }
                let image = dir.child("image")
                defer { removeTree(image) }
                do {
                    try point.image.materialize(at: image)
                    switch try Self.outcome(at: image, options: options) {
                    case .readable where point.acknowledged:
                        failures.append("\(point.label): the shred was acknowledged, the namespace reads back")
                    case .shredded where !point.acknowledged:
                        shreddedBeforeAcknowledgement += 1
                    default:
                        break
                    }
                } catch {
                    failures.append("\(point.label): \(error)")
                }
            }
        }
        print("power cuts during a shred: \(checked) crash points (\(acknowledgedPoints) after the acknowledgement, "
            + "\(shreddedBeforeAcknowledgement) shredded before it), \(failures.count) failures")
        #expect(checked > 40 && acknowledgedPoints > 0)
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }

    enum Outcome { case readable, shredded }

    /// Opens the image as a writer with the key and checks it (see the suite's comment).
    static func outcome(at path: String, options: Store.Options) throws -> Outcome {
        let store = try Store(path: path, options: options)
        defer { try? store.close() }
        let storeID = store.config.storeID
        for n in 0 ..< 40 where try store.get(namespace: "globex", key: Array("g\(n)".utf8))?.value != Array("globex \(n)".utf8) {
            throw Failure("globex g\(n) lost or changed")
        }
        let outcome: Outcome
        do {
            for n in 0 ..< 40 where try store.get(namespace: "acme", key: Array("a\(n)".utf8))?.value != Self.value(n) {
                throw Failure("acme a\(n) partly readable: lost or changed")
            }
            outcome = .readable
        } catch SteleError.encryption(.shredded) {
            outcome = .shredded
        }
        try store.close()
        let ring = try Keyring(fs: PosixFileSystem(), path: path + "/keyring", storeID: storeID, master: options.encryptionKey!)
        switch (outcome, ring.entry(for: "acme")) {
        case (.readable, .live?), (.shredded, .shredded?): break
        case (_, let entry): throw Failure("the keyring holds \(String(describing: entry)) for a namespace that is \(outcome)")
        }
        let report = try Fsck.check(path: path)
        guard report.problems.isEmpty else { throw Failure("fsck: \(report.problems)") }
        return outcome
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}
