import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Stele

/// One HTTP request, blocking the calling thread until the answer (the witness client and the
/// monitor run on threads of their own, never on the cooperative pool).
enum PlainHTTP {
    /// - Parameter timeout: for the whole request, not only between bytes: a server that
    ///   trickles its answer (a slow or hostile witness) cannot hold the caller longer.
    /// - Returns: the status and the body.
    /// - Throws: ``SteleError/invalidArgument(_:)`` naming the URL when no answer came in time.
    static func request(_ method: String, _ url: URL, body: Data? = nil, timeout: TimeInterval) throws -> (status: Int, body: Data) {
        var request = URLRequest(url: url, timeoutInterval: timeout)
        request.httpMethod = method
        request.httpBody = body
        request.cachePolicy = .reloadIgnoringLocalCacheData
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        configuration.timeoutIntervalForResource = timeout
        let session = URLSession(configuration: configuration)
        defer { session.finishTasksAndInvalidate() }
        let done = DispatchSemaphore(value: 0)
        let reply = Reply()
        let task = session.dataTask(with: request) { data, response, error in
            reply.set(data: data, status: (response as? HTTPURLResponse)?.statusCode, error: error)
            done.signal()
        }
        task.resume()
        // The session's own limits, and this one in case they are not honoured.
        if done.wait(timeout: .now() + timeout + 1) == .timedOut {
            task.cancel()
            throw SteleError.invalidArgument("\(url): no complete answer within \(timeout) s")
        }
        return try reply.get(url)
    }

    private final class Reply: @unchecked Sendable {
        private let lock = NSLock()
        private var value: (Data?, Int?, (any Error)?) = (nil, nil, nil)
        func set(data: Data?, status: Int?, error: (any Error)?) {
            lock.lock()
            value = (data, status, error)
            lock.unlock()
        }
        func get(_ url: URL) throws -> (status: Int, body: Data) {
            lock.lock()
            defer { lock.unlock() }
            if let error = value.2 { throw SteleError.invalidArgument("\(url): \(error.localizedDescription)") }
            return (value.1 ?? 0, value.0 ?? Data())
        }
    }
}
