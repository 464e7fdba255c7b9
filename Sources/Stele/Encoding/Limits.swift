import SteleNative

/// Size limits that callers see as typed errors (``SteleError/invalidArgument(_:)``).
public enum Limits {
    /// Longest key, in bytes.
    public static let maxKeyLength = 4096
    /// Longest namespace, in bytes (namespaces are 1-255 bytes of UTF-8 without NUL).
    public static let maxNamespaceLength = 255
    /// Smallest segment size accepted at `init`.
    public static let minSegmentSize = 64 * 1024
    /// Largest segment size: frame offsets within a segment fit in 32 bits.
    public static let maxSegmentSize = 1 << 31
    /// Default segment size.
    public static let defaultSegmentSize = 64 * 1024 * 1024
    /// Longest retention a lock, default or minimum may ask for: 100 years (36,525 days), as S3
    /// Object Lock allows. A date beyond it is a typing error, and would lock off-host copies
    /// (which follow the records' locks) for centuries.
    public static let maxRetention: Duration = .seconds(36_525 * 86_400)

    /// The largest value that fits in a segment of `segmentSize` bytes with the longest key and
    /// namespace, leaving room for the largest possible footer.
    public static func maxValueLength(segmentSize: Int) -> Int {
        segmentSize - SegmentHeader.size - SegmentFooter.maxSize - Frame.overhead - maxKeyLength - maxNamespaceLength
    }
}
