// orders-load: HTTP load on orders-server from another process, and its load-and-kill test.
//
//   orders-load --kill-test [--rounds 3] [--clients 64] [--load-seconds 2] [--server PATH]
//       Starts orders-server on a fresh store (127.0.0.1, a port the system picks), drives it with `clients`
//       concurrent HTTP clients posting order events, kills it with SIGKILL under load, starts it
//       again and checks that every event answered 201 is readable at the sequence number its
//       answer gave (the order's history and GET ?asOf); `rounds` times on the same store. Then
//       checks that bad requests get 4xx, proofs are served, and that a SIGTERM shuts the server
//       down cleanly. Exit 0: every check held; 1: one failed (each failure printed).
//   orders-load --failover-drill [--clients 64] [--load-seconds 4] [--server PATH]
//       A primary under load, mirrored to a copy; a standby following it; the primary killed and its
//       directory removed; the standby promoted. Prints the recovery point and time (FailoverDrill.swift).
//   orders-load --url http://127.0.0.1:8080 [--clients 64] [--load-seconds 10]
//       Load only: prints requests/s and latency percentiles of the 201s.
import Dispatch
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

struct LoadArguments {
    var killTest = false
    var failoverDrill = false
    var url: String?
    var rounds = 3
    var clients = 64
    var loadSeconds = 2.0
    var server: String?

    init(_ arguments: [String]) throws {
        var rest = arguments[...]
        func value(_ name: String) throws -> String {
            guard let next = rest.popFirst() else { throw LoadError("\(name) needs a value") }
            return next
        }
        while let argument = rest.popFirst() {
            switch argument {
            case "--kill-test": killTest = true
            case "--failover-drill": failoverDrill = true
            case "--url": url = try value(argument)
            case "--rounds": rounds = Int(try value(argument)) ?? rounds
            case "--clients": clients = Int(try value(argument)) ?? clients
            case "--load-seconds": loadSeconds = Double(try value(argument)) ?? loadSeconds
            case "--server": server = try value(argument)
            default: throw LoadError("unknown argument \(argument)")
            }
        }
        guard killTest || failoverDrill || url != nil else {
            throw LoadError("usage: orders-load --kill-test [...] | --failover-drill [...] | --url URL [...]")
        }
    }
}

struct LoadError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// One event the server answered 201: what was sent, and the sequence number it gave.
struct Acknowledged: Sendable {
    let order: String
    let body: String
    let sequence: UInt64
    /// When the 201 came back.
    var at = Date()
}

/// An HTTP client of many concurrent connections.
final class Client: Sendable {
    let base: String
    let session: URLSession

    init(base: String, connections: Int) {
        self.base = base
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpMaximumConnectionsPerHost = connections
        configuration.timeoutIntervalForRequest = 30
        session = URLSession(configuration: configuration)
    }

    func send(_ method: String, _ path: String, body: Data? = nil) async throws -> (Int, Data) {
        guard let url = URL(string: base + path) else { throw LoadError("bad URL \(base + path)") }
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.httpBody = body
        let (data, response) = try await session.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
    }
}

/// Posts events from `clients` concurrent loops until `until`, or until the server stops
/// answering; returns every 201 with its latency.
func drive(_ client: Client, clients: Int, tag: String, until deadline: Date) async -> (acks: [Acknowledged], latencies: [Double], errors: Int) {
    await withTaskGroup(of: ([Acknowledged], [Double], Int).self) { group in
        for worker in 0 ..< clients {
            group.addTask {
                var acks: [Acknowledged] = [], latencies: [Double] = [], errors = 0
                var i = 0
                while Date() < deadline {
                    let order = "o-\(tag)-\(worker)-\(i % 7)"
                    let body = "event \(i) of client \(worker) in \(tag)"
                    i += 1
                    let started = Date()
                    do {
                        let (status, data) = try await client.send("POST", "/orders/\(order)/events", body: Data(body.utf8))
                        guard status == 201 else {
                            errors += 1
                            continue
                        }
                        latencies.append(Date().timeIntervalSince(started))
                        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any],
                              let sequence = (object["sequence"] as? NSNumber)?.uint64Value, object["durable"] as? Bool == true else {
                            errors += 1
                            continue
                        }
                        acks.append(Acknowledged(order: order, body: body, sequence: sequence))
                    } catch {
                        // The server was killed (or is gone): this client stops.
                        errors += 1
                        break
                    }
                }
                return (acks, latencies, errors)
            }
        }
        var all: ([Acknowledged], [Double], Int) = ([], [], 0)
        for await (acks, latencies, errors) in group {
            all.0 += acks
            all.1 += latencies
            all.2 += errors
        }
        return all
    }
}

