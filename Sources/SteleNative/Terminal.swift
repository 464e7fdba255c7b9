#if canImport(Glibc)
import Glibc
#endif

/// What the CLI asks of its terminal: whether a progress line may be redrawn in place.
package enum Terminal {
    /// Whether standard error is a terminal (`isatty(2)`), rather than a file or a pipe.
    package static var standardErrorIsTerminal: Bool { isatty(STDERR_FILENO) == 1 }
}
