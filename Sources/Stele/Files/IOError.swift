import SteleNative

/// A failed system call: which operation, on which path, and the `errno` it returned.
///
/// Every file-system error that reaches a caller carries these three facts, so that an
/// operator can tell "disk full" from "permission denied" from "I/O error" without a debugger.
/// Reaches callers inside ``SteleError/io(_:)`` and ``SteleError/writesDisabled(cause:)``.
public struct IOError: Sendable, Equatable, CustomStringConvertible {
    /// The system call or step that failed, such as `open`, `msync` or `fallocate`.
    public let operation: String
    /// The path the call was about (for descriptor calls, the path the descriptor was opened with).
    public let path: String
    /// The raw `errno` value.
    public let errno: Int32

    /// Creates an error from explicit parts (used by fault-injecting file systems in tests).
    public init(operation: String, path: String, errno: Int32) {
        self.operation = operation
        self.path = path
        self.errno = errno
    }

    package init(_ error: SystemError) {
        self.init(operation: error.operation, path: error.path, errno: error.errno)
    }

    /// True when the device is out of space (`ENOSPC`) or over quota (`EDQUOT`).
    public var isOutOfSpace: Bool { SystemError.isOutOfSpace(errno) }

    /// The operating system's text for `errno`.
    public var reason: String { SystemError.reason(errno) }

    /// `operation path: reason (errno N)`.
    public var description: String { "\(operation) \(path): \(reason) (errno \(errno))" }
}

/// Runs a call into the native layer, turning its ``SystemError`` into the engine's public
/// error: the one place where a system failure becomes ``SteleError/io(_:)``.
@inline(__always)
package func system<R>(_ call: () throws(SystemError) -> R) throws(SteleError) -> R {
    do { return try call() } catch { throw .io(IOError(error)) }
}