/// A running orders-server child process, on a port the system chose (`--port 0`; the server
/// prints the address it listens on).
final class ServerProcess {
    let process = Process()
    private(set) var port = 0

    init(binary: String, store: String, extra: [String] = []) throws {
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["--store", store, "--port", "0", "--seal-seconds", "1"] + extra
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        // Wait (bounded) for its "listening on ...:PORT" line.
        let ready = DispatchSemaphore(value: 0)
        let reader = output.fileHandleForReading
        let found = Found()
        DispatchQueue.global().async {
            var text = ""
            while true {
                if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("listening on") }),
                   let port = line.split(separator: ":").last.flatMap({ Int($0) }) {
                    found.set(port)
                    break
                }
                let chunk = reader.availableData
                if chunk.isEmpty { break }
                text += String(decoding: chunk, as: UTF8.self)
            }
            ready.signal()
            // Keep draining, so that the server never blocks on a full pipe.
            while !reader.availableData.isEmpty {}
        }
        guard ready.wait(timeout: .now() + 120) == .success, let port = found.port else {
            process.terminate()
            throw LoadError("orders-server did not start listening (exit \(process.isRunning ? "none yet" : "\(process.terminationStatus)"))")
        }
        self.port = port
    }

    func kill(_ signal: Int32) -> Int32 {
        Glibc.kill(process.processIdentifier, signal)
        process.waitUntilExit()
        return process.terminationStatus
    }
}

/// The port the server's first line named, set once by the reading thread.
final class Found: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Int?

    var port: Int? {
        lock.lock()
        defer { lock.unlock() }
        return value
    }

    func set(_ port: Int) {
        lock.lock()
        value = port
        lock.unlock()
    }
}

func percentile(_ sorted: [Double], _ fraction: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    return sorted[min(sorted.count - 1, max(0, Int((Double(sorted.count) * fraction).rounded(.up)) - 1))]
}

/// Checks every acknowledged event against the restarted server; returns the failures.
func verify(_ acks: [Acknowledged], on client: Client) async throws -> [String] {
    var failures: [String] = []
    let byOrder = Dictionary(grouping: acks, by: \.order)
    for (order, events) in byOrder {
        let (status, data) = try await client.send("GET", "/orders/\(order)/history")
        guard status == 200, let versions = try JSONSerialization.jsonObject(with: data) as? [[String: Any]] else {
            failures.append("\(order): history answered \(status)")
            continue
        }
        var stored: [UInt64: String] = [:]
        for version in versions {
            if let sequence = (version["sequence"] as? NSNumber)?.uint64Value, let value = version["value_base64"] as? String,
               let bytes = Data(base64Encoded: value) {
                stored[sequence] = String(decoding: bytes, as: UTF8.self)
            }
        }
        for event in events where stored[event.sequence] != event.body {
            failures.append("\(order): the 201 for \"\(event.body)\" said sequence \(event.sequence); the history has \(stored[event.sequence].map { "\"\($0)\"" } ?? "nothing") there")
        }
        // And the point read as of the last acknowledged version returns that version.
        if let last = events.max(by: { $0.sequence < $1.sequence }) {
            let (status, body) = try await client.send("GET", "/orders/\(order)?asOf=\(last.sequence)")
            if status != 200 || String(decoding: body, as: UTF8.self) != last.body {
                failures.append("\(order): GET ?asOf=\(last.sequence) answered \(status) \"\(String(decoding: body, as: UTF8.self))\"")
            }
        }
    }
    return failures
}

