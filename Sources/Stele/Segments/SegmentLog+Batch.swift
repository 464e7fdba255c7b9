import Dispatch
import Synchronization
import SteleNative

/// A large batch on both cores.
///
/// Appending a record is two chains of work that share only their inputs: the frame (encode,
/// checksum, staging and `pwrite`, offset table) with the key index, and the hashing (the
/// leaf's SHA-256, the Merkle tree's nodes, full tiles, the segment's content digest). For a
/// batch that fits in the active segment, the calling thread runs the first chain over every
/// record while a second thread runs the second; the calling thread, done with its frames,
/// then hashes leaves from the batch's end while the other still adds its own to the tree.
/// The call returns when both are done. Nothing else changes: the same bytes, the same tree, under the same store lock, so a reader or a
/// crash sees exactly what the one-thread path would leave. (Moving the key index to the
/// second thread was tried: that thread then became the longer one, and batches got slower.)
///
/// Both threads read the entries from a ``PackedBatch``: raw memory, no reference counting.
///
/// Why it is safe: the two threads touch disjoint state. The caller: `ActiveSegment`'s bytes,
/// `writeOffset` and `offsets`, and the log's `keys`, `retention`, `retentionRecords` and
/// `nextSequence`. The hasher: the segment's `contentHasher`, the log's `frontier` and
/// `tileBuilder` and the tile store (which locks its own state). Both: the batch's leaf slots,
/// each written by the one thread that claimed it. `tilesUnavailable` is only read.
extension SegmentLog {
    /// Below this many records (and ``parallelBatchMinimumBytes``) a batch is appended on one
    /// thread: handing work to a second costs a thread wake-up (microseconds), about the
    /// hashing of a few dozen small records.
    package static let parallelBatchMinimum = 64
    /// A batch of fewer but larger records goes to two threads from this many bytes of frames
    /// (SHA-256 at about 1.7 GB/s takes some 40 µs over them, well above a wake-up).
    package static let parallelBatchMinimumBytes = 64 << 10
    /// How many records ahead of its insert a key's table slot is prefetched.
    static let prefetchDistance = 16

