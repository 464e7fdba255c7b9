import Dispatch

/// Runs `work`, which may block on the disk (a seal, a close, a mirror pass), on a thread of
/// Dispatch's global pool and resumes the caller with its result: no thread of Swift's
/// cooperative pool waits for it.
func offThePool<Value: Sendable>(_ work: @escaping @Sendable () throws -> Value) async throws -> Value {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global(qos: .utility).async { continuation.resume(with: Result { try work() }) }
    }
}
