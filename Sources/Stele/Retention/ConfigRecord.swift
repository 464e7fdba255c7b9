import SteleNative

/// The store's identity and its governance authority, as records in the log (type 8), so that
/// seals, checkpoints and proofs cover them like every other record. `stele.conf` only caches
/// what these records say; the log is the authority (see `docs/format.md`, "Config records").
///
/// ```
/// u8 version (1) | u8 kind
/// kind 1 genesis, 2 adoption:
///   16 store uuid | i64 created | u32 segment size | u64 minimum retention ns (0: none)
///   | u16 origin length | origin | u16 key length | governance verifier key (text; 0 bytes: none)
///   genesis of an encrypted store only: | u8 scheme (1) | 8 master key fingerprint
/// kind 3 governance key change:
///   u16 key length | new governance verifier key (0 bytes: none)
///   | u32 authorization length | authorization (a signed note by the key in force)
/// ```
/// A genesis is record 0 of every store created with config records. An adoption is how a
/// store created before them anchors its `stele.conf` in the log (`stele migrate`): it trusts the
/// file as it stands then, which is why the migration checks the store first. Nothing else can
/// set or change the governance key: a change must carry an authorization signed by the key in
/// force (``GovernanceAuthorization/keyChangeText(origin:newKey:asOf:notAfter:)``).
package enum ConfigRecord: Equatable {
    case genesis(StoreIdentity, minimumRetention: UInt64, governanceKey: NoteVerifier?)
    case adoption(StoreIdentity, minimumRetention: UInt64, governanceKey: NoteVerifier?)
    case governanceKeyChange(newKey: NoteVerifier?, authorization: String)

    private enum Kind: UInt8 { case genesis = 1, adoption = 2, governanceKeyChange = 3 }
    /// The one encryption scheme: AES-256-GCM with a data key per namespace (docs/format.md).
    private static let encryptionScheme: UInt8 = 1

    package var encoded: [UInt8] {
        var out: [UInt8] = [1]
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func putText(_ text: String, _ width: Int) {
            let bytes = Array(text.utf8)
            if width == 2 { put(UInt16(bytes.count)) } else { put(UInt32(bytes.count)) }
            out += bytes
        }
        switch self {
        case .genesis(let identity, let minimum, let key), .adoption(let identity, let minimum, let key):
            if case .genesis = self { out.append(Kind.genesis.rawValue) } else { out.append(Kind.adoption.rawValue) }
            out += identity.storeID
            put(identity.createdAt)
            put(UInt32(identity.segmentSize))
            put(minimum)
            putText(identity.origin, 2)
            putText(key?.encoded ?? "", 2)
            if case .genesis = self, let fingerprint = identity.encryptionKey {
                out.append(Self.encryptionScheme)
                out += fingerprint
            }
        case .governanceKeyChange(let key, let authorization):
            out.append(Kind.governanceKeyChange.rawValue)
            putText(key?.encoded ?? "", 2)
            putText(authorization, 4)
        }
        return out
    }

    /// Decodes a config record's value; nil for anything malformed.
    package static func decode(_ bytes: [UInt8]) -> ConfigRecord? {
        var reader = FieldReader(bytes)
        guard reader.u8() == 1, let kind = reader.u8().flatMap(Kind.init(rawValue:)) else { return nil }
        func key() -> NoteVerifier?? {
            guard let text = reader.text(width: 2) else { return nil }
            if text.isEmpty { return .some(nil) }
            guard let key = try? NoteVerifier(parsing: text), key.encoded == text else { return nil }
            return .some(key)
        }
        let record: ConfigRecord
        switch kind {
        case .genesis, .adoption:
            guard let id = reader.bytes(16), let created = reader.u64(), let size = reader.u32(), let minimum = reader.u64(),
                  let origin = reader.text(width: 2), let governance = key() else { return nil }
            var identity = StoreIdentity(storeID: id, createdAt: Int64(bitPattern: created), segmentSize: Int(size), origin: origin)
            // An encrypted store's genesis ends with the scheme and the master key's fingerprint.
            if kind == .genesis, !reader.atEnd {
                guard reader.u8() == encryptionScheme, let fingerprint = reader.bytes(8) else { return nil }
                identity.encryptionKey = fingerprint
            }
            guard identity.isValid else { return nil }
            record = kind == .genesis ? .genesis(identity, minimumRetention: minimum, governanceKey: governance)
                                      : .adoption(identity, minimumRetention: minimum, governanceKey: governance)
        case .governanceKeyChange:
            guard let governance = key(), let authorization = reader.text(width: 4) else { return nil }
            record = .governanceKeyChange(newKey: governance, authorization: authorization)
        }
        return reader.atEnd ? record : nil
    }
}

/// Who a store is: fixed at creation, repeated in `stele.conf` and in every segment header (the
/// UUID), and recorded by the log's genesis (or adoption) record.
package struct StoreIdentity: Sendable, Equatable {
    package var storeID: [UInt8]
    package var createdAt: Int64
    package var segmentSize: Int
    package var origin: String
    /// The fingerprint (8 bytes) of the master key of an encrypted store; nil: not encrypted.
    /// Only a genesis records one: a store is encrypted from its first record or never.
    package var encryptionKey: [UInt8]?

    package init(storeID: [UInt8], createdAt: Int64, segmentSize: Int, origin: String, encryptionKey: [UInt8]? = nil) {
        self.storeID = storeID
        self.createdAt = createdAt
        self.segmentSize = segmentSize
        self.origin = origin
        self.encryptionKey = encryptionKey
    }

    var isValid: Bool {
        storeID.count == 16 && StoreConfig.isValidOrigin(origin) && segmentSize >= Limits.minSegmentSize
            && segmentSize <= Limits.maxSegmentSize && segmentSize % 4096 == 0 && (encryptionKey?.count ?? 8) == 8
    }
}

/// Little-endian fields read one after another from a record value, failing (nil) past the end.
struct FieldReader {
    private let bytes: [UInt8]
    private var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { position == bytes.count }

    mutating func bytes(_ count: Int) -> [UInt8]? {
        guard count >= 0, count <= bytes.count - position else { return nil }
        defer { position += count }
        return Array(bytes[position ..< position + count])
    }

    private mutating func integer(_ width: Int) -> UInt64? {
        guard let raw = bytes(width) else { return nil }
        return raw.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }

    mutating func u8() -> UInt8? { integer(1).map { UInt8($0) } }
    mutating func u16() -> UInt16? { integer(2).map { UInt16($0) } }
    mutating func u32() -> UInt32? { integer(4).map { UInt32($0) } }
    mutating func u64() -> UInt64? { integer(8) }

    /// A length-prefixed UTF-8 string (`width` 2 or 4 bytes of length); nil if not valid UTF-8.
    mutating func text(width: Int) -> String? {
        guard let length = width == 2 ? u16().map(Int.init) : u32().map(Int.init), let raw = bytes(length) else { return nil }
        return String(validating: raw, as: UTF8.self)
    }
}
