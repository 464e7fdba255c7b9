import CSteleSys
#if canImport(Glibc)
import Glibc
#endif

/// A named thread of Stele's own that runs one long-lived loop (the group commit's committer)
/// and ends when the loop returns.
///
/// Why not a dispatch queue: the loop sleeps and wakes thousands of times a second and must
/// never wait behind other work on a shared pool, nor occupy a thread of Swift's cooperative
/// pool (whose tasks it resumes).
package enum DedicatedThread {
    /// Starts `body` on a new, detached thread named `name` (as `top -H` shows its first 15 bytes).
    /// - Throws: ``SystemError`` if the system refuses a thread.
    package static func start(name: String, _ body: @escaping @Sendable () -> Void) throws(SystemError) {
        final class Start {
            let name: String
            let body: @Sendable () -> Void
            init(name: String, body: @escaping @Sendable () -> Void) { (self.name, self.body) = (name, body) }
        }
        let context = Unmanaged.passRetained(Start(name: name, body: body)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { argument in
            guard let argument else { return nil }
            let start = Unmanaged<Start>.fromOpaque(argument).takeRetainedValue()
            _ = stele_name_this_thread(start.name)
            start.body()
            return nil
        }, context)
        guard rc == 0 else {
            Unmanaged<Start>.fromOpaque(context).release()
            throw SystemError(operation: "pthread_create", path: name, errno: rc)
        }
        pthread_detach(thread)
    }
}
