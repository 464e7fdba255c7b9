/// What a follower knows of the copy's segments and checkpoints between two full checks: the
/// last full listing, and what the passes since listed after its newest names. Objects are
/// named in the order they are written (segment numbers, tree sizes, zero-padded), so "what is
/// new" is "what sorts after the newest name seen".
///
/// Invariant: `segments` and `largestCheckpoint` describe every name up to `newestSegment` and
/// `newestCheckpoint` as the last full check and the listings since found them; an object
/// removed or overwritten among them is found only by the next full check, which starts over.
struct CopyInView {
    /// Segment numbers in the copy.
    var segments: Set<UInt64> = []
    /// The largest segment and checkpoint object names listed ("" before any).
    var newestSegment = ""
    var newestCheckpoint = ""
    /// The largest tree size among the copy's checkpoints.
    var largestCheckpoint: UInt64 = 0
    /// When the last full check that found nothing began; nil: the next pass makes one.
    var checkedAt: ContinuousClock.Instant?
}
