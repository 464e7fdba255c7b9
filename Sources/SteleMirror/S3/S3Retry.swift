import Foundation
import Stele

/// When and how often the S3 client tries a request again.
///
/// Only failures that say nothing about the request itself are retried: no HTTP answer at all
/// (connection refused or reset, timeout), `500`, `502`, `503`, `504`, and `429`/`SlowDown`
/// throttling. A `4xx` answer (`403 AccessDenied`, `400`, `404`, a lock refusal) is final. The
/// waits grow exponentially with full jitter (AWS's advice for many clients against one
/// service), capped, and the number of attempts is bounded: a dead endpoint fails in seconds,
/// not never. Each retry is reported to ``S3Client/onNotice``.
///
/// Which requests are retried is the caller's business: reads (`GET`, `HEAD`) and part uploads
/// are safe to send twice; a `PUT` of an object or the completion of a multipart upload is
/// retried by ``S3Target`` only after a `HEAD` shows the first attempt did not take effect,
/// because in a versioned bucket a second `PUT` would leave a second version behind.
public struct S3RetryPolicy: Sendable, Equatable {
    /// Attempts in all, the first included (1: never retry).
    public var maxAttempts: Int
    /// The first wait's upper bound; each later one doubles, up to ``maxDelay``.
    public var baseDelay: Duration
    public var maxDelay: Duration

    public init(maxAttempts: Int = 5, baseDelay: Duration = .milliseconds(200), maxDelay: Duration = .seconds(5)) {
        self.maxAttempts = max(1, maxAttempts)
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    public static let none = S3RetryPolicy(maxAttempts: 1)

    /// The wait before attempt `attempt + 1` (after `attempt` failed ones): uniform in
    /// `[0, min(maxDelay, baseDelay · 2^(attempt-1))]`.
    func delay(afterAttempt attempt: Int) -> Duration {
        let cap = min(maxDelay, baseDelay * (1 << min(max(0, attempt - 1), 20)))
        let nanoseconds = cap.components.seconds * 1_000_000_000 + cap.components.attoseconds / 1_000_000_000
        return .nanoseconds(Int64.random(in: 0 ... max(0, nanoseconds)))
    }

    /// Whether a response is worth another attempt.
    static func isRetryable(_ response: S3Client.Response) -> Bool {
        [500, 502, 503, 504, 429].contains(response.status)
            || (response.status == 400 && XMLFields.first("Code", in: response.body) == "RequestTimeout")
    }
}

extension S3Client {
    /// Sends `request`, again after a wait when the failure is retryable (``S3RetryPolicy``),
    /// until an answer that is not, or until ``retryPolicy``'s attempts are spent.
    /// - Returns: the last answer (a retryable one when the attempts ran out).
    /// - Throws: ``SteleError/mirror(_:)`` (``MirrorError/transport(_:)``) when the last attempt got no HTTP answer.
    package func sendRetrying(_ request: Request) throws -> Response {
        var attempt = 1
        while true {
            let outcome: Result<Response, SteleError>
            do {
                outcome = .success(try send(request))
            } catch SteleError.mirror(let error) {
                outcome = .failure(.mirror(error))
            }
            let reason: String
            switch outcome {
            case .success(let response) where !S3RetryPolicy.isRetryable(response):
                return response
            case .success(let response):
                if attempt >= retryPolicy.maxAttempts { return response }
                reason = S3Client.errorText(response)
            case .failure(let error):
                if attempt >= retryPolicy.maxAttempts { throw error }
                reason = "\(error)"
            }
            let wait = retryPolicy.delay(afterAttempt: attempt)
            retried(request, reason: reason, attempt: attempt, wait: wait)
            Thread.sleep(forTimeInterval: Double(wait.components.seconds) + Double(wait.components.attoseconds) * 1e-18)
            attempt += 1
        }
    }

    /// Counts and reports one retry.
    func retried(_ request: Request, reason: String, attempt: Int, wait: Duration) {
        retryCount.withLock { $0 += 1 }
        let milliseconds = wait.components.seconds * 1000 + wait.components.attoseconds / 1_000_000_000_000_000
        onNotice?("\(request.method) \(request.key.isEmpty ? "/" : request.key): \(reason); attempt \(attempt + 1) of "
            + "\(retryPolicy.maxAttempts) in \(milliseconds) ms")
    }
}
