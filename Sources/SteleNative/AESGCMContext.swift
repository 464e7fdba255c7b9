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
        guard nonce.count == AESGCM.nonceLength, plaintext.count < Int(Int32.max) - AESGCM.tagLength, aad.count < Int(Int32.max),
              EVP_EncryptInit_ex(sealing, nil, nil, nil, nonce) == 1 else { return false }
        var written: Int32 = 0
        if !aad.isEmpty {
            guard EVP_EncryptUpdate(sealing, nil, &written, aad, Int32(aad.count)) == 1 else { return false }
        }
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: plaintext.count + AESGCM.tagLength))
        let ok = out.withUnsafeMutableBufferPointer { buffer -> Bool in
            guard let base = buffer.baseAddress else { return false }
            let cipher = base + start
            if !plaintext.isEmpty {
                guard EVP_EncryptUpdate(sealing, cipher, &written, plaintext, Int32(plaintext.count)) == 1,
                      written == Int32(plaintext.count) else { return false }
            }
            var final: Int32 = 0
            guard EVP_EncryptFinal_ex(sealing, cipher + plaintext.count, &final) == 1, final == 0 else { return false }
            return EVP_CIPHER_CTX_ctrl(sealing, EVP_CTRL_GCM_GET_TAG, Int32(AESGCM.tagLength), cipher + plaintext.count) == 1
        }
        if !ok { out.removeSubrange(start...) }
        return ok
    }

    /// The plaintext of `sealed[range]` (ciphertext then tag); nil if the tag does not verify for
    /// this key, nonce and `aad` (a wrong key or altered bytes).
    package func open(_ sealed: [UInt8], _ range: Range<Int>, nonce: [UInt8], aad: [UInt8]) -> [UInt8]? {
        guard nonce.count == AESGCM.nonceLength, range.count >= AESGCM.tagLength, range.lowerBound >= 0, range.upperBound <= sealed.count,
              range.count < Int(Int32.max), aad.count < Int(Int32.max),
              EVP_DecryptInit_ex(opening, nil, nil, nil, nonce) == 1 else { return nil }
        let length = range.count - AESGCM.tagLength
        var tag = Array(sealed[(range.upperBound - AESGCM.tagLength) ..< range.upperBound])
        var out = [UInt8](repeating: 0, count: max(length, 1))
        var written: Int32 = 0
        if !aad.isEmpty {
            guard EVP_DecryptUpdate(opening, nil, &written, aad, Int32(aad.count)) == 1 else { return nil }
        }
        if length > 0 {
            let ok = sealed.withUnsafeBufferPointer { input -> Bool in
                guard let base = input.baseAddress else { return false }
                return EVP_DecryptUpdate(opening, &out, &written, base + range.lowerBound, Int32(length)) == 1 && written == Int32(length)
            }
            guard ok else { return nil }
        }
        guard EVP_CIPHER_CTX_ctrl(opening, EVP_CTRL_GCM_SET_TAG, Int32(AESGCM.tagLength), &tag) == 1 else { return nil }
        var final: Int32 = 0
        let verified = out.withUnsafeMutableBufferPointer { buffer -> Bool in
            guard let base = buffer.baseAddress else { return false }
            return EVP_DecryptFinal_ex(opening, base + length, &final) == 1
        }
        guard verified else { return nil }
        if length == 0 { out.removeAll() }
        return out
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
        var hasher = inner.hasher
        hasher.update(message)
        let innerDigest = hasher.finalizeWords()
        var outerHasher = outer.hasher
        outerHasher.update(words: innerDigest)
        return withUnsafeBytes(of: outerHasher.finalizeWords()) { Array($0) }
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
