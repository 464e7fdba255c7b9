import CCrypto
import Synchronization

/// AES-256-GCM under one key, with libcrypto's context set up once (the cipher fetched, the key
/// expanded) and only the nonce set for each message.
///
/// Why: with OpenSSL 3 a fresh context per message looks the cipher up by name and takes the
/// provider's locks every time, which cost encrypted appends of 100-byte values some 80% of
/// their throughput (`perf`: `strcmp`, `pthread_rwlock_*`, `OSSL_PARAM_locate`). Reusing a
/// context by re-initialising it with only a new IV is libcrypto's documented way to run many
/// messages under one key.
///
/// One thread at a time: a context holds the state of the message being processed. The store
/// seals only under its writer lock, and opens through a pool that lends each context to one
/// reader (``AESGCMContextPool``).
package final class AESGCMContext: @unchecked Sendable {
    private let sealing: OpaquePointer
    private let opening: OpaquePointer

    /// Nil unless `key` is 32 bytes and libcrypto sets the contexts up.
    package init?(key: [UInt8]) {
        guard key.count == AESGCM.keyLength, let sealing = EVP_CIPHER_CTX_new() else { return nil }
        guard let opening = EVP_CIPHER_CTX_new() else {
            EVP_CIPHER_CTX_free(sealing)
            return nil
        }
        self.sealing = sealing
        self.opening = opening
        guard EVP_EncryptInit_ex(sealing, EVP_aes_256_gcm(), nil, key, nil) == 1,
              EVP_DecryptInit_ex(opening, EVP_aes_256_gcm(), nil, key, nil) == 1 else { return nil }
    }

    deinit {
        EVP_CIPHER_CTX_free(sealing)
        EVP_CIPHER_CTX_free(opening)
    }

    /// Appends `plaintext` encrypted, then the 16-byte tag over it and `aad`, to `out`; false
    /// (with `out` as it was) if libcrypto fails, the nonce is not 12 bytes or an input is past
    /// libcrypto's Int32 counts.
    package func seal(_ plaintext: [UInt8], nonce: [UInt8], aad: [UInt8], appendingTo out: inout [UInt8]) -> Bool {
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: plaintext.count + AESGCM.tagLength))
        let ok = plaintext.withUnsafeBytes { plaintext in
            nonce.withUnsafeBytes { nonce in
                aad.withUnsafeBytes { aad in
                    out.withUnsafeMutableBytes { buffer in
                        seal(prefix: UnsafeRawBufferPointer(start: nil, count: 0), body: plaintext, nonce: nonce, aad: aad,
                             into: UnsafeMutableRawBufferPointer(rebasing: buffer[start...]))
                    }
                }
            }
        }
        if !ok { out.removeSubrange(start...) }
        return ok
    }

    /// Encrypts `prefix` followed by `body` as one message into `out`: their ciphertext, then the
    /// 16-byte tag over it and `aad`. `out` must be exactly `prefix.count + body.count + 16`
    /// bytes; false (`out` then undefined) if it is not, libcrypto fails, the nonce is not 12
    /// bytes or an input is past libcrypto's Int32 counts.
    /// Why two parts: a record's value is sealed with its length in front, without copying the
    /// value next to it first.
    package func seal(prefix: UnsafeRawBufferPointer, body: UnsafeRawBufferPointer, nonce: UnsafeRawBufferPointer,
                      aad: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) -> Bool {
        let length = prefix.count + body.count
        guard nonce.count == AESGCM.nonceLength, length < Int(Int32.max) - AESGCM.tagLength, aad.count < Int(Int32.max),
              out.count == length + AESGCM.tagLength, let cipher = out.baseAddress?.assumingMemoryBound(to: UInt8.self),
              EVP_EncryptInit_ex(sealing, nil, nil, nil, nonce.baseAddress?.assumingMemoryBound(to: UInt8.self)) == 1 else { return false }
        // `output` nil: additional data, authenticated only.
        func update(_ part: UnsafeRawBufferPointer, output: UnsafeMutablePointer<UInt8>?) -> Bool {
            guard let base = part.baseAddress?.assumingMemoryBound(to: UInt8.self), !part.isEmpty else { return true }
            var written: Int32 = 0
            return EVP_EncryptUpdate(sealing, output, &written, base, Int32(part.count)) == 1 && written == Int32(part.count)
        }
        guard update(aad, output: nil), update(prefix, output: cipher), update(body, output: cipher + prefix.count) else { return false }
        var final: Int32 = 0
        guard EVP_EncryptFinal_ex(sealing, cipher + length, &final) == 1, final == 0 else { return false }
        return EVP_CIPHER_CTX_ctrl(sealing, EVP_CTRL_GCM_GET_TAG, Int32(AESGCM.tagLength), cipher + length) == 1
    }

    /// The plaintext of `sealed[range]` (ciphertext then tag); nil if the tag does not verify for
    /// this key, nonce and `aad` (a wrong key or altered bytes).
    package func open(_ sealed: [UInt8], _ range: Range<Int>, nonce: [UInt8], aad: [UInt8]) -> [UInt8]? {
        guard range.count >= AESGCM.tagLength, range.lowerBound >= 0, range.upperBound <= sealed.count else { return nil }
        var ok = false
        let plaintext = [UInt8](unsafeUninitializedCapacity: range.count - AESGCM.tagLength) { buffer, initialized in
            ok = sealed.withUnsafeBytes { sealed in
                nonce.withUnsafeBytes { nonce in
                    aad.withUnsafeBytes { aad in
                        open(UnsafeRawBufferPointer(rebasing: sealed[range]), nonce: nonce, aad: aad,
                             prefixInto: UnsafeMutableRawBufferPointer(start: nil, count: 0), bodyInto: UnsafeMutableRawBufferPointer(buffer))
                    }
                }
            }
            initialized = ok ? buffer.count : 0
        }
        return ok ? plaintext : nil
    }

    /// Opens `sealed` (ciphertext then the 16-byte tag): the first `prefix.count` bytes of the
    /// plaintext into `prefix`, the rest into `body` (together exactly the ciphertext's length).
    /// False if the tag does not verify for this key, nonce and `aad` (a wrong key or altered
    /// bytes; `prefix` and `body` then hold bytes that must not be used), or the sizes are wrong.
    package func open(_ sealed: UnsafeRawBufferPointer, nonce: UnsafeRawBufferPointer, aad: UnsafeRawBufferPointer,
                      prefixInto prefix: UnsafeMutableRawBufferPointer, bodyInto body: UnsafeMutableRawBufferPointer) -> Bool {
        guard nonce.count == AESGCM.nonceLength, sealed.count >= AESGCM.tagLength, sealed.count < Int(Int32.max), aad.count < Int(Int32.max),
              prefix.count + body.count == sealed.count - AESGCM.tagLength, let input = sealed.baseAddress?.assumingMemoryBound(to: UInt8.self),
              EVP_DecryptInit_ex(opening, nil, nil, nil, nonce.baseAddress?.assumingMemoryBound(to: UInt8.self)) == 1 else { return false }
        // `output` nil: additional data, authenticated only.
        func update(_ input: UnsafePointer<UInt8>?, _ count: Int, output: UnsafeMutableRawPointer?) -> Bool {
            guard let input, count > 0 else { return true }
            var written: Int32 = 0
            return EVP_DecryptUpdate(opening, output?.assumingMemoryBound(to: UInt8.self), &written, input, Int32(count)) == 1
                && written == Int32(count)
        }
        guard update(aad.baseAddress?.assumingMemoryBound(to: UInt8.self), aad.count, output: nil),
              update(input, prefix.count, output: prefix.baseAddress),
              update(input + prefix.count, body.count, output: body.baseAddress) else { return false }
        // libcrypto takes the expected tag through a mutable pointer without writing it.
        var tag: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &tag) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: sealed[(sealed.count - AESGCM.tagLength)...])) }
        guard withUnsafeMutableBytes(of: &tag, { EVP_CIPHER_CTX_ctrl(opening, EVP_CTRL_GCM_SET_TAG, Int32(AESGCM.tagLength), $0.baseAddress) }) == 1 else {
            return false
        }
        var final: Int32 = 0
        var scratch: (UInt64, UInt64) = (0, 0)  // GCM's final writes nothing; libcrypto wants somewhere to point
        return withUnsafeMutableBytes(of: &scratch) { EVP_DecryptFinal_ex(opening, $0.baseAddress?.assumingMemoryBound(to: UInt8.self), &final) } == 1
    }
}

