// Mirror lag: how long records wait before they are off-host, under a steady write load.
//
// A writer appends `--rate` records per second (100-byte values, batches every 10 ms,
// `sync=none`) to a store whose seal timer is `--seal-ms`; a mirror in the same process copies
// sealed segments every `--poll-ms` to s3://BUCKET/PREFIX at $STELE_S3_ENDPOINT (credentials
// from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) or to a directory. After each pass it samples
// the lag (age of the oldest record not yet off-host), and the lag just before the pass landed
// (the age then of the oldest record the pass before left behind); it prints p50, p99 and max.
//
// The mirror reads the writer's own `Store` (`Mirror(store:)`) and sends at most 32 tiles a
// pass; with `--reopen` it opens the store at each pass instead, as `stele mirror` in a process
// of its own does.
//
// With `--checkpoint-ms N`, the writer signs a checkpoint every N ms and the mirror ships the
// records between seals as chunks (`Mirror.Options.shipsActiveRecords`): the lag then no longer
// waits for a seal (set `--seal-ms` high to see it without).
//
//   MirrorLag --to s3://bucket/prefix --seconds 60 [--rate 10000] [--seal-ms 1000] [--poll-ms 200] [--checkpoint-ms 250] [--reopen]

import Foundation
import MirrorBenchSupport
import Stele
import SteleMirror

let seconds = Double(option("--seconds", "60")) ?? 60
let rate = Int(option("--rate", "10000")) ?? 10_000
let sealMilliseconds = Int(option("--seal-ms", "1000")) ?? 1000
let pollMilliseconds = Int(option("--poll-ms", "200")) ?? 200
let checkpointMilliseconds = Int(option("--checkpoint-ms", "0")) ?? 0
let destination = option("--to", "")
let reopens = CommandLine.arguments.contains("--reopen")
let directory = NSTemporaryDirectory() + "/stele-mirror-lag-\(getpid())"

try Store.create(at: directory)
var options = Store.Options(commitPolicy: .none)
options.sealInterval = .milliseconds(sealMilliseconds)
let store = try Store(path: directory, options: options)
let stop = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
let writer = Thread {
    let perTick = max(1, rate / 100)
    var next = ContinuousClock.now
    var n = 0
    while ContinuousClock.now < stop {
        let batch = (0 ..< perTick).map { i in
            Entry(namespace: "lag", key: Array("k\(n + i)".utf8), value: [UInt8](repeating: UInt8(truncatingIfNeeded: n + i), count: 100))
        }
        _ = try? store.append(contentsOf: batch)
        n += perTick
        next += .milliseconds(10)
        let wait = next - ContinuousClock.now
        if wait > .zero { Thread.sleep(forTimeInterval: Double(wait.components.attoseconds) / 1e18 + Double(wait.components.seconds)) }
    }
}
writer.start()
let signer = try NoteSigner.generate(name: "mirror-lag/log")
let checkpointer = Thread {
    guard checkpointMilliseconds > 0 else { return }
    while ContinuousClock.now < stop {
        do { _ = try store.checkpoint(signer: signer) } catch { FileHandle.standardError.write(Data("checkpoint failed: \(error)\n".utf8)) }
        Thread.sleep(forTimeInterval: Double(checkpointMilliseconds) / 1000)
    }
}
checkpointer.start()
var mirrorOptions = Mirror.Options()
mirrorOptions.shipsActiveRecords = checkpointMilliseconds > 0
mirrorOptions.tilesPerPass = 32
let mirror = reopens ? Mirror(storePath: directory, target: try mirrorTarget(destination, scratch: directory + "-copy"), options: mirrorOptions)
    : Mirror(store: store, target: try mirrorTarget(destination, scratch: directory + "-copy"), options: mirrorOptions)
var samples: [Double] = []
var peaks: [Double] = []
var uploaded = 0
var offHost: UInt64 = 0
while ContinuousClock.now < stop {
    let report = try mirror.runOnce()
    uploaded += report.uploaded.count
    samples.append(report.lagSeconds ?? 0)
    // The lag just before this pass landed: the age, now, of the oldest record the last pass left
    // behind (the top of the sawtooth that `lagSeconds`, sampled after the pass, is the bottom of).
    if offHost < report.recordsInStore, let waiting = try? store.timestamp(at: offHost) {
        peaks.append(max(0, Date().timeIntervalSince1970 - Double(waiting) / 1e9))
    }
    offHost = report.recordsOffHost
    Thread.sleep(forTimeInterval: Double(pollMilliseconds) / 1000)
}
try store.close()
samples.sort()
func percentile(_ sorted: [Double], _ p: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
print(String(format: "mirror lag over %.0f s at %d records/s, seal every %d ms, %@, mirror pass every %d ms%@: %d passes, %d objects; "
             + "lag p50 %.2f s, p99 %.2f s, max %.2f s", seconds, rate, sealMilliseconds,
             checkpointMilliseconds > 0 ? "a checkpoint every \(checkpointMilliseconds) ms and chunks" : "no chunks", pollMilliseconds,
             reopens ? " (store opened at each pass)" : "", samples.count, uploaded,
             percentile(samples, 0.5), percentile(samples, 0.99), samples.last ?? 0))
peaks.sort()
print(String(format: "lag just before each pass landed (the recovery point's worst moments): p50 %.2f s, p99 %.2f s, max %.2f s",
             percentile(peaks, 0.5), percentile(peaks, 0.99), peaks.last ?? 0))
for path in [directory, directory + "-copy"] {
    for name in (try? FileManager.default.subpathsOfDirectory(atPath: path)) ?? [] { chmod(path + "/" + name, 0o755) }
    try? FileManager.default.removeItem(atPath: path)
}
