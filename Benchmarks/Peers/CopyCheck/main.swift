// Copy check: what a follower's pass costs as the copy grows, listing the whole copy at every
// pass or only what is new between full checks (`Mirror.Options.fullCheckInterval`).
//
// Builds a store of `--segments` sealed segments of 64 KiB (records of 100 B, `sync=none`),
// mirrors it once to a directory (or s3://BUCKET/PREFIX at $STELE_S3_ENDPOINT, credentials
// from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), then runs `--passes` passes of a mirror in the
// writer's process, one new sealed segment before each, first with every pass a full check,
// then with full checks an hour apart. Prints, for each, the pass time p50/p99 and the object
// versions a pass listed.
//
// With `--keep`, the store and a directory copy are left where it says.
//
//   CopyCheck [--segments 20000] [--passes 20] [--to DIR | s3://bucket/prefix] [--keep]

import Foundation
import MirrorBenchSupport
import Stele
import SteleMirror

let segments = Int(option("--segments", "20000")) ?? 20_000
let passes = Int(option("--passes", "20")) ?? 20
let destination = option("--to", "")
let directory = NSTemporaryDirectory() + "/stele-copy-check-\(getpid())"

/// Appends 500 records of 100 B (most of a 64 KiB segment) and seals them.
func sealOne(_ store: Store) throws {
    let first = Int(store.recordCount)
    try store.append(contentsOf: (first ..< first + 500).map {
        Entry(namespace: "bench", key: Array("k\($0)".utf8), value: [UInt8](repeating: UInt8(truncatingIfNeeded: $0), count: 100))
    })
    try store.seal()
}

func percentile(_ values: [Double], _ p: Double) -> Double {
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}

try Store.create(at: directory, segmentSize: 64 * 1024)
let store = try Store(path: directory, options: Store.Options(commitPolicy: .none))
let copy = try mirrorTarget(destination, scratch: directory + "-copy")
let building = ContinuousClock.now
while try store.stats().sealedSegments < segments { try sealOne(store) }
let first = try Mirror(store: store, target: copy).runOnce()
print("store of \(try store.stats().sealedSegments) sealed segments built and mirrored in \(ContinuousClock.now - building) (\(first.uploaded.count) objects)")

for (label, interval) in [("full check every pass", nil), ("full check every hour", Duration.seconds(3600))] as [(String, Duration?)] {
    var options = Mirror.Options()
    options.fullCheckInterval = interval
    let mirror = Mirror(store: store, target: copy, options: options)
    _ = try mirror.runOnce()  // a new mirror checks the whole copy first (and verifies what it knows)
    var times: [Double] = []
    var listed: [Int] = []
    for _ in 0 ..< passes {
        try sealOne(store)
        let started = ContinuousClock.now
        let report = try mirror.runOnce()
        times.append((ContinuousClock.now - started) / .seconds(1))
        listed.append(report.versionsListed)
        guard report.lagRecords == 0 else { throw SteleError.invalidArgument("a pass left \(report.lagRecords) records behind") }
    }
    print(String(format: "%@: pass p50 %.4f s, p99 %.4f s; versions listed a pass: %d", label, percentile(times, 0.5), percentile(times, 0.99),
                 listed.max() ?? 0))
}
try store.close()
if CommandLine.arguments.contains("--keep") {
    print("kept the store in \(directory)" + (destination.isEmpty ? " and its copy in \(directory)-copy" : ""))
} else {
    try? FileManager.default.removeItem(atPath: directory)
    if destination.isEmpty { try? FileManager.default.removeItem(atPath: directory + "-copy") }
}
