// The failover drill (issue 21): what a data-centre loss does to an orders service with a warm
// standby in another failure domain, measured.
//
//  1. A primary orders-server signs a checkpoint every 250 ms (and seals only when a segment
//     fills) and mirrors itself to a copy (a directory standing for the off-host bucket), the
//     records between seals as chunks. The first checkpoint in the copy is kept aside, as an
//     auditor would.
//  2. A standby orders-server follows the copy: it installs each chunk and sealed segment once a
//     signed checkpoint proves it.
//  3. HTTP load on the primary; then SIGKILL, and its directory removed (a copy of the crashed
//     directory is kept: the old primary that comes back later).
//  4. POST /admin/promote on the standby, then POSTs until one is answered 201: the recovery time.
//  5. Checks: the promoted log is a prefix of what the primary acknowledged (every 201 below the
//     promotion point is there, byte for byte, at its sequence number); the recovery point is the
//     age at the kill of the oldest 201 that is not; the promoted store's log extends the old
//     checkpoints (fsck against them); the old primary, restarted with its mirror, is fenced and
//     adds nothing to the copy.
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Stele

func failoverDrill(_ arguments: LoadArguments) async throws -> Int32 {
    let binary = arguments.server ?? (URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path + "/orders-server")
    let work = NSTemporaryDirectory() + "orders-failover-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
    defer { removeWritable(work) }
    let (copy, primaryPath, standbyPath) = (work + "/copy", work + "/primary", work + "/standby")
    var failures: [String] = []

    let signer = try NoteSigner.generate(name: "orders.failover/log")
    try signer.encoded.write(toFile: work + "/log.key", atomically: true, encoding: .utf8)
    try signer.verifier.encoded.write(toFile: work + "/log.pub", atomically: true, encoding: .utf8)

    // 1. The primary, and the first checkpoint that reaches the copy, kept aside.
    // A seal every 5 s only: the records between seals reach the copy as chunks, each proven by
    // a checkpoint signed every 250 ms.
    let primary = try ServerProcess(binary: binary, store: primaryPath,
                                    extra: ["--checkpoint-key", work + "/log.key", "--checkpoint-ms", "250", "--mirror-to", copy, "--seal-seconds", "5"])
    defer { if primary.process.isRunning { _ = primary.kill(SIGKILL) } }
    let client = Client(base: "http://127.0.0.1:\(primary.port)", connections: arguments.clients)
    let (firstStatus, _) = try await client.send("POST", "/orders/o-first/events", body: Data("opened".utf8))
    guard firstStatus == 201 else { throw LoadError("the primary answered \(firstStatus) to the first event") }
    // A standby starts from a restore, which reads sealed segments: it waits for the first seal.
    guard await waitFor(seconds: 30, { (try? FileManager.default.contentsOfDirectory(atPath: copy + "/segments"))?.isEmpty == false ? true : nil }) != nil,
          let trusted = await waitFor(seconds: 30, { newestCheckpoint(in: copy) }) else {
        throw LoadError("no sealed segment and checkpoint reached the copy in 30 s")
    }
    try trusted.write(toFile: work + "/trusted.checkpoint", atomically: true, encoding: .utf8)

    // 2. The standby, from the copy.
    let standby = try ServerProcess(binary: binary, store: standbyPath,
                                    extra: ["--standby-of", copy, "--verifier-key", work + "/log.pub", "--checkpoint", work + "/trusted.checkpoint",
                                            "--checkpoint-key", work + "/log.key"])
    defer { if standby.process.isRunning { _ = standby.kill(SIGKILL) } }
    let standbyClient = Client(base: "http://127.0.0.1:\(standby.port)", connections: 8)
    let (refused, _) = try await standbyClient.send("POST", "/orders/o-early/events", body: Data("too early".utf8))
    if refused != 503 { failures.append("a POST to the standby before promotion answered \(refused), not 503") }

    // 3. Load, then the disaster.
    let load = Task { await drive(client, clients: arguments.clients, tag: "failover", until: Date() + 600) }
    try await Task.sleep(for: .seconds(arguments.loadSeconds))
    let killedAt = Date()
    _ = primary.kill(SIGKILL)
    let (acks, latencies, _) = await load.value
    let sorted = latencies.sorted()
    print(String(format: "primary: %d events answered 201 in %.1f s of load (p50 %.1f ms, p99 %.1f ms), then SIGKILL", acks.count,
                 arguments.loadSeconds, percentile(sorted, 0.5) * 1e3, percentile(sorted, 0.99) * 1e3))
    let returning = work + "/primary-returning"
    try FileManager.default.copyItem(atPath: primaryPath, toPath: returning)
    removeWritable(primaryPath)

    // 4. Promotion, and the first write it takes.
    let started = Date()
    var (promoted, answer) = try await standbyClient.send("POST", "/admin/promote")
    if promoted == 503, String(decoding: answer, as: UTF8.self).contains("no checkpoint proves") {
        // The primary died between uploading a segment and the checkpoint its seal signed: the
        // operator accepts that segment on the strength of its hash chain and checksums.
        print("promotion refused: \(String(decoding: answer, as: UTF8.self)); promoting again, accepting the unproven segments")
        (promoted, answer) = try await standbyClient.send("POST", "/admin/promote?accept-unproven=yes")
    }
    guard promoted == 200, let claim = try JSONSerialization.jsonObject(with: answer) as? [String: Any],
          let from = (claim["from"] as? NSNumber)?.uint64Value, let epoch = (claim["epoch"] as? NSNumber)?.uint64Value else {
        throw LoadError("promotion answered \(promoted): \(String(decoding: answer, as: UTF8.self))")
    }
    var firstWrite: UInt64?
    while firstWrite == nil, Date().timeIntervalSince(started) < 30 {
        let (status, data) = try await standbyClient.send("POST", "/orders/o-after/events", body: Data("after the failover".utf8))
        if status == 201, let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] {
            firstWrite = (object["sequence"] as? NSNumber)?.uint64Value
        }
    }
    let recoveryTime = Date().timeIntervalSince(started)
    if firstWrite != from { failures.append("the first write after promotion got sequence \(firstWrite.map(String.init) ?? "none"), not \(from)") }

    // 5. What came through.
    let kept = acks.filter { $0.sequence < from }, lost = acks.filter { $0.sequence >= from }
    failures += try await verify(kept, on: standbyClient)
    let recoveryPoint = lost.map { killedAt.timeIntervalSince($0.at) }.max() ?? 0
    let standbyStatus = standby.kill(SIGTERM)
    if standbyStatus != 0 { failures.append("the promoted standby exited \(standbyStatus) on SIGTERM") }
    let fsck = try Fsck.check(path: standbyPath, externalCheckpoints: [.init(note: trusted, verifier: signer.verifier)])
    if !fsck.problems.isEmpty || fsck.externalCheckpointsVerified != 1 {
        failures.append("fsck of the promoted store against the old checkpoint: \(fsck.problems.map { "\($0)" })")
    }
    failures += try await returningPrimaryIsFenced(binary: binary, store: returning, copy: copy, extra: ["--checkpoint-key", work + "/log.key"])

    for failure in failures.prefix(20) { print("FAIL \(failure)") }
    guard failures.isEmpty else {
        print("failover drill FAILED: \(failures.count) failures")
        return 1
    }
    print("failover drill passed: writer epoch \(epoch) from record \(from); \(kept.count) of \(acks.count) acknowledged events on the "
        + "promoted store, byte for byte; its log extends the old primary's checkpoint; the returning old primary is fenced")
    print(String(format: "recovery point: %d acknowledged events (%.2f s before the kill) were not yet proven off-host", lost.count, recoveryPoint))
    print(String(format: "recovery time: %.3f s from the promotion request to the first write acknowledged", recoveryTime))
    return 0
}

