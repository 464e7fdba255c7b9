import SteleNative

/// The keyring of an encrypted store (`DIR/keyring`, beside the log, never in it): one data key
/// per namespace, each wrapped (AES-256-GCM) by the store's master key (``EncryptionKey``).
///
/// Layout (docs/format.md, "Keyring"): a 128-byte header, then 128-byte slots, each aligned to
/// 128 bytes so that no slot straddles a 512-byte sector.
///
/// Invariants, and why:
/// - A slot is written in place, never by replacing the file: shredding overwrites the wrapped
///   key's own bytes (then syncs), so no older copy of the file (a rename leaves the old blocks)
///   keeps it. A slot is smaller than a sector, so a power cut normally leaves it whole; one it
///   tears fails its checksum, and the keyring is then named damaged, never quietly read without
///   it (the namespace's key, or the fact that it was shredded, would be lost silently).
/// - Adding a key appends its slot and syncs before the key encrypts anything: no record is
///   ever written under a data key a crash could lose. Bytes after the last whole slot (an
///   append a crash cut short, never acknowledged) are ignored and written over by the next.
/// - A wrapped key opens only with the master key, this store's ID, its namespace (by hash) and
///   generation as the additional data: a slot copied to another namespace or another store's
///   keyring does not open, and the keyring names it damaged.
/// - One slot per namespace; a shredded slot keeps the namespace's hash and when (and nothing
///   else: its key bytes are zero), so that later reads say "shredded" rather than "unknown".
package final class Keyring {
    package static let headerLength = 128
    package static let slotLength = 128
    static let magic = Array("STELEKRG".utf8)
    static let version: UInt32 = 1

    package enum Entry: Equatable {
        case live(generation: UInt32, key: [UInt8])
        case shredded(at: Int64)
    }

    package let path: String
    private let fs: any FileSystem
    private let storeID: [UInt8]
    private let master: EncryptionKey
    /// By SHA-256 of the namespace: the slot index and what it holds.
    private var slots: [[UInt8]: (index: Int, entry: Entry)] = [:]
    private var slotCount = 0

    /// Creates an empty keyring for `storeID` under `master` (header written and synced, the
    /// directory synced).
    /// - Throws: ``SteleError/alreadyExists(path:)``, ``SteleError/io(_:)``.
    package static func create(fs: any FileSystem, path: String, directory: String, storeID: [UInt8], master: EncryptionKey) throws {
        guard try fs.status(path) == nil else { throw SteleError.alreadyExists(path: path) }
        // Written whole under a temporary name and renamed: a crash never leaves a partial header.
        var header = [UInt8](repeating: 0, count: headerLength)
        header.replaceSubrange(0 ..< 8, with: magic)
        header.replaceSubrange(8 ..< 12, with: littleEndian(version))
        header.replaceSubrange(12 ..< 16, with: littleEndian(UInt32(slotLength)))
        header.replaceSubrange(16 ..< 16 + min(storeID.count, 16), with: storeID.prefix(16))
        header.replaceSubrange(32 ..< 40, with: master.fingerprintBytes)
        header.replaceSubrange(120 ..< 128, with: littleEndian(xxh3(Array(header[0 ..< 120]))))
        try fs.writeAtomically(header, to: path, permissions: 0o600, directory: directory)
    }

    /// Opens the keyring with the master key: checks the header, every slot's checksum, and
    /// unwraps every live key (so an altered slot is found now, not at the first read).
    /// - Throws: ``SteleError/encryption(_:)``: ``EncryptionError/wrongKey(expected:given:)``,
    ///   ``EncryptionError/keyringDamaged(path:detail:)``; ``SteleError/io(_:)``.
    package init(fs: any FileSystem, path: String, storeID: [UInt8], master: EncryptionKey) throws {
        self.fs = fs
        self.path = path
        self.storeID = Array(storeID.prefix(16))
        self.master = master
        guard let bytes = try fs.readWholeFile(path, limit: Self.headerLength + Self.slotLength * Self.maxSlots) else {
            throw SteleError.encryption(.keyringDamaged(path: path, detail: "the file is missing"))
        }
        func damaged(_ detail: String) -> SteleError { .encryption(.keyringDamaged(path: path, detail: detail)) }
        guard bytes.count >= Self.headerLength, Array(bytes[0 ..< 8]) == Self.magic else { throw damaged("not a Stele keyring") }
        guard Self.checksumHolds(bytes, at: 0, length: Self.headerLength) else { throw damaged("the header's checksum does not match") }
        guard Self.u32(bytes, 8) == Self.version, Self.u32(bytes, 12) == UInt32(Self.slotLength) else {
            throw damaged("version \(Self.u32(bytes, 8)) or slot size \(Self.u32(bytes, 12)) is not this version's")
        }
        guard Array(bytes[16 ..< 32]) == self.storeID + [UInt8](repeating: 0, count: 16 - self.storeID.count) else {
            throw damaged("it belongs to another store")
        }
        guard bytes[40 ..< 120].allSatisfy({ $0 == 0 }) else { throw damaged("reserved header bytes are not zero") }
        let expected = Array(bytes[32 ..< 40])
        guard expected == master.fingerprintBytes else {
            throw SteleError.encryption(.wrongKey(expected: hexString(expected), given: master.fingerprint))
        }
        // An append a crash cut short leaves a partial slot at the end: no record was encrypted
        // under it (its key is used only after the sync), so it is ignored and written over.
        slotCount = (bytes.count - Self.headerLength) / Self.slotLength
        for index in 0 ..< slotCount {
            let offset = Self.headerLength + index * Self.slotLength
            guard Self.checksumHolds(bytes, at: offset, length: Self.slotLength) else {
                throw damaged("slot \(index)'s checksum does not match")
            }
            let slot = Array(bytes[offset ..< offset + Self.slotLength])
            let namespaceHash = Array(slot[8 ..< 40])
            guard slot[1 ..< 4].allSatisfy({ $0 == 0 }), slot[108 ..< 120].allSatisfy({ $0 == 0 }) else {
                throw damaged("slot \(index)'s reserved bytes are not zero")
            }
            let entry: Entry
            switch slot[0] {
            case 1:
                guard slot[100 ..< 108].allSatisfy({ $0 == 0 }) else { throw damaged("slot \(index) is live but carries a shred time") }
                let generation = Self.u32(slot, 4)
                guard let key = AESGCM(key: master.bytes)?.open(slot[52 ..< 100], nonce: Array(slot[40 ..< 52]),
                                                                aad: aad(namespaceHash: namespaceHash, generation: generation)) else {
                    throw damaged("slot \(index)'s key does not open for its namespace (altered or moved)")
                }
                entry = .live(generation: generation, key: key)
            case 2:
                // A shredded slot holds no key material: a state byte flipped to 2 over a live
                // key (a shred faked while the key stays on disk) is damage.
                guard slot[40 ..< 100].allSatisfy({ $0 == 0 }) else { throw damaged("slot \(index) is shredded but still holds key bytes") }
                entry = .shredded(at: Int64(bitPattern: Self.u64(slot, 100)))
            default:
                throw damaged("slot \(index) has state \(slot[0])")
            }
            // One slot per namespace: a shredded namespace never gets another, and a live key
            // beside a shred record of its namespace would be a key the shred did not destroy.
            if let earlier = slots[namespaceHash] {
                throw damaged("slots \(earlier.index) and \(index) both belong to one namespace")
            }
            slots[namespaceHash] = (index, entry)
        }
    }

    /// The namespace's data key, whether it was shredded, or nil if it has none yet.
    package func entry(for namespace: String) -> Entry? {
        entry(forNamespace: Array(namespace.utf8))
    }

    /// ``entry(for:)`` for a namespace as the log holds it (bytes).
    package func entry(forNamespace namespace: [UInt8]) -> Entry? {
        slots[sha256(namespace)]?.entry
    }

    /// A new data key for `namespace`, wrapped and appended in its slot, synced before it is
    /// returned.
    /// - Throws: ``SteleError/encryption(_:)`` if the namespace has a key or was shredded (a
    ///   shredded namespace never gets a key again: its old records would look readable);
    ///   ``SteleError/io(_:)``.
    package func addKey(for namespace: String) throws -> [UInt8] {
        try addKey(forNamespace: Array(namespace.utf8))
    }

    /// ``addKey(for:)`` for a namespace as the log holds it (bytes).
    package func addKey(forNamespace namespace: [UInt8]) throws -> [UInt8] {
        let namespaceHash = sha256(namespace)
        if let existing = slots[namespaceHash] {
            switch existing.entry {
            case .live(_, let key): return key
            case .shredded(let at): throw SteleError.encryption(.shredded(namespace: String(decoding: namespace, as: UTF8.self), at: at))
            }
        }
        guard slotCount < Self.maxSlots else {
            throw SteleError.invalidArgument("the keyring holds \(Self.maxSlots) namespaces' keys, its limit: no new namespace can be written")
        }
        guard let key = SecureRandom.bytes(AESGCM.keyLength), let nonce = SecureRandom.bytes(AESGCM.nonceLength),
              let wrapped = AESGCM(key: master.bytes)?.seal(key, nonce: nonce, aad: aad(namespaceHash: namespaceHash, generation: 1)) else {
            throw SteleError.encryption(.malformedKey("libcrypto could not make or wrap a data key"))
        }
        var slot = [UInt8](repeating: 0, count: Self.slotLength)
        slot[0] = 1
        slot.replaceSubrange(4 ..< 8, with: Self.littleEndian(UInt32(1)))
        slot.replaceSubrange(8 ..< 40, with: namespaceHash)
        slot.replaceSubrange(40 ..< 52, with: nonce)
        slot.replaceSubrange(52 ..< 100, with: wrapped)
        try writeSlot(slot, index: slotCount)
        slots[namespaceHash] = (slotCount, .live(generation: 1, key: key))
        slotCount += 1
        return key
    }

    /// Destroys the namespace's data key: its slot is overwritten in place with a shredded
    /// marker (the wrapped key's bytes zeroed) and synced.
    /// - Throws: ``SteleError/io(_:)``; nothing if the namespace has no key or is shredded.
    package func shred(_ namespace: String, at time: Int64) throws {
        try shred(namespace: Array(namespace.utf8), at: time)
    }

    /// ``shred(_:at:)`` for a namespace as the log holds it (bytes).
    package func shred(namespace: [UInt8], at time: Int64) throws {
        let namespaceHash = sha256(namespace)
        guard let existing = slots[namespaceHash], case .live = existing.entry else { return }
        var slot = [UInt8](repeating: 0, count: Self.slotLength)
        slot[0] = 2
        slot.replaceSubrange(8 ..< 40, with: namespaceHash)
        slot.replaceSubrange(100 ..< 108, with: Self.littleEndian(UInt64(bitPattern: time)))
        try writeSlot(slot, index: existing.index)
        slots[namespaceHash] = (existing.index, .shredded(at: time))
    }

    private func writeSlot(_ slot: [UInt8], index: Int) throws {
        var slot = slot
        slot.replaceSubrange(120 ..< 128, with: Self.littleEndian(xxh3(Array(slot[0 ..< 120]))))
        let fd = try fs.open(path, .readWrite)
        defer { fs.close(fd) }
        try slot.withUnsafeBytes { try fs.write(fd, $0, at: Self.headerLength + index * Self.slotLength) }
        try fs.syncData(fd)
    }

    private func aad(namespaceHash: [UInt8], generation: UInt32) -> [UInt8] {
        Array("stele-keyring 1".utf8) + [0] + storeID + namespaceHash + Self.littleEndian(generation)
    }

    /// Whether the header and every whole slot of keyring file `bytes` pass their checksums (a
    /// copy taken while a slot was being overwritten would not). Needs no key.
    package static func slotsAreWhole(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= headerLength, checksumHolds(bytes, at: 0, length: headerLength) else { return false }
        let slots = (bytes.count - headerLength) / slotLength
        return (0 ..< slots).allSatisfy { checksumHolds(bytes, at: headerLength + $0 * slotLength, length: slotLength) }
    }

    /// The most slots a keyring holds (one per namespace), so that every keyring can be read back.
    package static let maxSlots = 1_000_000

    private static func checksumHolds(_ bytes: [UInt8], at offset: Int, length: Int) -> Bool {
        littleEndian(xxh3(Array(bytes[offset ..< offset + length - 8]))) == Array(bytes[offset + length - 8 ..< offset + length])
    }

    private static func u32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        (0 ..< 4).reduce(UInt32(0)) { $0 | UInt32(bytes[offset + $1]) << (8 * $1) }
    }

    private static func u64(_ bytes: [UInt8], _ offset: Int) -> UInt64 {
        (0 ..< 8).reduce(UInt64(0)) { $0 | UInt64(bytes[offset + $1]) << (8 * $1) }
    }

    private static func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        (0 ..< T.bitWidth / 8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }
}
