import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Glibc
import Synchronization
import Testing
@testable import Stele
@testable import SteleMirror

/// The S3 client against a server that fails: `tools/s3-fault-proxy.py` in front of the local
/// S3 server answers chosen requests with 5xx or 403, drops them, delays them past the client's
/// timeout, or lets them take effect and loses the answer. Checked: retries are bounded and
/// reported, a lost answer never leaves a second version, a failed multipart upload is aborted,
/// and listings are read page by page.
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["STELE_S3_ENDPOINT"] != nil,
                             "needs STELE_S3_ENDPOINT (tools/test.sh starts a local server)"))
final class S3FaultTests {
    let proxy: Process
    let stdin = Pipe()
    let port: Int
    let notices = NoticeLog()

    final class NoticeLog: Sendable {
        let lines = Mutex<[String]>([])
    }

    init() throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("tools/s3-fault-proxy.py").path
        proxy = Process()
        proxy.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        proxy.arguments = ["python3", script, ProcessInfo.processInfo.environment["STELE_S3_ENDPOINT"] ?? ""]
        let out = Pipe()
        proxy.standardOutput = out
        proxy.standardInput = stdin  // the proxy exits when this closes: it never outlives the tests
        proxy.standardError = FileHandle.nullDevice
        try proxy.run()
        var line = Data()
        while !line.contains(0x0a) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line += chunk
        }
        port = try #require(Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)))
    }

    deinit {
        // SIGKILL: a child started from a test thread inherits its blocked signals, SIGTERM among them.
        kill(proxy.processIdentifier, SIGKILL)
        try? stdin.fileHandleForWriting.close()
        proxy.waitUntilExit()
    }

    /// A client through the proxy: 4 attempts, short waits, a 1 s timeout.
    func client(_ bucket: String) -> S3Client {
        S3Client(endpoint: URL(string: "http://127.0.0.1:\(port)")!, bucket: bucket,
                 signer: SigV4Signer(accessKeyID: "stele-test", secretAccessKey: "stele-test-secret"),
                 retryPolicy: S3RetryPolicy(maxAttempts: 4, baseDelay: .milliseconds(20), maxDelay: .milliseconds(100)),
                 timeout: .seconds(1), onNotice: { [notices] line in notices.lines.withLock { $0.append(line) } })
    }

    /// The requests the proxy saw since the last call, one "METHOD path?query action" each.
    func seen() throws -> [String] {
        let direct = URL(string: "http://127.0.0.1:\(port)/__faults__")!
        let text = try String(contentsOf: direct, encoding: .utf8)
        return text.split(separator: "\n").map(String.init)
    }

    func setFaults(_ rules: String) throws {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/__faults__")!)
        request.httpMethod = "POST"
        request.httpBody = Data(rules.utf8)
        let done = DispatchSemaphore(value: 0)
        URLSession.shared.dataTask(with: request) { _, _, _ in done.signal() }.resume()
        done.wait()
    }

    static func bucketName(_ tag: String) -> String { "faults-\(tag)-\(UInt32.random(in: 0 ... .max))" }

    @Test func fiveHundredsAndTimeoutsAreRetriedAndReported() throws {
        let name = Self.bucketName("retry")
        _ = try S3MirrorTests.bucket(name)
        let target = S3Target(client: client(name), prefix: "p")
        try target.put("a", [1, 2, 3], retention: nil, label: nil)
        try setFaults(#"[{"method": "GET", "query": "list-type", "action": "503", "times": 2},"#
            + #" {"method": "HEAD", "path": "/p/a", "action": "delay:2.5", "times": 1}]"#)
        #expect(try target.list(prefix: "").map(\.name) == ["a"])
        #expect(try target.head("a")?.size == 3, "the timed-out HEAD was tried again")
        #expect(target.client.retryCount.withLock { $0 } == 3)
        let said = notices.lines.withLock { $0 }
        #expect(said.count == 3 && said[0].contains("HTTP 503 SlowDown") && said[0].contains("attempt 2 of 4"), "\(said)")
        #expect(try seen().filter { $0.contains("list-type") }.count == 3)
    }

    @Test func retriesAreBoundedAndFourHundredsAreNotRetried() throws {
        let name = Self.bucketName("bounded")
        _ = try S3MirrorTests.bucket(name)
        let target = S3Target(client: client(name), prefix: "p")
        try setFaults(#"[{"method": "GET", "query": "list-type", "action": "500", "times": 100}]"#)
        #expect(throws: SteleError.mirror(.target("list p/: HTTP 500 InternalError: injected by the fault proxy"))) { try target.list(prefix: "") }
        #expect(target.client.retryCount.withLock { $0 } == 3, "4 attempts in all")
        try setFaults(#"[{"method": "PUT", "action": "403", "times": 1}]"#)
        #expect(throws: SteleError.mirror(.target("PUT p/b: HTTP 403 AccessDenied: injected by the fault proxy"))) {
            try target.put("b", [4], retention: nil, label: nil)
        }
        #expect(target.client.retryCount.withLock { $0 } == 3, "a 403 is final")
        #expect(try seen().filter { $0.hasPrefix("PUT") }.count == 1)
        // No server at all: each attempt fails without an answer, three in all.
        let unreachable = S3Client(endpoint: URL(string: "http://127.0.0.1:1")!, bucket: name,
                                   signer: SigV4Signer(accessKeyID: "k", secretAccessKey: "s"),
                                   retryPolicy: S3RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(10), maxDelay: .milliseconds(20)))
        do {
            _ = try S3Target(client: unreachable, prefix: "").list(prefix: "")
            Issue.record("a listing from nowhere")
        } catch SteleError.mirror(.transport) {
        } catch {
            Issue.record("\(error)")
        }
        #expect(unreachable.retryCount.withLock { $0 } == 2)
    }

    @Test func aLostAnswerToAPutNeverLeavesASecondVersion() throws {
        let name = Self.bucketName("lost")
        let direct = try S3MirrorTests.bucket(name)
        let target = S3Target(client: client(name), prefix: "p")
        let retention = ObjectRetention(mode: .compliance, retainUntil: Int64(Date().timeIntervalSince1970 * 1e9) + 86_400 * 1_000_000_000)
        // The first PUT takes effect but its answer is lost; the second is refused before the server sees it.
        try setFaults(#"[{"method": "PUT", "path": "/p/lost", "action": "after:500", "times": 1},"#
            + #" {"method": "PUT", "path": "/p/refused", "action": "503", "times": 2}]"#)
        #expect(try target.put("lost", Array("once".utf8), retention: retention, label: nil))
        #expect(try target.put("refused", Array("twice".utf8), retention: retention, label: nil))
        let versions = try S3Target(client: direct, prefix: "p").versions(prefix: "")
        #expect(versions.map(\.name) == ["lost", "refused"], "one version each: \(versions)")
        let log = try seen()
        #expect(log.filter { $0.hasPrefix("PUT /\(name)/p/lost") }.count == 1, "\(log)")
        #expect(log.filter { $0.hasPrefix("PUT /\(name)/p/refused") }.count == 3, "\(log)")
        #expect(try S3Target(client: direct, prefix: "p").get("lost") == Array("once".utf8))
    }

    @Test func aFailedMultipartUploadIsAbortedAndNothingIsLeftPending() throws {
        let name = Self.bucketName("multipart")
        let direct = try S3MirrorTests.bucket(name)
        var target = S3Target(client: client(name), prefix: "p")
        target.partSize = 5 << 20
        let bytes = (0 ..< (11 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
        try setFaults(#"[{"method": "PUT", "query": "partNumber=2", "action": "500", "times": 4}]"#)  // every attempt
        #expect(throws: SteleError.self) { try target.put("big", bytes, retention: nil, label: nil) }
        let log = try seen()
        #expect(log.contains { $0.hasPrefix("DELETE /\(name)/p/big?uploadId=") }, "\(log)")
        let pending = try direct.send(.init(method: "GET", key: "", query: [("uploads", "")]))
        #expect(pending.status == 200 && XMLFields.all("UploadId", in: pending.body).isEmpty,
                "\(String(decoding: pending.body, as: UTF8.self))")
        #expect(try S3Target(client: direct, prefix: "p").head("big") == nil)
        // Once the faults are spent, the same upload goes through (a part retried once).
        try setFaults(#"[{"method": "PUT", "query": "partNumber=1", "action": "503", "times": 1}]"#)
        var healthy = S3Target(client: client(name), prefix: "p")
        healthy.partSize = 5 << 20
        #expect(try healthy.put("big", bytes, retention: nil, label: nil))
        #expect(try S3Target(client: direct, prefix: "p").get("big") == bytes)
    }

    @Test func listingsAreReadPageByPage() throws {
        let name = Self.bucketName("pages")
        let direct = try S3MirrorTests.bucket(name)
        for i in 0 ..< 7 { try S3Target(client: direct, prefix: "p").put("o\(i)", [UInt8(i)], retention: nil, label: nil) }
        var target = S3Target(client: client(name), prefix: "p")
        target.pageSize = 3
        #expect(try target.list(prefix: "").map(\.name) == (0 ..< 7).map { "o\($0)" })
        target.pageSize = 2
        #expect(try target.versions(prefix: "").map(\.name) == (0 ..< 7).map { "o\($0)" })
        let log = try seen()
        #expect(log.filter { $0.contains("list-type=2") }.count == 3, "\(log)")
        #expect(log.filter { $0.contains("continuation-token=") }.count == 2)
        #expect(log.filter { $0.contains("versions") }.count == 4, "\(log)")
        #expect(log.filter { $0.contains("key-marker=") }.count == 3)
    }
}