    /// Before record `position` of `items` is indexed: starts loading the table slot of the key
    /// ``prefetchDistance`` records on (at the first record, of the first ones too), so that
    /// the misses overlap with the frames in between. Prefetching a whole batch up front did
    /// worse: the frames evicted the early slots again.
    @inline(__always)
    func prefetchKeys(of items: UnsafeBufferPointer<PackedBatch.Item>, before position: Int) {
        if position == 0 { for item in items.prefix(SegmentLog.prefetchDistance) { prefetchKey(hash: item.keyHash) } }
        if position + SegmentLog.prefetchDistance < items.count {
            prefetchKey(hash: items[position + SegmentLog.prefetchDistance].keyHash)
        }
    }

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
    /// Cost: as many ``append`` calls, but the hashing (about half an append's time for small
    /// values) overlaps with the rest, and the frames reach the page cache with one `pwrite` per
    /// megabyte instead of page faults (see ``ActiveSegment/beginStaging()``).
    /// With `syncFollows`, the frames' writeback is started as soon as they are written.
    package func appendInParallel(_ batch: PackedBatch, timestamp: Int64, syncFollows: Bool = false) -> ClosedRange<UInt64>? {
        guard SegmentLog.gainsFromParallel(count: batch.items.count, frameLength: batch.frameLength),
              let segment = active, segment.hasRoom(for: batch.frameLength) else {
            return nil
        }
        let first = nextSequence
        segment.beginStaging()
        batch.withFields { fields in
            let items = fields.items
            let leaves = LeafShare(fields: fields, first: first, timestamp: timestamp, frameLength: batch.frameLength,
                                   treeSize: frontier.size)
            let hashing = HashingHalf(log: self, segment: segment, leaves: leaves)
            if hashingThread == nil { hashingThread = try? HelperThread(name: "stele hashing") }
            // Without a thread of our own (the system refused one), a pooled one.
            let helper = hashingThread, done = DispatchGroup()
            if let helper {
                helper.post { hashing.run() }
            } else {
                DispatchQueue.global(qos: .userInitiated).async(group: done) { hashing.run() }
            }
            for (position, item) in items.enumerated() {
                prefetchKeys(of: items, before: position)
                let sequence = first + UInt64(position)
                let hint = KeyIndex.FrameHint(segment: segment.header.index, offset: segment.writeOffset)
                let namespace = fields[item.namespace], key = fields[item.key], value = fields[item.value]
                segment.writeFrame(type: item.type, flags: item.flags, sequence: sequence, timestamp: timestamp,
                                   namespace: namespace, key: key, stored: fields.stored(item), valueLength: value.count)
                index(type: item.type, sequence: sequence, timestamp: timestamp, namespace: namespace, key: fields[item.plainKey],
                      value: value, hint: hint, keyHash: item.keyHash)
            }
            nextSequence = first + UInt64(items.count)
            segment.endStaging()
            if syncFollows { segment.startWritebackNow() }
            // Leaves the hashing thread has not reached are hashed here, from the batch's end, while
            // it adds its own to the tree (for large values, SHA-256 is most of a batch's work).
            leaves.hashFromBack()
            // `fields` stays valid until the hasher is done with it: this closure does not return before.
            if let helper { helper.wait() } else { done.wait() }
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

    func run() {
        // Each claim's leaves go into the tree as soon as they are hashed, so the tree's work
        // overlaps with the frames; the leaves the writing thread hashed, at the batch's end,
        // follow once it is done with them. In sequence order either way.
        var added = 0
        while let claimed = leaves.claimFront() {
            leaves.hash(claimed)
            add(claimed)
            added = claimed.upperBound
        }
        leaves.waitForBack(from: added)
        while added < leaves.count {
            let claimed = leaves.claim(startingAt: added)
            add(claimed)
            added = claimed.upperBound
        }
    }

    /// Adds one claim's leaves: its whole subtree if it is an aligned one (hashed by whoever
    /// claimed it), else leaf by leaf.
    @inline(__always)
    private func add(_ claimed: Range<Int>) {
        for position in claimed { segment.absorb(leafHash: leaves[position]) }
        if let subtree = leaves.subtree(claimed) {
            log.addToTree(subtree)
        } else {
            for position in claimed { log.addToTree(leaves[position]) }
        }
    }
}

/// A batch's leaf hashes, computed by both threads. The hashing thread claims records from the
/// front, a few at a time, and adds each claim's leaves to the tree at once; the writing thread,
/// done with its frames, claims from the back. The unclaimed records are always one range
/// `[front, back)`, kept in one atomic word, so the two meet exactly once and every leaf the
/// hashing thread has not hashed itself lies after the last one it has.
///
/// Claims fall on multiples of `chunk` in the tree's leaf numbering (the first and last may be
/// shorter). For small values a claim is 64 records, and a whole one is a perfect subtree: its
/// claimer also hashes the subtree's 63 nodes, and the tree takes only its root (plus the
/// nodes its tiles keep), so that the tree's own hashing on the one thread that must add in
/// order drops from about one node per leaf to one per 64 leaves.
private final class LeafShare: @unchecked Sendable {
    private let fields: PackedBatch.RawFields
    private let first: UInt64
    private let timestamp: Int64
    /// Records per claim: about 64 KiB of them, one at a time for large values and at most 64
    /// small ones (a claim costs an atomic operation both cores contend for).
    private let chunk: Int
    private let leaves: SharedSlots<Digest>
    /// Records before the first claim boundary (the tree's size is not a multiple of `chunk`).
    private let head: Int
    /// The subtree of each whole aligned claim, by `(start - head) / chunk`.
    private let subtrees: SharedSlots<TileBuilder.Subtree?>
    /// The unclaimed range: `front | back << 32`.
    private let unclaimed: Atomic<UInt64>
    /// How many leaves the writing thread has hashed (from the back).
    private let hashedFromBack = Atomic<Int>(0)

    init(fields: PackedBatch.RawFields, first: UInt64, timestamp: Int64, frameLength: Int, treeSize: UInt64) {
        self.fields = fields
        self.first = first
        self.timestamp = timestamp
        let count = fields.items.count
        let chunk = max(1, min(TileBuilder.subtreeWidth, (64 << 10) / max(1, frameLength / max(1, count))))
        self.chunk = chunk
        head = min(count, Int((UInt64(chunk) - treeSize % UInt64(chunk)) % UInt64(chunk)))
        leaves = SharedSlots(count: count, repeating: .zero)
        subtrees = SharedSlots(count: chunk == TileBuilder.subtreeWidth ? count / chunk + 1 : 0, repeating: nil)
        // A batch fits in a segment, far below 2^32 records.
        unclaimed = Atomic(UInt64(count) << 32)
    }

    var count: Int { leaves.count }

    /// The leaf hash of the batch's record `position`; the hashing thread's own claims at once,
    /// the others after ``waitForBack(from:)``.
    subscript(position: Int) -> Digest { leaves[position] }

    /// The claim boundary after `position` (itself on one).
    private func boundary(after position: Int) -> Int {
        min(count, position < head ? head : position + chunk)
    }

    /// The claim that starts at `position` (a boundary), whoever took it.
    func claim(startingAt position: Int) -> Range<Int> {
        position ..< boundary(after: position)
    }

    /// Claims the next records from the front, or nil when none is left.
    func claimFront() -> Range<Int>? {
        claim { front, back in (front, min(back, boundary(after: front))) }
    }

    /// Hashes records claimed from the back until none is left (the writing thread).
    func hashFromBack() {
        // The boundary before `back`: `back` is the batch's end or a boundary itself.
        let pick = { [head, chunk] (front: Int, back: Int) -> (Int, Int) in
            let lower = back <= head ? 0 : head + (back - 1 - head) / chunk * chunk
            return (max(front, lower), back)
        }
        while let claimed = claim(pick) {
            hash(claimed)
            // Publishes these leaves to the hashing thread (acquire in `waitForBack`).
            hashedFromBack.add(claimed.count, ordering: .releasing)
        }
    }

    /// Takes `[lower, upper)` out of the unclaimed range, as `pick(front, back)` chooses from it.
    private func claim(_ pick: (Int, Int) -> (Int, Int)) -> Range<Int>? {
        var current = unclaimed.load(ordering: .relaxed)
        while true {
            let front = Int(current & 0xffff_ffff), back = Int(current >> 32)
            guard front < back else { return nil }
            let (lower, upper) = pick(front, back)
            let next = lower == front ? UInt64(upper) | UInt64(back) << 32 : UInt64(front) | UInt64(lower) << 32
            let (exchanged, original) = unclaimed.compareExchange(expected: current, desired: next, ordering: .relaxed)
            if exchanged { return lower ..< upper }
            current = original
        }
    }

    /// Hashes the claimed records' leaves and, for a whole aligned claim, their subtree.
    func hash(_ claimed: Range<Int>) {
        for position in claimed {
            let item = fields.items[position]
            leaves[position] = item.isEncrypted
                ? CanonicalEntry.encryptedLeafHash(type: item.type, flags: item.flags, sequence: first + UInt64(position),
                                                   timestamp: timestamp, namespace: fields[item.namespace].view,
                                                   keyBlob: fields[item.key].view, valueBlob: fields[item.value].view)
                : CanonicalEntry.leafHash(type: item.type, sequence: first + UInt64(position), timestamp: timestamp,
                                          namespace: fields[item.namespace].view, key: fields[item.key].view,
                                          value: fields[item.value].view)
        }
        if let slot = subtreeSlot(claimed) {
            subtrees[slot] = TileBuilder.Subtree(leaves: claimed.map { leaves[$0] })
        }
    }

    /// The slot of a whole aligned claim's subtree, or nil for other claims.
    private func subtreeSlot(_ claimed: Range<Int>) -> Int? {
        guard subtrees.count > 0, claimed.count == TileBuilder.subtreeWidth, claimed.lowerBound >= head else { return nil }
        return (claimed.lowerBound - head) / chunk
    }

    /// The subtree of a whole aligned claim, hashed with its leaves (same visibility as they).
    func subtree(_ claimed: Range<Int>) -> TileBuilder.Subtree? {
        subtreeSlot(claimed).flatMap { subtrees[$0] }
    }

    /// Waits until the writing thread has hashed every record from `front` on (all it claimed,
    /// once the hashing thread finds nothing left to claim): at most its last claim, about
    /// 64 KiB of hashing (tens of microseconds).
    func waitForBack(from front: Int) {
        while hashedFromBack.load(ordering: .acquiring) < count - front { Memory.yieldThread() }
    }
}
