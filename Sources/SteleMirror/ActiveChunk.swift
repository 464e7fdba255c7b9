import Stele

/// A chunk: records of a writer's active segment, shipped to the copy as they become durable,
/// between seals (``Mirror/Options/shipsActiveRecords``), so that the recovery point is a mirror
/// pass rather than a seal.
///
/// ```
/// chunks/<segment, 12 digits>/<first sequence, 20 digits>-<next sequence, 20 digits>
/// ```
/// The object holds the checkpoint that proves it, then the frames of records `first ..< next`
/// exactly as the segment file holds them (docs/format.md, "Frames"), written once with the same
/// retention as a segment:
/// ```
/// u32 LE  n      length of the note
/// n bytes        the writer's signed checkpoint note of `next` records (C2SP signed note)
/// ...            the frames
/// ```
/// One object, so that no crash between two uploads leaves records in the copy without the
/// signature that proves them (a standby could not install them, nor a promotion leave them out
/// without forking the log). The checkpoint is also copied as `checkpoints/<next>`. Chunks of a
/// segment are contiguous from its first record; once the segment is sealed and copied, its
/// `segments/` object supersedes them (a standby that installed them finds the sealed segment
/// beginning with the same bytes). A restore does not read chunks.
public struct ActiveChunk: Equatable, Sendable {
    public var segment: UInt64
    public var first: UInt64
    public var next: UInt64

    public static let prefix = "chunks/"

    public init(segment: UInt64, first: UInt64, next: UInt64) {
        self.segment = segment
        self.first = first
        self.next = next
    }

    /// The prefix of every chunk of `segment`.
    public static func prefix(of segment: UInt64) -> String { prefix + digits(segment, 12) + "/" }

    public var objectName: String { Self.prefix(of: segment) + Self.digits(first, 20) + "-" + Self.digits(next, 20) }

    /// The chunk an object name names; nil for any other name, and for `first >= next`.
    public init?(objectName name: String) {
        guard name.hasPrefix(Self.prefix) else { return nil }
        let parts = name.dropFirst(Self.prefix.count).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count == 12, let segment = UInt64(parts[0]) else { return nil }
        let range = parts[1].split(separator: "-", omittingEmptySubsequences: false)
        guard range.count == 2, range[0].count == 20, range[1].count == 20, let first = UInt64(range[0]), let next = UInt64(range[1]),
              first < next, parts[0].allSatisfy(\.isNumber), range[0].allSatisfy(\.isNumber), range[1].allSatisfy(\.isNumber) else { return nil }
        self.init(segment: segment, first: first, next: next)
    }

    /// The chunk object's bytes: `note`, a checkpoint of `next` records, then `frames`.
    static func encode(note: String, frames: [UInt8]) -> [UInt8] {
        let text = Array(note.utf8)
        let length = UInt32(text.count)
        return [UInt8(length & 0xff), UInt8(length >> 8 & 0xff), UInt8(length >> 16 & 0xff), UInt8(length >> 24)] + text + frames
    }

    /// The note and where the frames begin, or nil if `bytes` do not start with a note's length
    /// and a note of at most ``SignedNote/maxSize`` bytes.
    static func decode(_ bytes: [UInt8]) -> (note: String, framesStart: Int)? {
        guard bytes.count >= 4 else { return nil }
        let length = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16 | Int(bytes[3]) << 24
        guard length > 0, length <= SignedNote.maxSize, bytes.count >= 4 + length,
              let note = String(validating: bytes[4 ..< 4 + length], as: UTF8.self) else { return nil }
        return (note, 4 + length)
    }

    private static func digits(_ value: UInt64, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }

    /// How far the chunks in `names` reach, contiguous from `start` (the segment's first record,
    /// or where its sealed predecessors end): the sequence after the last record they hold.
    static func reach(_ chunks: [ActiveChunk], from start: UInt64) -> UInt64 {
        var end = start
        for chunk in chunks.sorted(by: { $0.first < $1.first }) where chunk.first <= end {
            end = max(end, chunk.next)
        }
        return end
    }
}