func killTest(_ arguments: LoadArguments) async throws -> Int32 {
    let binary = arguments.server ?? (URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path + "/orders-server")
    let store = NSTemporaryDirectory() + "orders-kill-test-" + UUID().uuidString
    defer { try? FileManager.default.removeItem(atPath: store) }
    var failures: [String] = []
    var acknowledged: [Acknowledged] = []
    for round in 1 ... arguments.rounds {
        let server = try ServerProcess(binary: binary, store: store)
        let client = Client(base: "http://127.0.0.1:\(server.port)", connections: arguments.clients)
        // Kill while the clients are still posting: they run past the kill, and stop at their
        // first failed request.
        let load = Task { await drive(client, clients: arguments.clients, tag: "r\(round)", until: Date() + 600) }
        try await Task.sleep(for: .seconds(arguments.loadSeconds))
        _ = server.kill(SIGKILL)
        let (acks, latencies, _) = await load.value
        acknowledged += acks
        let sorted = latencies.sorted()
        print(String(format: "round %d: %d events answered 201 before SIGKILL (p50 %.1f ms, p99 %.1f ms)", round, acks.count,
                     percentile(sorted, 0.5) * 1e3, percentile(sorted, 0.99) * 1e3))
        if acks.isEmpty { failures.append("round \(round): no event was acknowledged before the kill") }

        let restarted = try ServerProcess(binary: binary, store: store)
        let checker = Client(base: "http://127.0.0.1:\(restarted.port)", connections: 8)
        let found = try await verify(acknowledged, on: checker)
        failures += found.map { "round \(round): \($0)" }
        print("round \(round): after the restart, \(acknowledged.count - found.count) of \(acknowledged.count) acknowledged events checked and readable")

        if round == arguments.rounds {
            failures += try await checkBadRequests(checker, knownSequence: acknowledged.first?.sequence ?? 1)
            let status = restarted.kill(SIGTERM)
            if status != 0 { failures.append("SIGTERM: orders-server exited \(status), not 0") }
            print("SIGTERM: orders-server shut down gracefully (exit \(status))")
        } else {
            _ = restarted.kill(SIGKILL)
        }
    }
    for failure in failures.prefix(20) { print("FAIL \(failure)") }
    print(failures.isEmpty ? "load-and-kill test passed: \(acknowledged.count) acknowledged events, all readable after \(arguments.rounds) SIGKILLs"
                           : "load-and-kill test FAILED: \(failures.count) failures")
    return failures.isEmpty ? 0 : 1
}

/// Bad requests get 4xx, a proof of a record is served.
func checkBadRequests(_ client: Client, knownSequence: UInt64) async throws -> [String] {
    var failures: [String] = []
    let checks: [(String, String, Data?, Int)] = [
        ("POST", "/orders/big/events", Data(count: 65 * 1024), 413),
        ("GET", "/proofs/not-a-number", nil, 400),
        ("GET", "/proofs/99999999999", nil, 404),
        ("GET", "/orders/never-written", nil, 404),
        ("GET", "/orders/x?asOf=yesterday", nil, 400),
        ("GET", "/no/such/route", nil, 404),
    ]
    for (method, path, body, expected) in checks {
        let (status, _) = try await client.send(method, path, body: body)
        if status != expected { failures.append("\(method) \(path): \(status), expected \(expected)") }
    }
    let (status, data) = try await client.send("GET", "/proofs/\(knownSequence)")
    let proof = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
    if status != 200 || (proof?["index"] as? NSNumber)?.uint64Value != knownSequence || (proof?["root"] as? String)?.count != 64 {
        failures.append("GET /proofs/\(knownSequence): \(status) \(String(decoding: data, as: UTF8.self))")
    }
    print("bad requests and proofs: \(checks.count + 1 - failures.count) of \(checks.count + 1) answered as expected")
    return failures
}

func loadOnly(_ arguments: LoadArguments, url: String) async -> Int32 {
    let client = Client(base: url, connections: arguments.clients)
    let started = Date()
    let (acks, latencies, errors) = await drive(client, clients: arguments.clients, tag: "load-\(Int(started.timeIntervalSince1970))",
                                                until: started + arguments.loadSeconds)
    let elapsed = Date().timeIntervalSince(started)
    let sorted = latencies.sorted()
    print(String(format: "%d events answered 201 in %.1f s: %.0f/s, p50 %.2f ms, p99 %.2f ms; %d errors", acks.count, elapsed,
                 Double(acks.count) / elapsed, percentile(sorted, 0.5) * 1e3, percentile(sorted, 0.99) * 1e3, errors))
    return errors == 0 ? 0 : 1
}

@main
struct OrdersLoad {
    static func main() async {
        do {
            let arguments = try LoadArguments(Array(CommandLine.arguments.dropFirst()))
            if arguments.killTest {
                exit(try await killTest(arguments))
            } else if arguments.failoverDrill {
                exit(try await failoverDrill(arguments))
            } else if let url = arguments.url {
                exit(await loadOnly(arguments, url: url))
            }
        } catch {
            FileHandle.standardError.write(Data("orders-load: \(error)\n".utf8))
            exit(2)
        }
    }
}
