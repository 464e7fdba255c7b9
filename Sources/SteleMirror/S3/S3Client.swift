import Foundation
import Synchronization
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Stele
import SteleNative

/// A minimal S3 REST client: path-style requests signed with SigV4, sent with URLSession and
/// waited for (the calls block the calling thread; the mirror is a batch job), tried again
/// after failures that say nothing about the request (``S3RetryPolicy``).
///
/// It knows only the requests the mirror needs. There is deliberately no call that deletes an
/// object or shortens its retention: the type offers no way to do what the mirror must never do
/// (the one `DELETE` it sends aborts a multipart upload of its own that failed, which removes
/// stored parts, never an object).
/// (``send(_:)`` is package-internal, for tests that check the server refuses such requests.)
public final class S3Client: @unchecked Sendable {
    /// A response: status, lower-cased headers, body.
    public struct Response: Sendable {
        public var status: Int
        public var headers: [String: String]
        public var body: [UInt8]
    }

    /// One request: method, object key (empty for the bucket), query, extra headers, body.
    package struct Request {
        var method: String
        var key: String
        var query: [(String, String)] = []
        var headers: [String: String] = [:]
        var body: [UInt8] = []
    }

    public let endpoint: URL
    public let bucket: String
    let signer: SigV4Signer
    private let session: URLSession
    /// How failed requests are tried again (``S3RetryPolicy``).
    public let retryPolicy: S3RetryPolicy
    /// Told, one line each, of every retry and of an abandoned multipart upload it could not
    /// abort (the CLI prints them on stderr).
    public let onNotice: (@Sendable (String) -> Void)?
    /// Retries made so far (tests check that a fault was met by a retry).
    package let retryCount = Mutex(0)
    /// The last 10,000 requests sent, as "METHOD key?query" (tests check what the mirror asks for).
    package var log: [String] { logLock.withLock { requests } }
    private var requests: [String] = []
    private let logLock = NSLock()

    /// - Parameters:
    ///   - endpoint: e.g. `https://s3.eu-west-1.amazonaws.com` or `http://127.0.0.1:9000`.
    ///   - timeout: how long a request may go without receiving data before it counts as failed
    ///     (and, as a failure without an answer, is retried).
    public init(endpoint: URL, bucket: String, signer: SigV4Signer, retryPolicy: S3RetryPolicy = S3RetryPolicy(),
                timeout: Duration = .seconds(60), onNotice: (@Sendable (String) -> Void)? = nil) {
        self.endpoint = endpoint
        self.bucket = bucket
        self.signer = signer
        self.retryPolicy = retryPolicy
        self.onNotice = onNotice
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) * 1e-18
        session = URLSession(configuration: configuration)
    }

    /// Sends `request` once and waits for the answer (``sendRetrying(_:)`` tries again).
    /// - Throws: ``SteleError/mirror(_:)`` (``MirrorError/transport(_:)``) when no HTTP answer came back.
    package func send(_ request: Request) throws -> Response {
        // Path-style: the endpoint's own path (if any), the bucket, the key.
        let base = endpoint.path.hasSuffix("/") ? String(endpoint.path.dropLast()) : endpoint.path
        let path = base + "/" + bucket + (request.key.isEmpty ? "" : "/" + request.key)
        var components = URLComponents()
        components.percentEncodedPath = path.split(separator: "/", omittingEmptySubsequences: false)
            .map { SigV4Signer.uriEncode(String($0)) }.joined(separator: "/")
        if !request.query.isEmpty {
            components.percentEncodedQuery = request.query.map { SigV4Signer.uriEncode($0.0) + "=" + SigV4Signer.uriEncode($0.1) }
                .joined(separator: "&")
        }
        guard let url = components.url(relativeTo: endpoint)?.absoluteURL, let host = endpoint.host else {
            throw SteleError.mirror(.transport("bad endpoint \(endpoint)"))
        }
        let amzDate = Self.amzDate(Date())
        let payloadHash = hexString(sha256(request.body))
        var headers = request.headers
        // As the HTTP client will send it: IPv6 in brackets, the port only when not the default.
        let hostName = host.contains(":") ? "[\(host)]" : host
        let defaultPort = endpoint.scheme == "https" ? 443 : 80
        headers["host"] = endpoint.port.map { $0 == defaultPort ? hostName : "\(hostName):\($0)" } ?? hostName
        headers["x-amz-date"] = amzDate
        headers["x-amz-content-sha256"] = payloadHash
        let authorization = signer.authorization(method: request.method, path: path, query: request.query, headers: headers,
                                                 amzDate: amzDate, payloadHash: payloadHash)
        var urlRequest = URLRequest(url: url)
        urlRequest.httpMethod = request.method
        for (name, value) in headers where name != "host" { urlRequest.setValue(value, forHTTPHeaderField: name) }
        urlRequest.setValue(authorization, forHTTPHeaderField: "Authorization")
        // URLSession would call a body form data, which some servers then parse as a form.
        if urlRequest.value(forHTTPHeaderField: "content-type") == nil {
            urlRequest.setValue("application/octet-stream", forHTTPHeaderField: "Content-Type")
        }
        if !request.body.isEmpty || request.method == "PUT" || request.method == "POST" { urlRequest.httpBody = Data(request.body) }
        logLock.withLock {
            if requests.count >= 10_000 { requests.removeFirst(requests.count - 9_999) }
            requests.append("\(request.method) \(request.key)\(request.query.isEmpty ? "" : "?" + request.query.map { "\($0.0)=\($0.1)" }.joined(separator: "&"))")
        }

        final class Outcome: @unchecked Sendable { var response: Response?; var error: String? }
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        session.dataTask(with: urlRequest) { data, response, error in
            if let http = response as? HTTPURLResponse {
                var fields: [String: String] = [:]
                for (name, value) in http.allHeaderFields {
                    if let name = name as? String, let value = value as? String { fields[name.lowercased()] = value }
                }
                outcome.response = Response(status: http.statusCode, headers: fields, body: data.map { Array($0) } ?? [])
            } else {
                outcome.error = error.map { "\($0.localizedDescription)" } ?? "no HTTP response"
            }
            done.signal()
        }.resume()
        done.wait()
        guard let response = outcome.response else { throw SteleError.mirror(.transport("\(request.method) \(url): \(outcome.error ?? "no response")")) }
        return response
    }

    /// `YYYYMMDDTHHMMSSZ` in UTC.
    static func amzDate(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return formatter.string(from: date)
    }

    /// The S3 error code and message in an error body, for messages.
    static func errorText(_ response: Response) -> String {
        let text = String(decoding: response.body, as: UTF8.self)
        func field(_ name: String) -> String? {
            guard let start = text.range(of: "<\(name)>"), let end = text.range(of: "</\(name)>", range: start.upperBound ..< text.endIndex) else { return nil }
            return String(text[start.upperBound ..< end.lowerBound])
        }
        return "HTTP \(response.status)" + (field("Code").map { " \($0)" } ?? "") + (field("Message").map { ": \($0)" } ?? "")
    }
}
