import SteleNative

/// Reading an encrypted store's records: keys and values opened from their blobs with the
/// namespace's data key (docs/format.md, "Encrypted records"). Runs outside the writer lock, as
/// every read does: ``LogEncryption`` guards its own state.
extension Store {
    /// The key of the record in `frame` as written: the frame's bytes, or its key blob opened.
    /// - Throws: ``SteleError/encryption(_:)`` (``EncryptionError/keyRequired`` without the
    ///   master key, ``EncryptionError/shredded(namespace:at:)``); ``SteleError/corruption(_:)``
    ///   for a blob that does not open.
    func plainKey(_ frame: FrameInfo, _ view: ByteView, at location: SegmentLog.Location) throws -> [UInt8] {
        let keyBytes = view.slice(frame.key.lowerBound, frame.key.count).array
        guard frame.isEncrypted else { return keyBytes }
        let (cipher, namespace) = try readingCipher(frame, view)
        guard let key = cipher.openKey(keyBytes, type: frame.type, sequence: frame.sequence, timestamp: frame.timestamp,
                                       namespace: namespace) else {
            throw Self.unopenedBlob("key", frame, location)
        }
        return key
    }

    /// The value of the record in `frame` as written: decompressed and, in an encrypted store,
    /// opened from its blob; empty for a purged payload or a tombstone.
    /// - Throws: as ``plainKey(_:_:at:)``; ``SteleError/corruption(_:)`` for an LZ4 value that
    ///   does not decode.
    func plainValue(_ frame: FrameInfo, _ view: ByteView, at location: SegmentLog.Location) throws -> [UInt8] {
        guard frame.isEncrypted, !frame.isRedacted else {
            guard let value = frame.value(in: view) else { throw Self.undecodableValue(frame.sequence, location) }
            return value
        }
        let (cipher, namespace) = try readingCipher(frame, view)
        let opened = view.slice(frame.stored.lowerBound, frame.stored.count).withBuffer { blob in
            view.slice(frame.key.lowerBound, frame.key.count).withBuffer { keyBlob in
                namespace.withUnsafeBytes { namespace in
                    cipher.openValue(blob, keyBlob: keyBlob, type: frame.type, sequence: frame.sequence, timestamp: frame.timestamp,
                                     namespace: namespace, compressed: frame.isCompressed)
                }
            }
        }
        guard let opened else { throw Self.unopenedBlob("value", frame, location) }
        guard frame.isCompressed else {
            guard opened.stored.count == opened.valueLength else { throw Self.unopenedBlob("value", frame, location) }
            return opened.stored
        }
        guard let value = ByteView.of(opened.stored, { LZ4.decompress($0, originalLength: opened.valueLength) }) else {
            throw Self.undecodableValue(frame.sequence, location)
        }
        return value
    }

    /// The record in `frame`, its key and value opened (see ``plainValue(_:_:at:)``).
    func plainRecord(_ frame: FrameInfo, _ view: ByteView, at location: SegmentLog.Location) throws -> Record {
        guard frame.isEncrypted else {
            guard let record = frame.record(in: view) else { throw Self.undecodableValue(frame.sequence, location) }
            return record
        }
        return Record(sequence: frame.sequence, type: frame.type, timestamp: frame.timestamp,
                      namespace: view.slice(frame.namespace.lowerBound, frame.namespace.count).array,
                      key: try plainKey(frame, view, at: location), value: try plainValue(frame, view, at: location),
                      redactedLeafHash: frame.isRedacted ? Digest(view, at: frame.stored.lowerBound) : nil)
    }

    private func readingCipher(_ frame: FrameInfo, _ view: ByteView) throws(SteleError) -> (RecordCipher, [UInt8]) {
        guard let encryption else { throw .encryption(.keyRequired) }
        let namespace = view.slice(frame.namespace.lowerBound, frame.namespace.count).array
        return (try encryption.cipherForReading(namespace), namespace)
    }

    private static func unopenedBlob(_ what: String, _ frame: FrameInfo, _ location: SegmentLog.Location) -> SteleError {
        .corruption(Corruption(file: location.path, offset: frame.offset, sequence: frame.sequence,
                               detail: "its \(what) blob does not open under its namespace's data key (altered, or moved from another record)"))
    }
}
