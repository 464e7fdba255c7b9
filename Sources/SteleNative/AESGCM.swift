import CCrypto

/// AES-256-GCM (NIST SP 800-38D) through libcrypto's EVP interface: 96-bit nonces, 128-bit tags.
///
/// The caller owns nonce uniqueness: one nonce must never seal two messages under one key
/// (GCM then leaks the XOR of the plaintexts and lets the authentication key be recovered).
package struct AESGCM: Sendable {
    package static let keyLength = 32
    package static let nonceLength = 12
    package static let tagLength = 16

    private let key: [UInt8]

    /// Nil unless `key` is 32 bytes.
    package init?(key: [UInt8]) {
        guard key.count == Self.keyLength else { return nil }
        self.key = key
    }

    /// `plaintext` encrypted, followed by the 16-byte tag over it and `aad`; nil only if libcrypto
    /// fails (out of memory) or the nonce is not 12 bytes.
    package func seal(_ plaintext: some Collection<UInt8>, nonce: [UInt8], aad: [UInt8] = []) -> [UInt8]? {
        let input = Array(plaintext)
        // libcrypto counts in Int32: larger inputs are refused, never truncated.
        guard nonce.count == Self.nonceLength, input.count < Int(Int32.max) - Self.tagLength, aad.count < Int(Int32.max),
              let context = EVP_CIPHER_CTX_new() else { return nil }
        defer { EVP_CIPHER_CTX_free(context) }
        var out = [UInt8](repeating: 0, count: input.count + Self.tagLength)
        var written: Int32 = 0
        guard EVP_EncryptInit_ex(context, EVP_aes_256_gcm(), nil, key, nonce) == 1 else { return nil }
        if !aad.isEmpty {
            guard EVP_EncryptUpdate(context, nil, &written, aad, Int32(aad.count)) == 1 else { return nil }
        }
        let ok = out.withUnsafeMutableBufferPointer { buffer -> Bool in
            guard let base = buffer.baseAddress else { return false }
            if !input.isEmpty {
                guard EVP_EncryptUpdate(context, base, &written, input, Int32(input.count)) == 1, written == Int32(input.count) else { return false }
            }
            var final: Int32 = 0
            guard EVP_EncryptFinal_ex(context, base + input.count, &final) == 1, final == 0 else { return false }
            return EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_GET_TAG, Int32(Self.tagLength), base + input.count) == 1
        }
        return ok ? out : nil
    }

    /// The plaintext of `sealed` (ciphertext and tag, as ``seal(_:nonce:aad:)`` made it); nil if
    /// the tag does not verify for this key, nonce and `aad`, i.e. a wrong key or altered bytes.
    package func open(_ sealed: some Collection<UInt8>, nonce: [UInt8], aad: [UInt8] = []) -> [UInt8]? {
        let input = Array(sealed)
        guard nonce.count == Self.nonceLength, input.count >= Self.tagLength, input.count < Int(Int32.max), aad.count < Int(Int32.max),
              let context = EVP_CIPHER_CTX_new() else { return nil }
        defer { EVP_CIPHER_CTX_free(context) }
        let length = input.count - Self.tagLength
        var tag = Array(input[length...])
        var out = [UInt8](repeating: 0, count: max(length, 1))
        var written: Int32 = 0
        guard EVP_DecryptInit_ex(context, EVP_aes_256_gcm(), nil, key, nonce) == 1 else { return nil }
        if !aad.isEmpty {
            guard EVP_DecryptUpdate(context, nil, &written, aad, Int32(aad.count)) == 1 else { return nil }
        }
        if length > 0 {
            guard EVP_DecryptUpdate(context, &out, &written, input, Int32(length)) == 1, written == Int32(length) else { return nil }
        }
        guard EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, Int32(Self.tagLength), &tag) == 1 else { return nil }
        var final: Int32 = 0
        let verified = out.withUnsafeMutableBufferPointer { buffer -> Bool in
            guard let base = buffer.baseAddress else { return false }
            return EVP_DecryptFinal_ex(context, base + length, &final) == 1
        }
        return verified ? Array(out.prefix(length)) : nil
    }
}

/// Bytes from libcrypto's CSPRNG (seeded from the operating system), for keys and nonces.
package enum SecureRandom {
    /// `count` random bytes; nil only if libcrypto's generator failed.
    package static func bytes(_ count: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: count)
        guard count > 0 else { return out }
        return RAND_bytes(&out, Int32(count)) == 1 ? out : nil
    }
}
