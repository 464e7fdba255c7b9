import SteleNative

/// `reach`: how far the log is known to have reached, kept beside it so that losing records
/// from the files (an active segment deleted, the last segments removed, frames cut off) is
/// never silent, and their sequence numbers are never handed out again.
///
/// One line, written atomically (temporary file, fsync, rename, directory fsync):
/// ```
/// stele-reach 1 <store uuid> <open|closed> <segment> <first> <records> <XXH3 of the text before it, 16 hex>\n
/// ```
/// - `segment`: the highest segment file the writer has created, and `first` its first
///   sequence number;
/// - `records`: records known durable when the line was written;
/// - `closed`: written at a clean close, so the log held exactly `records`; `open`: a writer had
///   the store, so records up to the capacity of `segment` may have been acknowledged since.
///
/// Invariant: the file never claims more than the disk holds. It is written after the segment it
/// names was created and made durable (at creation, at every rotation before any record goes in,
/// at every writable open after recovery, and at a clean close after the final sync), so a power
/// cut can leave it behind the log, never ahead. A log that holds less than it claims lost records.
package struct LogReach: Equatable, Sendable {
    package static let fileName = "reach"

    package var storeID: [UInt8]
    package var open: Bool
    package var segment: UInt64
    package var first: UInt64
    package var records: UInt64

    package init(storeID: [UInt8], open: Bool, segment: UInt64, first: UInt64, records: UInt64) {
        self.storeID = storeID
        self.open = open
        self.segment = segment
        self.first = first
        self.records = records
    }

    private var body: String {
        "stele-reach 1 \(hexString(storeID)) \(open ? "open" : "closed") \(segment) \(first) \(records)"
    }

    private static func checksum(_ body: String) -> String {
        let digits = String(xxh3(Array(body.utf8)), radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    package var encoded: [UInt8] { Array((body + " " + LogReach.checksum(body) + "\n").utf8) }

    /// Writes the file in `directory` (the store's root), atomically and durably.
    package func write(fs: any FileSystem, directory: String) throws {
        try fs.writeAtomically(encoded, to: directory + "/" + LogReach.fileName, permissions: 0o644, directory: directory)
    }

    /// Parses the file's bytes; nil if they are not a valid reach line.
    package static func decode(_ bytes: [UInt8]) -> LogReach? {
        guard let text = String(validating: bytes, as: UTF8.self), text.hasSuffix("\n") else { return nil }
        let parts = text.dropLast().split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 8, parts[0] == "stele-reach", parts[1] == "1", let id = bytesFromHex(parts[2]), id.count == 16,
              parts[3] == "open" || parts[3] == "closed", let segment = UInt64(parts[4]), segment >= 1,
              let first = UInt64(parts[5]), let records = UInt64(parts[6]), records >= first else { return nil }
        let reach = LogReach(storeID: id, open: parts[3] == "open", segment: segment, first: first, records: records)
        guard reach.body == parts[0 ..< 7].joined(separator: " "), parts[7] == checksum(reach.body) else { return nil }
        return reach
    }

    /// The file in `directory`: `.missing`, `.damaged`, or the reach it records.
    package static func read(fs: any FileSystem, directory: String) -> Found {
        guard let bytes = try? fs.readWholeFile(directory + "/" + fileName, limit: 4096) else { return .missing }
        return decode(bytes).map(Found.valid) ?? .damaged
    }

    package enum Found: Equatable {
        case missing, damaged
        case valid(LogReach)
    }

    /// Most records a segment of `segmentSize` bytes can hold: the bound on what a writer may
    /// have appended to the segment `reach` names since it was written (the smallest frame, with
    /// no namespace, key or value, is ``Frame/overhead`` bytes).
    package static func capacity(segmentSize: Int) -> UInt64 {
        UInt64(max(0, segmentSize - SegmentHeader.size - SegmentFooter.maxSize) / Frame.overhead)
    }
}
