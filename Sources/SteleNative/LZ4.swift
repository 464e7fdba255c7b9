import CLZ4

/// LZ4 block compression for large values (see `docs/format.md`, "Compression").
package enum LZ4 {
    /// Values at least this long are first judged by their opening ``sampleLength`` bytes.
    package static let sampledFrom = 16 << 10
    package static let sampleLength = 4 << 10

    /// Compresses `input`; returns nil when the result would not be at least one eighth smaller,
    /// so that incompressible data is stored as is and never pays for decompression. A value of
    /// ``sampledFrom`` bytes or more whose first ``sampleLength`` bytes do not shrink by an
    /// eighth is taken as incompressible without compressing the rest (random or already
    /// compressed data, where a whole attempt cost 4% of a 64 KiB append).
    /// Cost: LZ4 over the input (about 1 GB/s here), or over the sample alone.
    package static func compressIfWorthIt(_ input: UnsafeRawBufferPointer) -> [UInt8]? {
        guard input.count > 0, input.count <= Int(LZ4_MAX_INPUT_SIZE) else { return nil }
        if input.count >= sampledFrom, compress(UnsafeRawBufferPointer(rebasing: input.prefix(sampleLength))) == nil { return nil }
        return compress(input)
    }

    /// `input` compressed, if that is at least one eighth smaller.
    private static func compress(_ input: UnsafeRawBufferPointer) -> [UInt8]? {
        guard let source = input.baseAddress else { return nil }
        let limit = input.count - input.count / 8
        guard limit > 0 else { return nil }
        let output = [UInt8](unsafeUninitializedCapacity: limit) { out, initialized in
            let written = LZ4_compress_default(source.assumingMemoryBound(to: CChar.self),
                                               UnsafeMutableRawPointer(out.baseAddress!).assumingMemoryBound(to: CChar.self),
                                               Int32(input.count), Int32(limit))
            initialized = max(0, Int(written))
        }
        return output.isEmpty ? nil : output
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
