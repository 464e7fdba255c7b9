import ArgumentParser
import Stele

/// Parses `none`, `batch` or `interval:MS` into a commit policy.
func parseCommitPolicy(_ text: String) throws -> CommitPolicy {
    switch text {
    case "none": return .none
    case "batch": return .everyBatch
    default:
        if text.hasPrefix("interval:"), let ms = Int(text.dropFirst("interval:".count)), ms > 0 {
            return .interval(.milliseconds(ms))
        }
        throw ValidationError("--sync must be none, batch or interval:MS (got \(text))")
    }
}
