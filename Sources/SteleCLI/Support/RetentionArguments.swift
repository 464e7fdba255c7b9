import ArgumentParser
import Foundation
import Stele

/// Parses `90s`, `15m`, `12h`, `30d`.
func parseDuration(_ text: String) throws -> Duration {
    guard let duration = RetentionText.duration(text) else { throw ValidationError(RetentionText.durationHint(text)) }
    return duration
}

/// An ISO 8601 date as ns since the epoch.
func parseDate(_ text: String) throws -> Int64 {
    guard let date = RetentionText.date(text) else { throw ValidationError(RetentionText.dateHint(text)) }
    return date
}

/// A retain-until date from `--until` or `--for` (from now).
func retainUntil(until: String?, for duration: String?) throws -> Int64 {
    switch (until, duration) {
    case (let until?, nil): return try parseDate(until)
    case (nil, let duration?):
        let now = Int64(Date().timeIntervalSince1970 * 1e9)
        guard let end = RetentionText.after(now, try parseDuration(duration)) else { throw ValidationError(RetentionText.tooLateHint(duration)) }
        return end
    default: throw ValidationError("give exactly one of --until and --for")
    }
}
