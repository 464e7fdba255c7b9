import SteleNative

/// Records lost from a store's files, as its own evidence shows: its `reach` file, its stored
/// checkpoints and `tiles/state`, each written only after the records it speaks of were durable
/// (`docs/format.md`, "Reach and loss records").
public struct LostRecords: Sendable, Equatable, CustomStringConvertible {
    /// Records the log holds (sequence numbers `0 ..< held`).
    public var held: UInt64
    /// The fewest records the evidence says the log held.
    public var atLeast: UInt64
    /// Sequence numbers below this may have been handed out to callers (the writer may have
    /// appended up to the capacity of the last segment it created); nil when the evidence that
    /// would bound them is itself missing or damaged.
    public var upTo: UInt64?
    /// What each piece of evidence says, one sentence each, naming its file.
    public var findings: [String]

    /// A loud one-line summary with every finding, as the CLI prints it.
    public var description: String {
        "THE STORE HAS LOST RECORDS: the log holds \(held), the evidence says at least \(atLeast)"
            + (upTo.map { $0 > 0 ? " (sequence numbers up to \($0 - 1) may have been handed out)" : "" } ?? " (how many more is unknown)")
            + ": " + findings.joined(separator: "; ")
    }
}

/// What shows how far a log reached, apart from the log itself, checked against what it holds:
/// - `reach` (``LogReach``): the last segment the writer created and the records known durable;
/// - the stored checkpoints (`checkpoints/checkpoint`, `checkpoints/history/*`): signed only
///   over durable records;
/// - `tiles/state`: written only after the records it covers were synced;
/// - a loss record whose placeholders the log does not reach yet (a recording cut short).
///
/// Each is written only after the records it speaks of are durable, so after any crash the log
/// holds at least what every one of them says; a log that holds less lost records from its
/// files. The files are read (``gather(fs:layout:)``) *before* the log is listed: a live writer
/// may write newer evidence while a reader opens, and the log only grows, so evidence read first
/// never claims more than the log the reader then finds. Whoever can edit every one of these
/// files can hide a loss from them: only a checkpoint held elsewhere, or a witness, catches that
/// (`docs/durability.md`).
package enum LossEvidence {
    /// The evidence files as read at one moment.
    package struct Gathered: Sendable {
        var reach: LogReach.Found
        var checkpoint: (size: UInt64, path: String)?
        var tiles: UInt64?
    }

    package static func gather(fs: any FileSystem, layout: StoreLayout) -> Gathered {
        var checkpointed: (size: UInt64, path: String)?
        var paths = [layout.checkpoints + "/checkpoint"]
        for name in ((try? fs.listDirectory(layout.checkpoints + "/history")) ?? []) where !name.hasSuffix(".tmp") {
            paths.append(layout.checkpoints + "/history/" + name)
        }
        for path in paths {
            guard let bytes = try? fs.readWholeFile(path, limit: SignedNote.maxSize),
                  let body = try? CheckpointStore.body(of: String(decoding: bytes, as: UTF8.self), path: path) else { continue }
            if body.treeSize > (checkpointed?.size ?? 0) { checkpointed = (body.treeSize, path) }
        }
        return Gathered(reach: LogReach.read(fs: fs, directory: layout.root), checkpoint: checkpointed,
                        tiles: (try? TileState.read(fs: fs, directory: layout.tiles))??.size)
    }

    /// - Parameters:
    ///   - segments: index and first sequence number of every segment file the log holds, in order.
    ///   - expectReach: whether `reach` must exist (every store with config records has one; a
    ///     store created before them gets one when it is migrated).
    ///   - openLoss: the `end` of the log's last loss record, if the log does not reach it.
    /// - Returns: nil when nothing shows a loss.
    package static func check(_ evidence: Gathered, layout: StoreLayout, storeID: [UInt8], segmentSize: Int, held: UInt64,
                              segments: [(index: UInt64, first: UInt64)], expectReach: Bool, openLoss: UInt64?) -> LostRecords? {
        var findings: [String] = []
        var atLeast = held
        var upTo: UInt64? = held
        let lastIndex = segments.last?.index ?? 0
        switch evidence.reach {
        case .missing:
            if expectReach {
                findings.append("\(layout.reach) is missing: nothing shows how far the log reached, so records may have been removed with it")
                upTo = nil
            }
        case .damaged:
            findings.append("\(layout.reach) is damaged: nothing shows how far the log reached")
            upTo = nil
        case .valid(let reach) where reach.storeID != storeID:
            findings.append("\(layout.reach) belongs to store \(hexString(reach.storeID)), not this one")
            upTo = nil
        case .valid(let reach):
            let segmentPath = layout.segments + "/" + SegmentFiles.name(reach.segment)
            if reach.segment > lastIndex {
                findings.append("\(segmentPath) is missing: \(layout.reach) records that the writer created it (from sequence \(reach.first)), "
                    + "and the log ends with segment \(lastIndex)")
                atLeast = max(atLeast, reach.first)
            } else if let found = segments.first(where: { $0.index == reach.segment }), found.first != reach.first {
                findings.append("\(segmentPath) starts at sequence \(found.first), \(layout.reach) says \(reach.first): it was replaced")
                atLeast = max(atLeast, reach.first)
            }
            if reach.records > held {
                findings.append("\(layout.reach) records \(reach.records) durable records\(reach.open ? "" : " at a clean close")")
                atLeast = max(atLeast, reach.records)
            }
            // Open: the writer may have appended to the segment it names up to that segment's
            // capacity. A reach claiming more than that is not one a writer wrote.
            let (capacityEnd, overflow) = reach.first.addingReportingOverflow(LogReach.capacity(segmentSize: segmentSize))
            if overflow || reach.records > capacityEnd {
                findings.append("\(layout.reach) claims more records than its segment can hold: it was not written by a writer")
                upTo = nil
            } else {
                let bound = reach.open ? capacityEnd : reach.records
                upTo = reach.segment >= lastIndex ? max(held, bound, reach.records) : held
            }
        }
        if let checkpointed = evidence.checkpoint, checkpointed.size > held {
            findings.append("\(checkpointed.path) is a checkpoint of \(checkpointed.size) records")
            atLeast = max(atLeast, checkpointed.size)
        }
        if let tiles = evidence.tiles, tiles > held {
            findings.append("\(layout.tiles)/state records tiles for \(tiles) records")
            atLeast = max(atLeast, tiles)
        }
        if let openLoss, openLoss > held {
            findings.append("a loss record reserves sequence numbers up to \(openLoss - 1), and the log ends at \(held) (recording the loss was cut short)")
            atLeast = max(atLeast, openLoss)
        }
        guard !findings.isEmpty else { return nil }
        return LostRecords(held: held, atLeast: atLeast, upTo: upTo.map { max($0, atLeast) }, findings: findings)
    }
}
