import SteleNative
import Synchronization

/// Writeback starts (``FileSystem/startWriteback(_:offset:length:)``) run on another thread,
/// one at a time: the kernel building the I/O for megabytes of pages takes milliseconds that a
/// writer need not wait for. Not a durability point: nothing is promised until a sync returns.
///
/// Invariant: at most one start runs; ``start(_:)`` and ``join()`` wait for it first. An owner
/// that joins before it closes a descriptor therefore never has a start reach a file that
/// reused the descriptor's number.
package final class BackgroundWriteback: Sendable {
    private let fs: any FileSystem
    private let running = Mutex<BackgroundTask<Void>?>(nil)

    package init(fs: any FileSystem) {
        self.fs = fs
    }

    /// Starts writeback of each `(descriptor, offset, length)` span, after the previous start
    /// has returned. Cost: a thread hand-off; the system calls run on the other thread.
    package func start(_ spans: [(fd: FileDescriptor, offset: Int, length: Int)]) {
        join()
        let fs = self.fs
        let task = BackgroundTask { for span in spans { fs.startWriteback(span.fd, offset: span.offset, length: span.length) } }
        running.withLock { $0 = task }
    }

    /// Waits for a start still running (usually none is).
    package func join() {
        running.withLock { task in defer { task = nil }; return task }?.join()
    }
}
