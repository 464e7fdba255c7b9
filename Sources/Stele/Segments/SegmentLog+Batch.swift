import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A large batch on both cores.
///
/// Appending a record is two chains of work that share only their inputs: the frame (encode,
/// checksum, copy into the mapping, offset table) with the key index, and the hashing (the
/// leaf's SHA-256, the Merkle tree's nodes, full tiles, the segment's content digest). For a
/// batch that fits in the active segment, the calling thread runs the first chain over every
/// record while a second thread runs the second; then both prefault the pages the next batches
/// will write, the one done first taking more; the call returns when both are done. Nothing
/// else changes: the same bytes, the same tree, under the same store lock, so a reader or a
/// crash sees exactly what the one-thread path would leave. (Moving the key index to the
/// second thread was tried: that thread then became the longer one, and batches got slower.)
///
/// Both threads read the entries from a ``PackedBatch``: raw memory, no reference counting.
///
/// Why it is safe: the two threads touch disjoint state. The caller: `ActiveSegment`'s bytes,
/// `writeOffset` and `offsets`, and the log's `keys`, `retention`, `retentionRecords` and
/// `nextSequence`. The hasher: the segment's `contentHasher`, the log's `frontier` and
/// `tileBuilder` and the tile store (which locks its own state). Both: pages of the mapping past
/// the batch's end, handed out in chunks by an atomic counter. `tilesUnavailable` is only read.
extension SegmentLog {
    /// Below this many records (and ``parallelBatchMinimumBytes``) a batch is appended on one
    /// thread: handing work to a second costs a thread wake-up (microseconds), about the
    /// hashing of a few dozen small records.
    package static let parallelBatchMinimum = 64
    /// A batch of fewer but larger records goes to two threads from this many bytes of frames
    /// (SHA-256 at about 1.7 GB/s takes some 40 µs over them, well above a wake-up).
    package static let parallelBatchMinimumBytes = 64 << 10

    /// Whether a batch of `count` records with `frameLength` bytes of frames is worth a second
    /// thread (see ``parallelBatchMinimum``).
    package static func gainsFromParallel(count: Int, frameLength: Int) -> Bool {
        count >= parallelBatchMinimum || (count > 1 && frameLength >= parallelBatchMinimumBytes)
    }

    /// Appends the (validated) entries of `batch` as consecutive records with `timestamp`,
    /// hashing them on a second thread while this one writes their frames. Returns their
    /// sequence numbers, or nil having done nothing if the batch is too small to gain from a
    /// second thread (``gainsFromParallel(count:frameLength:)``) or does not fit in the active
    /// segment (then ``append`` takes its entries one by one).
    /// Cost: as many ``append`` calls, but the hashing (about a quarter of an append's time
    /// for small values) and the prefaulting of the next pages overlap with the rest.
    package func appendInParallel(_ batch: PackedBatch, timestamp: Int64) -> ClosedRange<UInt64>? {
        guard SegmentLog.gainsFromParallel(count: batch.items.count, frameLength: batch.frameLength),
              let segment = active, segment.hasRoom(for: batch.frameLength) else {
            return nil
        }
        let first = nextSequence
        let prefault = segment.reserveBatch(length: batch.frameLength).map { PrefaultShare(region: segment.region, range: $0) }
        batch.withFields { fields in
            // Every new key's table slot starts loading now, so that the misses overlap.
            for item in fields.items where item.type == .put || item.type == .tombstone { prefetchKey(hash: item.keyHash) }
            let leaves = LeafShare(fields: fields, first: first, timestamp: timestamp, frameLength: batch.frameLength)
            let hashing = HashingHalf(log: self, segment: segment, leaves: leaves, prefault: prefault)
            let done = DispatchGroup()
            DispatchQueue.global(qos: .userInitiated).async(group: done) { hashing.run() }
            for (position, item) in fields.items.enumerated() {
                let sequence = first + UInt64(position)
                let hint = KeyIndex.FrameHint(segment: segment.header.index, offset: segment.writeOffset)
                let namespace = fields[item.namespace], key = fields[item.key], value = fields[item.value]
                segment.writeFrame(type: item.type, flags: item.flags, sequence: sequence, timestamp: timestamp,
                                   namespace: namespace, key: key, stored: fields.stored(item), valueLength: value.count)
                index(type: item.type, sequence: sequence, namespace: namespace, key: key, value: value, hint: hint,
                      keyHash: item.keyHash)
            }
            nextSequence = first + UInt64(fields.items.count)
            // Leaves not yet claimed by the hashing thread are hashed here too (large values: the
            // frames are quickly written, and SHA-256 over them is the longer half).
            leaves.hash()
            // Whichever thread is done first takes more of the prefaulting (the kernel zeroing fresh
            // pages: as much work as the hashing for large values, a fifth of it for small ones).
            prefault?.run()
            // `fields` stays valid until the hasher is done with it: this closure does not return before.
            done.wait()
        }
        return first ... nextSequence - 1
    }
}

