import SteleNative

/// A SHA-256 digest: a leaf hash, a tree node, a Merkle root or a segment seal.
///
/// Stored inline (four words, no heap allocation) because the write path makes several per record.
public struct Digest: Hashable, Sendable, CustomStringConvertible {
    package var storage: (UInt64, UInt64, UInt64, UInt64)

    /// Thirty-two zero bytes: the "previous seal" of the first segment.
    public static let zero = Digest(storage: (0, 0, 0, 0))

    package init(storage: (UInt64, UInt64, UInt64, UInt64)) { self.storage = storage }

    /// Creates a digest from exactly 32 bytes; nil for any other length.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 32 else { return nil }
        self = ByteView.of(Array(bytes)) { Digest($0, at: 0) }
    }

    /// Parses 64 hexadecimal digits (either case); nil otherwise.
    public init?(hex: String) {
        let utf8 = Array(hex.utf8)
        guard utf8.count == 64 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        var i = 0
        while i < 64 {
            guard let hi = hexValue(utf8[i]), let lo = hexValue(utf8[i + 1]) else { return nil }
            bytes.append(hi << 4 | lo)
            i += 2
        }
        self.init(bytes: bytes)
    }

    /// The 32 bytes in order.
    public var bytes: [UInt8] { withUnsafeBytes(of: storage) { Array($0) } }

    /// Lowercase hexadecimal, 64 characters.
    public var hex: String { hexString(bytes) }

    /// The digest as 64 lowercase hexadecimal digits (``hex``).
    public var description: String { hex }

    /// Whether the two digests are the same 32 bytes (four word compares).
    public static func == (a: Digest, b: Digest) -> Bool {
        a.storage.0 == b.storage.0 && a.storage.1 == b.storage.1 && a.storage.2 == b.storage.2 && a.storage.3 == b.storage.3
    }

    /// Feeds the 32 bytes to `hasher`.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(storage.0)
        hasher.combine(storage.1)
        hasher.combine(storage.2)
        hasher.combine(storage.3)
    }

    /// Reads 32 bytes at `offset` of a view.
    package init(_ view: ByteView, at offset: Int) {
        let s = view.slice(offset, 32)
        self.storage = (s.memoryWord(0),
                        s.memoryWord(8),
                        s.memoryWord(16),
                        s.memoryWord(24))
    }

    /// Writes the 32 bytes at `offset`.
    package func write(to writer: ByteWriter, at offset: Int) {
        withUnsafeBytes(of: storage) { writer.put($0, at: offset) }
    }
}

private func hexValue(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0") ... UInt8(ascii: "9"): return c - UInt8(ascii: "0")
    case UInt8(ascii: "a") ... UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A") ... UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
    default: return nil
    }
}

/// Lowercase hexadecimal of arbitrary bytes.
package func hexString(_ bytes: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for b in bytes {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 0x0f)])
    }
    return String(decoding: out, as: UTF8.self)
}

/// Parses hexadecimal text (even length, either case) into bytes.
package func bytesFromHex(_ text: some StringProtocol) -> [UInt8]? {
    let utf8 = Array(text.utf8)
    guard utf8.count % 2 == 0 else { return nil }
    var out: [UInt8] = []
    out.reserveCapacity(utf8.count / 2)
    var i = 0
    while i < utf8.count {
        guard let hi = hexValue(utf8[i]), let lo = hexValue(utf8[i + 1]) else { return nil }
        out.append(hi << 4 | lo)
        i += 2
    }
    return out
}

extension SHA256Hasher {
    /// Adds a digest's 32 bytes.
    package mutating func update(_ digest: Digest) { update(words: digest.storage) }

    /// The hash of everything added, as a ``Digest``.
    package mutating func finalize() -> Digest { Digest(storage: finalizeWords()) }

    /// SHA-256 of a single buffer.
    package static func hash(_ bytes: [UInt8]) -> Digest {
        var hasher = SHA256Hasher()
        hasher.update(bytes)
        return hasher.finalize()
    }
}
