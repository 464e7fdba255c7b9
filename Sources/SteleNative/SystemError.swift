#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed system call: which operation, on which path, and the `errno` it returned.
///
/// Every call in this module that can fail throws this one type (typed `throws`), so that the
/// engine turns it into its public error at the single place where it calls down
/// (`PosixFileSystem` and a few helpers), and the compiler shows where that is.
package struct SystemError: Error, Sendable, Equatable {
    /// The system call or step that failed, such as `open`, `msync` or `fallocate`.
    package let operation: String
    /// The path the call was about (for descriptor calls, the path the descriptor was opened with).
    package let path: String
    /// The raw `errno` value.
    package let errno: Int32

    package init(operation: String, path: String, errno: Int32) {
        self.operation = operation
        self.path = path
        self.errno = errno
    }

    /// Whether `errno` says the device is out of space (`ENOSPC`) or over quota (`EDQUOT`).
    package static func isOutOfSpace(_ errno: Int32) -> Bool { errno == ENOSPC || errno == EDQUOT }

    /// The operating system's text for `errno`.
    package static func reason(_ errno: Int32) -> String { String(cString: strerror(errno)) }
}

/// Runs a call that returns -1 and sets `errno` on failure, retrying on `EINTR`.
@inline(__always)
func retrying<T: BinaryInteger>(_ operation: String, _ path: String, _ call: () -> T) throws(SystemError) -> T {
    while true {
        let result = call()
        if result >= 0 { return result }
        let err = errno
        if err == EINTR { continue }
        throw SystemError(operation: operation, path: path, errno: err)
    }
}