/// HMAC-SHA256 (RFC 2104) under one key for many short messages: the key's inner and outer
/// blocks are hashed once, and each message costs two SHA-256 finalizations, with no libcrypto
/// lookup (OpenSSL 3's one-shot `HMAC` fetches the digest by name on every call).
package struct HMACSHA256: Sendable {
    private let inner: SHA256State
    private let outer: SHA256State

    package init(key: [UInt8]) {
        var block = key.count > 64 ? sha256(key) : key
        block += [UInt8](repeating: 0, count: 64 - block.count)
        var inner = SHA256Hasher(), outer = SHA256Hasher()
        inner.update(block.map { $0 ^ 0x36 })
        outer.update(block.map { $0 ^ 0x5c })
        self.inner = SHA256State(inner)
        self.outer = SHA256State(outer)
    }

    /// The 32-byte MAC of `message`.
    package func mac(_ message: [UInt8]) -> [UInt8] {
        message.withUnsafeBytes { message in withUnsafeBytes(of: macWords(message)) { Array($0) } }
    }

    /// Writes the first `out.count` (at most 32) bytes of the MAC of `message` to `out`.
    package func mac(_ message: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) {
        withUnsafeBytes(of: macWords(message)) { mac in out.copyMemory(from: UnsafeRawBufferPointer(rebasing: mac.prefix(out.count))) }
    }

    private func macWords(_ message: UnsafeRawBufferPointer) -> (UInt64, UInt64, UInt64, UInt64) {
        var hasher = inner.hasher
        hasher.update(message)
        let innerDigest = hasher.finalizeWords()
        var outerHasher = outer.hasher
        outerHasher.update(words: innerDigest)
        return outerHasher.finalizeWords()
    }
}

/// A SHA-256 state to copy from (the hasher's C context is plain data).
private struct SHA256State: @unchecked Sendable {
    let hasher: SHA256Hasher
    init(_ hasher: SHA256Hasher) { self.hasher = hasher }
}

/// Contexts under one key, lent to one reader at a time: concurrent readers each get their own
/// (made when none is free), and a returned one is kept for the next (up to a few).
package final class AESGCMContextPool: Sendable {
    private let key: [UInt8]
    private let free = Mutex<[AESGCMContext]>([])
    private static let kept = 8

    package init(key: [UInt8]) { self.key = key }

    /// Runs `body` with a context of this pool's key; nil if libcrypto cannot make one.
    package func withContext<R>(_ body: (AESGCMContext) -> R?) -> R? {
        guard let context = free.withLock({ $0.popLast() }) ?? AESGCMContext(key: key) else { return nil }
        defer { free.withLock { if $0.count < Self.kept { $0.append(context) } } }
        return body(context)
    }
}
