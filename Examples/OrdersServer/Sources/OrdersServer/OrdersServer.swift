// orders-server: an orders API on Stele. Every order event is a new version of the order's key;
// nothing is overwritten, every version is readable, and any version can be proved to be in the
// log (RFC 6962 inclusion proof).
//
//   POST /orders/{id}/events       body: the event (any bytes, at most 64 KiB)
//                                  201 {"sequence": n, "durable": true} once the event is durable
//   GET  /orders/{id}[?asOf=n]     the order's latest event (as of sequence n): 200 with the bytes,
//                                  header stele-sequence; 404 if none
//   GET  /orders/{id}/history      every version: [{"sequence", "timestamp", "value_base64"}]
//   GET  /proofs/{sequence}        {"index", "tree_size", "root", "hashes"} (hex), against the
//                                  tree of every durable record (never one a crash could undo)
//
// Bad input is a 4xx with a message (an id over 4,096 bytes, a body over 64 KiB, a sequence that
// is not a number or not in the log); a store that stopped taking writes (a failed sync) is a 503.
//
//   orders-server --store DIR [--host 127.0.0.1] [--port 8080] [--seal-seconds 5]
//   (failover: --checkpoint-key and --mirror-to on a primary, --standby-of on a standby: Failover.swift)
// --port 0 takes a free port; the line "listening on [IPv4]127.0.0.1/127.0.0.1:PORT" says which.
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ServiceLifecycle
import Stele
import SteleService

@main
struct OrdersServer {
    static func main() async {
        do {
            try await serve(ServerArguments(Array(CommandLine.arguments.dropFirst())))
        } catch {
            // A store that cannot be opened, a port in use, bad arguments: said, exit 1.
            FileHandle.standardError.write(Data("orders-server: \(error)\n".utf8))
            exit(1)
        }
    }

