#if canImport(Glibc)
import Glibc
#endif

/// A source of wall-clock time in nanoseconds since the Unix epoch.
///
/// The store never takes time from anywhere else, so tests can inject a clock; there is no
/// way to set the store's clock from the command line or the environment.
package protocol WallClock: Sendable {
    func nanosecondsSinceEpoch() -> Int64
}

/// `clock_gettime(CLOCK_REALTIME)`.
package struct SystemClock: WallClock {
    package init() {}
    package func nanosecondsSinceEpoch() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }
}

/// Blocks the calling thread for about `milliseconds` (`nanosleep`, resumed after signals).
package func sleepThread(milliseconds: Int) {
    var request = timespec(tv_sec: milliseconds / 1000, tv_nsec: (milliseconds % 1000) * 1_000_000)
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}