/// The hashing half of a parallel batch (see the extension's comment for why sharing the log
/// and its segment with the writing thread is safe).
private struct HashingHalf: @unchecked Sendable {
    let log: SegmentLog
    let segment: ActiveSegment
    let leaves: LeafShare
    let prefault: PrefaultShare?

    func run() {
        leaves.hash()
        leaves.waitForAll()
        // In sequence order, whoever hashed each leaf.
        for position in 0 ..< leaves.count {
            segment.absorb(leafHash: leaves[position])
            log.addToTree(leaves[position])
        }
        prefault?.run()
    }
}

/// A batch's leaf hashes, computed by both threads: each claims the next few records (an
/// atomic counter) until none is left. The writing thread joins in after its frames, so for
/// large values, where SHA-256 is most of a batch's work, both cores hash.
private final class LeafShare: @unchecked Sendable {
    private let fields: PackedBatch.RawFields
    private let first: UInt64
    private let timestamp: Int64
    /// Records per claim: about 64 KiB of them, one at a time for large values and at most 64
    /// small ones (a claim costs an atomic operation both cores contend for).
    private let chunk: Int
    private let leaves: SharedSlots<Digest>
    private let next = Atomic<Int>(0)
    private let finished = Atomic<Int>(0)

    init(fields: PackedBatch.RawFields, first: UInt64, timestamp: Int64, frameLength: Int) {
        self.fields = fields
        self.first = first
        self.timestamp = timestamp
        let count = fields.items.count
        chunk = max(1, min(64, (64 << 10) / max(1, frameLength / max(1, count))))
        leaves = SharedSlots(count: count, repeating: .zero)
    }

    var count: Int { leaves.count }

    /// The leaf hash of the batch's record `position`; only after ``waitForAll()``.
    subscript(position: Int) -> Digest { leaves[position] }

    /// Hashes claimed records until none is left to claim.
    func hash() {
        while true {
            let start = next.add(chunk, ordering: .relaxed).oldValue
            guard start < count else { return }
            let end = min(count, start + chunk)
            for position in start ..< end {
                let item = fields.items[position]
                leaves[position] = CanonicalEntry.leafHash(type: item.type, sequence: first + UInt64(position), timestamp: timestamp,
                                                           namespace: fields[item.namespace].view, key: fields[item.key].view,
                                                           value: fields[item.value].view)
            }
            // Publishes these leaves to the thread that adds them to the tree (acquire below).
            finished.add(end - start, ordering: .releasing)
        }
    }

    /// Waits until every record has been hashed, by either thread: at most the other
    /// thread's last claim, about 64 KiB of hashing (tens of microseconds).
    func waitForAll() {
        while finished.load(ordering: .acquiring) < count { sched_yield() }
    }
}

/// Pages past a batch's end to prefault, shared by its two threads in chunks: each takes the
/// next chunk until none is left, so the one that finishes its own half first does more.
private final class PrefaultShare: Sendable {
    private static let chunk = 256 << 10
    private let region: MappedRegion
    private let range: Range<Int>
    private let next: Atomic<Int>

    init(region: MappedRegion, range: Range<Int>) {
        self.region = region
        self.range = range
        next = Atomic(range.lowerBound)
    }

    func run() {
        while true {
            let start = next.add(PrefaultShare.chunk, ordering: .relaxed).oldValue
            guard start < range.upperBound else { return }
            region.prefaultForWriting(start ..< min(start + PrefaultShare.chunk, range.upperBound))
        }
    }
}