    static func serve(_ arguments: ServerArguments) async throws {
        var logger = Logger(label: "orders-server")
        logger.logLevel = .info
        // Open (or create) before serving; a store that cannot be opened stops the server here.
        let served = try ServedStore.open(arguments, logger: logger)
        let store = served.store
        logger.info("store open", metadata: ["records": "\(store.recordCount)", "recovery_clean": "\(store.recovery.isClean)"])

        let app = Application(
            router: OrdersAPI(store: store, promote: PromoteRoute(standby: served.standby)).router(),
            configuration: .init(address: .hostname(arguments.host, port: arguments.port), serverName: "orders-server"),
            onServerRunning: { channel in
                // One line for whoever started the server (the load test waits for it).
                FileHandle.standardOutput.write(Data("listening on \(channel.localAddress.map { "\($0)" } ?? "?")\n".utf8))
            },
            logger: logger
        )
        // Services shut down in reverse order: the HTTP server stops taking requests first, then
        // the store closes, after every write it acknowledged is durable.
        let group = ServiceGroup(configuration: .init(
            services: served.services + [app],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
    }
}

/// The handlers: each maps the store's answers and errors to HTTP.
struct OrdersAPI: Sendable {
    let store: Store
    let promote: PromoteRoute
    static let namespace = "orders"
    static let maxEventBytes = 64 * 1024

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.post("orders/:id/events") { request, context in try await append(request, context) }
        router.get("orders/:id") { request, context in try current(request, context) }
        router.get("orders/:id/history") { request, context in try history(request, context) }
        router.get("proofs/:sequence") { request, context in try proof(request, context) }
        promote.add(to: router)
        return router
    }

    /// 201 only after `try await store.put` returned: the event is durable (`.everyBatch`).
    func append(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let key = try orderKey(context)
        var request = request
        let body = try await request.collectBody(upTo: Self.maxEventBytes)
        let receipt = try await mapped { try await store.put(namespace: Self.namespace, key: key, value: Array(buffer: body)) }
        return json(.created, #"{"sequence":\#(receipt.sequences.upperBound),"durable":\#(receipt.durability == .durable)}"#)
    }

    func current(_ request: Request, _ context: BasicRequestContext) throws -> Response {
        let key = try orderKey(context)
        let asOf: UInt64?
        if let text = request.uri.queryParameters.get("asOf") {
            guard let value = UInt64(text) else { throw HTTPError(.badRequest, message: "asOf must be a sequence number") }
            asOf = value
        } else {
            asOf = nil
        }
        guard let version = try mappedSync({ try store.get(namespace: Self.namespace, key: key, asOf: asOf) }), let value = version.value else {
            throw HTTPError(.notFound, message: "no such order")
        }
        var headers = HTTPFields()
        headers[.contentType] = "application/octet-stream"
        if let name = HTTPField.Name("stele-sequence") { headers[name] = "\(version.sequence)" }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: value)))
    }

    func history(_ request: Request, _ context: BasicRequestContext) throws -> Response {
        let key = try orderKey(context)
        let versions = try mappedSync { try store.history(namespace: Self.namespace, key: key) }
        guard !versions.isEmpty else { throw HTTPError(.notFound, message: "no such order") }
        let items = versions.map { version in
            #"{"sequence":\#(version.sequence),"timestamp":\#(version.timestamp),"value_base64":"# +
                (version.value.map { "\"" + Data($0).base64EncodedString() + "\"" } ?? "null") + "}"
        }
        return json(.ok, "[" + items.joined(separator: ",") + "]")
    }

    func proof(_ request: Request, _ context: BasicRequestContext) throws -> Response {
        guard let text = context.parameters.get("sequence"), let sequence = UInt64(text) else {
            throw HTTPError(.badRequest, message: "the sequence must be a number")
        }
        let durable = store.durableRecordCount
        guard sequence < durable else { throw HTTPError(.notFound, message: "no durable record \(sequence)") }
        let proof = try mappedSync { try store.inclusionProof(index: sequence, treeSize: durable) }
        let hashes = proof.hashes.map { "\"\($0.hex)\"" }.joined(separator: ",")
        return json(.ok, #"{"index":\#(proof.index),"tree_size":\#(proof.treeSize),"root":"\#(proof.root.hex)","hashes":[\#(hashes)]}"#)
    }

    private func orderKey(_ context: BasicRequestContext) throws -> [UInt8] {
        guard let id = context.parameters.get("id"), !id.isEmpty, id.utf8.count <= 4096 else {
            throw HTTPError(.badRequest, message: "an order id is 1-4096 bytes")
        }
        return Array(id.utf8)
    }

    private func json(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

/// The store's errors as HTTP: the caller's mistakes are 4xx, a store that cannot write is 503.
private func httpError(_ error: SteleError) -> HTTPError {
    switch error {
    case .invalidArgument(let message): HTTPError(.badRequest, message: message)
    case .proof: HTTPError(.notFound, message: "\(error)")
    case .writesDisabled, .closed, .readOnly, .fenced: HTTPError(.serviceUnavailable, message: "the store is not taking writes: \(error)")
    default: HTTPError(.internalServerError, message: "\(error)")
    }
}

private func mapped<T>(_ body: () async throws -> T) async throws -> T {
    do { return try await body() } catch let error as SteleError { throw httpError(error) }
}

private func mappedSync<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let error as SteleError { throw httpError(error) }
}

struct ServerArguments {
    var store = ""
    var host = "127.0.0.1"
    var port = 8080
    var sealSeconds = 5
    var checkpointKey: String?
    var checkpointMilliseconds: Int?
    var mirrorTo: String?
    var standbyOf: String?
    var verifierKey: String?
    var checkpoint: String?

    init(_ arguments: [String]) throws {
        var rest = arguments[...]
        while let argument = rest.popFirst() {
            guard let value = rest.popFirst() else { throw UsageError("\(argument) needs a value") }
            switch argument {
            case "--store": store = value
            case "--host": host = value
            case "--port": port = try number(value, argument)
            case "--seal-seconds": sealSeconds = try number(value, argument)
            case "--checkpoint-key": checkpointKey = value
            case "--checkpoint-ms": checkpointMilliseconds = try number(value, argument)
            case "--mirror-to": mirrorTo = value
            case "--standby-of": standbyOf = value
            case "--verifier-key": verifierKey = value
            case "--checkpoint": checkpoint = value
            default: throw UsageError("unknown argument \(argument)")
            }
        }
        guard !store.isEmpty else {
            throw UsageError("usage: orders-server --store DIR [--host H] [--port N] [--seal-seconds N] "
                + "[--checkpoint-key KEY [--checkpoint-ms N] --mirror-to COPY | --standby-of COPY --verifier-key PUB [--checkpoint TRUSTED]]")
        }
    }

    private func number(_ text: String, _ name: String) throws -> Int {
        guard let value = Int(text), value >= 0 else { throw UsageError("\(name) takes a number") }
        return value
    }
}

struct UsageError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