/// Restarts the old primary (a copy of its crashed directory) with its mirror to the same copy:
/// its mirror must find the new writer epoch, fence it, and add nothing to the copy.
private func returningPrimaryIsFenced(binary: String, store: String, copy: String, extra: [String]) async throws -> [String] {
    let segments = Set(try FileManager.default.contentsOfDirectory(atPath: copy + "/segments"))
    let process = Process()
    process.executableURL = URL(fileURLWithPath: binary)
    process.arguments = ["--store", store, "--port", "0", "--seal-seconds", "1", "--mirror-to", copy] + extra
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    let fenced = await waitFor(seconds: 30) { FileManager.default.fileExists(atPath: store + "/fenced") ? true : nil } ?? false
    // Fenced, its service group ends; give it the time to, then make sure it is gone.
    _ = await waitFor(seconds: 10) { process.isRunning ? nil : true }
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
    var failures: [String] = []
    if !fenced { failures.append("the returning old primary was not fenced (no `fenced` file in 30 s)") }
    let after = Set(try FileManager.default.contentsOfDirectory(atPath: copy + "/segments"))
    // The promoted standby mirrors nothing here: anything new in the copy is the old primary's.
    let added = after.subtracting(segments)
    if !added.isEmpty { failures.append("the returning old primary added to the copy: \(added.sorted())") }
    print("returning old primary: fenced \(fenced), \(added.count) objects added to the copy, exit \(process.terminationStatus)")
    return failures
}

/// The newest checkpoint note in a directory copy (`checkpoints/<size>`), if any.
private func newestCheckpoint(in copy: String) -> String? {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: copy + "/checkpoints"),
          let newest = names.filter({ UInt64($0) != nil }).max() else { return nil }
    return try? String(contentsOfFile: copy + "/checkpoints/" + newest, encoding: .utf8)
}

/// Polls `probe` every 50 ms for up to `seconds`.
private func waitFor<T>(seconds: Double, _ probe: () -> T?) async -> T? {
    let deadline = Date() + seconds
    while Date() < deadline {
        if let value = probe() { return value }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return probe()
}

/// Removes a tree that holds read-only files and directories (a copy, a sealed store).
private func removeWritable(_ path: String) {
    if let walker = FileManager.default.enumerator(atPath: path) {
        chmod(path, 0o755)
        for case let name as String in walker { chmod(path + "/" + name, 0o755) }
    }
    try? FileManager.default.removeItem(atPath: path)
}
