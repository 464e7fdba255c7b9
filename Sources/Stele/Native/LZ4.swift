import CLZ4

/// LZ4 block compression for large values (see `docs/format.md`, "Compression").
package enum LZ4 {
    /// Compresses `input`; returns nil when the result would not be at least one eighth smaller,
    /// so that incompressible data is stored as is and never pays for decompression.
    package static func compressIfWorthIt(_ input: UnsafeRawBufferPointer) -> [UInt8]? {
        guard let source = input.baseAddress, input.count > 0, input.count <= Int(LZ4_MAX_INPUT_SIZE) else { return nil }
        let limit = input.count - input.count / 8
        var output = [UInt8](repeating: 0, count: limit)
        let written = output.withUnsafeMutableBytes { out -> Int32 in
            LZ4_compress_default(source.assumingMemoryBound(to: CChar.self),
                                 out.baseAddress!.assumingMemoryBound(to: CChar.self),
                                 Int32(input.count), Int32(limit))
        }
        guard written > 0 else { return nil }
        output.removeSubrange(Int(written)...)
        return output
    }

    /// Decompresses `input` into exactly `originalLength` bytes, or returns nil if the input is
    /// malformed or does not decode to that length.
    package static func decompress(_ input: ByteView, originalLength: Int) -> [UInt8]? {
        guard originalLength > 0, input.count > 0, input.count <= Int(Int32.max), originalLength <= Int(Int32.max) else { return nil }
        var output = [UInt8](repeating: 0, count: originalLength)
        let produced = output.withUnsafeMutableBytes { out -> Int32 in
            LZ4_decompress_safe(input.base.assumingMemoryBound(to: CChar.self),
                                out.baseAddress!.assumingMemoryBound(to: CChar.self),
                                Int32(input.count), Int32(originalLength))
        }
        return produced == Int32(originalLength) ? output : nil
    }
}
