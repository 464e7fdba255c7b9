import Foundation

/// Output helpers: stdout is buffered and flushed at exit; stderr is written at once.
enum Console {
    static func error(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    /// A line on stdout, written at once (for progress that a pipe should see as it happens).
    static func line(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }
}
