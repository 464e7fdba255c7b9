import SteleNative

/// How long copies of a range of records must be kept, for off-host mirrors.
public struct RetentionHorizon: Sendable, Equatable {
    /// The latest expiry of a compliance lock (store minimum included) on any version in range.
    public var compliance: Int64?
    /// The latest expiry of a governance lock on any version in range.
    public var governance: Int64?
    /// Whether any version in range is under legal hold now.
    public var legalHold = false

    /// No lock and no hold.
    public init() {}
}
