import Stele

/// A resource of a tiled transparency log (c2sp.org/tlog-tiles), named by its path below the
/// log's URL prefix: `checkpoint`, `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`.
///
/// `<N>` is written in 3-digit groups, every group but the last prefixed by `x` (1,234,067 is
/// `x001/x234/067`); `<L>` is 0-63 and `<W>` 1-255, both decimal without leading zeros. Parsing
/// accepts only that canonical form, so that one resource has one path (and one cache entry).
public enum TileResource: Equatable, Sendable, CustomStringConvertible {
    case checkpoint
    /// Merkle tree hashes; `width` nil for a full tile (256 hashes).
    case tile(level: Int, index: UInt64, width: Int?)
    /// Log entries, each a big-endian uint16 length and the entry; `width` nil for a full bundle.
    case entries(index: UInt64, width: Int?)

    /// Parses a path relative to the prefix (no leading slash); nil if it is not canonical.
    public init?(path: String) {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        if parts == ["checkpoint"] {
            self = .checkpoint
            return
        }
        guard parts.count >= 3, parts[0] == "tile" else { return nil }
        if parts[1] == "entries" {
            guard let (index, width) = Self.parseIndex(parts[2...]) else { return nil }
            self = .entries(index: index, width: width)
        } else {
            guard let level = Self.decimal(parts[1], in: 0 ... 63), let (index, width) = Self.parseIndex(parts[2...]) else {
                return nil
            }
            self = .tile(level: level, index: index, width: width)
        }
    }

    /// The canonical path, without a leading slash.
    public var path: String {
        switch self {
        case .checkpoint: "checkpoint"
        case .tile(let level, let index, let width): "tile/\(level)/" + Self.encode(index, width)
        case .entries(let index, let width): "tile/entries/" + Self.encode(index, width)
        }
    }

    public var description: String { path }

    static func encode(_ index: UInt64, _ width: Int?) -> String {
        // The store names its tile files the same way: one encoding for both.
        String(TileStore.path(level: 0, index: index, partialWidth: width).dropFirst("tile/0/".count))
    }

    /// `x001/x234/067` or `x001/x234/067.p/12` (as path components).
    private static func parseIndex(_ parts: ArraySlice<Substring>) -> (UInt64, Int?)? {
        var parts = parts
        var width: Int?
        // A partial resource: the last group carries `.p` and the width follows it.
        if let last = parts.last, parts.count >= 2, parts[parts.endIndex - 2].hasSuffix(".p") {
            guard let parsed = decimal(last, in: 1 ... 255) else { return nil }
            width = parsed
            parts.removeLast()
            let group = parts.removeLast()
            parts.append(group.dropLast(2))
        }
        // 20 digits at most: seven groups.
        guard (1 ... 7).contains(parts.count) else { return nil }
        var index: UInt64 = 0
        for (position, part) in parts.enumerated() {
            let isLast = position == parts.count - 1
            let digits = isLast ? part : part.dropFirst()
            guard isLast || part.first == "x", digits.count == 3, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
                  let group = UInt64(digits) else { return nil }
            // A leading group of 000 would be a second spelling of a smaller index.
            if position == 0, parts.count > 1, group == 0 { return nil }
            let (scaled, overflow) = index.multipliedReportingOverflow(by: 1000)
            let (sum, carry) = scaled.addingReportingOverflow(group)
            guard !overflow, !carry else { return nil }
            index = sum
        }
        return (index, width)
    }

    /// A decimal in `range` without leading zeros or signs.
    private static func decimal(_ text: Substring, in range: ClosedRange<Int>) -> Int? {
        guard !text.isEmpty, text.count <= 3, text.allSatisfy({ $0.isASCII && $0.isNumber }),
              text == "0" || text.first != "0", let value = Int(text), range.contains(value) else { return nil }
        return value
    }
}
