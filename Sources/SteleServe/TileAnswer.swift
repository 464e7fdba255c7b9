import Stele

/// A tile server's answer to one request, independent of the HTTP library: status, headers the
/// spec asks for, and the body.
public struct TileAnswer: Sendable, Equatable {
    public var status: Int
    public var contentType: String
    public var cacheControl: String?
    public var body: [UInt8]

    /// A full or partial tile, or an entry bundle, never changes once served (c2sp.org/tlog-tiles:
    /// "immutable, so its caching headers SHOULD be long-lived").
    static let immutable = "public, max-age=31536000, immutable"
    /// The checkpoint changes: "SHOULD prevent caching beyond a few seconds".
    static let mutable = "no-cache"

    /// Entry bundles change once, when `stele purge` removes a payload after its retention (the
    /// bundle becomes a 410): a cache may keep one a day, not a year.
    static let entries = "public, max-age=86400"

    /// Errors are not cached: a tile a newer checkpoint covers must not stay a 404 in a cache.
    static func error(_ status: Int, _ message: String) -> TileAnswer {
        TileAnswer(status: status, contentType: "text/plain; charset=utf-8", cacheControl: "no-store", body: Array((message + "\n").utf8))
    }
}

extension TileLog {
    /// The largest entry an entry bundle can hold: its length is a big-endian uint16.
    public static let maxBundledEntry = 65_535

    /// The answer to a request for `resource`: only what the published checkpoint covers.
    ///
    /// 200 with the bytes; 404 for what the checkpoint does not cover (or before there is one);
    /// 410 for an entry bundle holding a record whose payload was purged (its leaf hash stays in
    /// the tree, its entry is gone); 501 for a bundle holding an entry over 65,535 bytes, which
    /// the bundle format cannot carry; 500 if the store cannot be read.
    public func answer(_ resource: TileResource) -> TileAnswer {
        guard let published = current else { return .error(404, "the log has no signed checkpoint yet") }
        let size = published.checkpoint.treeSize
        switch resource {
        case .checkpoint:
            return TileAnswer(status: 200, contentType: "text/plain; charset=utf-8", cacheControl: TileAnswer.mutable,
                              body: Array(published.note.utf8))
        case .tile(let level, let index, let width):
            guard Self.covers(size, level: level, index: index, width: width ?? 256) else {
                return .error(404, "\(resource) is not in the tree of the checkpoint (size \(size))")
            }
            do {
                let hashes = try published.store.tileHashes(level: level, index: index, width: width ?? 256)
                return TileAnswer(status: 200, contentType: "application/octet-stream", cacheControl: TileAnswer.immutable,
                                  body: hashes.flatMap(\.bytes))
            } catch {
                return .error(500, "\(resource): \(error)")
            }
        case .entries(let index, let width):
            guard Self.covers(size, level: 0, index: index, width: width ?? 256) else {
                return .error(404, "\(resource) is not in the tree of the checkpoint (size \(size))")
            }
            return bundle(published.store, first: index * 256, count: width ?? 256, resource)
        }
    }

    /// Whether a tree of `size` leaves holds hashes `256·index ..< 256·index + width` at `level`.
    static func covers(_ size: UInt64, level: Int, index: UInt64, width: Int) -> Bool {
        guard level < 8 else { return false }
        let available = size >> UInt64(8 * level)
        let (first, overflow) = index.multipliedReportingOverflow(by: 256)
        return !overflow && first <= available && UInt64(width) <= available - first
    }

    private func bundle(_ store: Store, first: UInt64, count: Int, _ resource: TileResource) -> TileAnswer {
        var body: [UInt8] = []
        do {
            for sequence in first ..< first + UInt64(count) {
                // Read from the frame: an encrypted store's entries are its blobs (no key here).
                guard let entry = try store.canonicalEntry(at: sequence) else {
                    return .error(410, "\(resource): record \(sequence) was purged; its leaf hash stays in the tree, its entry is gone")
                }
                guard entry.count <= Self.maxBundledEntry else {
                    return .error(501, "\(resource): record \(sequence)'s entry is \(entry.count) bytes, more than the \(Self.maxBundledEntry) an entry bundle can hold (c2sp.org/tlog-tiles); read it and its inclusion proof with `stele get` and `stele prove`")
                }
                body.append(UInt8(entry.count >> 8))
                body.append(UInt8(entry.count & 0xff))
                body.append(contentsOf: entry)
            }
        } catch {
            return .error(500, "\(resource): \(error)")
        }
        return TileAnswer(status: 200, contentType: "application/octet-stream", cacheControl: TileAnswer.entries, body: body)
    }
}
