import Foundation
import Glibc
import Testing
@testable import Stele
@testable import SteleMirror

/// README: `stele mirror` takes S3 credentials from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`
/// (or `--credentials`). Against a local S3 server that checks every signature
/// (`tools/s3-auth-server.py`, moto with request authentication on, from the virtual environment
/// `tools/s3-server.sh` installs); skipped without that environment.
/// The repository's root, and the Python of the virtual environment with moto.
private let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
private let motoPython = repositoryRoot.appendingPathComponent(".build-moto/bin/python3").path

@Suite(.serialized, .enabled(if: FileManager.default.isExecutableFile(atPath: motoPython),
                             "needs .build-moto (tools/s3-server.sh start installs it)"))
final class S3CredentialTests {
    let server: Process
    let stdin = Pipe()
    let port: Int, keyID: String, secret: String, bucket: String

    init() throws {
        server = Process()
        server.executableURL = URL(fileURLWithPath: motoPython)
        server.arguments = [repositoryRoot.appendingPathComponent("tools/s3-auth-server.py").path]
        let out = Pipe()
        server.standardOutput = out
        server.standardInput = stdin  // the server exits when this closes: it never outlives the tests
        server.standardError = FileHandle.nullDevice
        try server.run()
        var line = Data()
        while !line.contains(0x0a) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line += chunk
        }
        let fields = String(decoding: line, as: UTF8.self).split(whereSeparator: \.isWhitespace).map(String.init)
        guard fields.count == 4, let port = Int(fields[0]) else { throw SteleError.invalidArgument("s3-auth-server.py said: \(fields)") }
        (self.port, keyID, secret, bucket) = (port, fields[1], fields[2], fields[3])
    }

    deinit {
        // SIGKILL: a child started from a test thread inherits its blocked signals, SIGTERM among them.
        kill(server.processIdentifier, SIGKILL)
        try? stdin.fileHandleForWriting.close()
        server.waitUntilExit()
    }

    /// A store with a sealed segment and a checkpoint: what a mirror copies.
    func store(_ dir: TemporaryDirectory) throws -> String {
        let store = dir.child("s")
        #expect(try CLITests.stele(["init", store, "--segment-size", "65536"]).status == 0)
        let lines = (0 ..< 50).map { #"{"ns":"n","key":"k-\#($0)","value":"v\#($0)"}"# }
        #expect(try CLITests.stele(["append", store, "--jsonl", "-"], stdin: lines.joined(separator: "\n") + "\n").status == 0)
        #expect(try CLITests.stele(["keygen", "--name", "auth.test/log", "--out", dir.child("k")]).status == 0)
        #expect(try CLITests.stele(["checkpoint", store, "--key", dir.child("k.key"), "--seal", "--out", dir.child("cp")]).status == 0)
        return store
    }

    func mirror(_ store: String, prefix: String, keyID: String, secret: String, extra: [String] = []) throws -> CLITests.Run {
        try CLITests.stele(["mirror", store, "--to", "s3://\(bucket)/\(prefix)", "--endpoint", "http://127.0.0.1:\(port)", "--attempts", "1"] + extra,
                           environment: ["AWS_ACCESS_KEY_ID": keyID, "AWS_SECRET_ACCESS_KEY": secret, "AWS_REGION": "us-east-1"])
    }

    /// The status of a HEAD of the first segment's object under `prefix`, asked with the right key.
    func objects(_ prefix: String) throws -> Int {
        let client = S3Client(endpoint: URL(string: "http://127.0.0.1:\(port)")!, bucket: bucket,
                              signer: SigV4Signer(accessKeyID: keyID, secretAccessKey: secret))
        return try client.send(.init(method: "HEAD", key: prefix + "/segments/000000000001.seg")).status
    }

    @Test func mirrorTakesCredentialsFromTheEnvironmentAndFailsWithWrongOnes() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = try store(dir)

        // The server checks signatures: a wrong secret, or a key it does not know, is refused.
        let wrongSecret = try mirror(store, prefix: "wrong", keyID: keyID, secret: secret + "x")
        #expect(wrongSecret.status == 4 && wrongSecret.stderr.contains("SignatureDoesNotMatch"), "\(wrongSecret.status) \(wrongSecret.stderr)")
        let unknownKey = try mirror(store, prefix: "wrong", keyID: "AKIAUNKNOWN000000000", secret: secret)
        #expect(unknownKey.status == 4 && unknownKey.stderr.contains("InvalidAccessKeyId"), "\(unknownKey.status) \(unknownKey.stderr)")
        #expect(try objects("wrong") == 404, "nothing was written")
        let none = try mirror(store, prefix: "wrong", keyID: "", secret: "")
        #expect(none.status == 1 && none.stderr.contains("no S3 credentials"), "\(none.status) \(none.stderr)")

        // The right key, in the environment only.
        let good = try mirror(store, prefix: "env", keyID: keyID, secret: secret)
        #expect(good.status == 0, "\(good.status) \(good.stderr)")
        #expect(try objects("env") == 200)
        // --credentials names a file that takes precedence over the environment.
        try writeFile(dir.child("creds"), Array("[default]\naws_access_key_id = \(keyID)\naws_secret_access_key = \(secret)\n".utf8))
        let file = try mirror(store, prefix: "file", keyID: keyID, secret: "wrong", extra: ["--credentials", dir.child("creds")])
        #expect(file.status == 0, "\(file.status) \(file.stderr)")
        #expect(try objects("file") == 200)
    }
}
