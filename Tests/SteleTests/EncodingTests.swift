import Foundation
import Testing
@testable import Stele
import SteleNative

@Suite struct EncodingTests {
    /// Encodes one frame into a fresh array.
    static func encodeFrame(type: RecordType = .put, flags: UInt8 = 0, sequence: UInt64, timestamp: Int64,
                            namespace: [UInt8], key: [UInt8], stored: [UInt8], valueLength: Int) -> [UInt8] {
        let length = Frame.length(namespace: namespace.count, key: key.count, stored: stored.count)
        return ByteWriter.makeArray(count: length) { writer in
            namespace.withUnsafeBytes { ns in
                key.withUnsafeBytes { k in
                    stored.withUnsafeBytes { s in
                        _ = Frame.encode(into: writer, at: 0, type: type, flags: flags, sequence: sequence, timestamp: timestamp,
                                         namespace: ns, key: k, stored: s, valueLength: valueLength)
                    }
                }
            }
        }
    }

    @Test func frameRoundTrip() throws {
        for valueLength in [0, 1, 100, 5000] {
            let value = (0 ..< valueLength).map { UInt8(truncatingIfNeeded: $0 * 7) }
            let bytes = Self.encodeFrame(sequence: 42, timestamp: -5, namespace: Array("ns".utf8), key: [1, 2, 3],
                                         stored: value, valueLength: value.count)
            #expect(bytes.count == Frame.overhead + 2 + 3 + valueLength)
            let record = try ByteView.of(bytes) { view in
                let frame = try Frame.decode(view, at: 0, limit: view.count).get()
                return try #require(frame.record(in: view))
            }
            #expect(record == Record(sequence: 42, type: .put, timestamp: -5, namespace: Array("ns".utf8), key: [1, 2, 3], value: value))
        }
    }

    @Test func compressedFrameRoundTripAndSameLeafHash() throws {
        let value = Array(String(repeating: "{\"status\":\"paid\",\"currency\":\"CNY\"}", count: 60).utf8)
        let compressed = try #require(value.withUnsafeBytes { LZ4.compressIfWorthIt($0) })
        #expect(compressed.count < value.count / 4)
        let packed = Self.encodeFrame(flags: Frame.flagLZ4, sequence: 7, timestamp: 9, namespace: [0x61], key: [0x62],
                                      stored: compressed, valueLength: value.count)
        let plain = Self.encodeFrame(sequence: 7, timestamp: 9, namespace: [0x61], key: [0x62], stored: value, valueLength: value.count)
        let (packedRecord, packedLeaf) = try ByteView.of(packed) { view in
            let frame = try Frame.decode(view, at: 0, limit: view.count).get()
            return (frame.record(in: view), frame.leafHash(in: view))
        }
        let plainLeaf = try ByteView.of(plain) { try Frame.decode($0, at: 0, limit: $0.count).get().leafHash(in: $0) }
        #expect(packedRecord?.value == value)
        #expect(packedLeaf != nil && packedLeaf == plainLeaf, "leaf hash must not depend on compression")
        #expect(plainLeaf == TreeHash.leaf(CanonicalEntry.bytes(type: .put, sequence: 7, timestamp: 9, namespace: [0x61],
                                                                key: [0x62], value: value)))
    }

    @Test func incompressibleValuesAreNotCompressed() {
        var state: UInt64 = 1
        let random = (0 ..< 4096).map { _ -> UInt8 in
            state = state &* 6_364_136_223_846_793_005 &+ 1
            return UInt8(truncatingIfNeeded: state >> 33)
        }
        #expect(random.withUnsafeBytes { LZ4.compressIfWorthIt($0) } == nil)
    }

    /// A large value is judged by its first 4 KiB: random ones are not compressed, text is (and
    /// round-trips), and random bytes behind a compressible opening still compress as a whole
    /// only if the whole saves an eighth.
    @Test func largeValuesAreJudgedByTheirOpeningBytes() throws {
        var state: UInt64 = 7
        let random = (0 ..< 64 << 10).map { _ -> UInt8 in
            state = state &* 6_364_136_223_846_793_005 &+ 1
            return UInt8(truncatingIfNeeded: state >> 33)
        }
        #expect(random.withUnsafeBytes { LZ4.compressIfWorthIt($0) } == nil)
        let text = Array(String(repeating: "{\"order\": 1234, \"state\": \"paid\"} ", count: 2000).utf8)
        let packed = try #require(text.withUnsafeBytes { LZ4.compressIfWorthIt($0) })
        #expect(packed.count < text.count / 4)
        #expect(ByteView.of(packed) { LZ4.decompress($0, originalLength: text.count) } == text)
        // Compressible opening, random rest: the sample passes, the whole does not save an eighth.
        let mixed = Array(text.prefix(8 << 10)) + random
        #expect(mixed.withUnsafeBytes { LZ4.compressIfWorthIt($0) } == nil)
        // Random opening, compressible rest: taken as incompressible (the documented rule).
        let late = Array(random.prefix(4 << 10)) + text
        #expect(late.withUnsafeBytes { LZ4.compressIfWorthIt($0) } == nil)
    }

    @Test func everySingleByteFlipIsRejected() {
        let bytes = Self.encodeFrame(sequence: 1, timestamp: 2, namespace: Array("orders".utf8), key: Array("k1".utf8),
                                     stored: Array("hello world".utf8), valueLength: 11)
        for i in 0 ..< bytes.count {
            for bit in [0, 3, 7] {
                var damaged = bytes
                damaged[i] ^= UInt8(1 << bit)
                let result = ByteView.of(damaged) { Frame.decode($0, at: 0, limit: $0.count) }
                guard case .failure = result else {
                    Issue.record("flip of bit \(bit) in byte \(i) was accepted")
                    continue
                }
            }
        }
    }

    @Test func unknownTypeAndFlagsAreRejectedEvenWithAValidChecksum() {
        var bytes = Self.encodeFrame(sequence: 1, timestamp: 2, namespace: [1], key: [2], stored: [3], valueLength: 1)
        func reseal(_ b: inout [UInt8]) {
            let sum = xxh3(Array(b[0 ..< b.count - 8]))
            withUnsafeBytes(of: sum.littleEndian) { b.replaceSubrange(b.count - 8 ..< b.count, with: $0) }
        }
        bytes[4] = 99
        reseal(&bytes)
        #expect(ByteView.of(bytes) { Frame.decode($0, at: 0, limit: $0.count) } == .failure(.unknownType(99)))
        bytes[4] = RecordType.put.rawValue
        bytes[5] = 0x80
        reseal(&bytes)
        #expect(ByteView.of(bytes) { Frame.decode($0, at: 0, limit: $0.count) } == .failure(.unknownFlags(0x80)))
    }

    @Test func headerAndFooterRoundTrip() throws {
        let header = SegmentHeader(storeID: Array(0 ..< 16), index: 3, firstSequence: 1000, createdAt: 123,
                                   previousSeal: SHA256Hasher.hash([1, 2, 3]))
        let decoded = try ByteView.of(header.encoded) { try SegmentHeader.decode($0).get() }
        #expect(decoded == header)

        var frontier = Frontier()
        for i in 0 ..< 1011 { frontier.append(TreeHash.leaf([UInt8(i & 0xff)])) }
        var footer = SegmentFooter(recordCount: 11, firstSequence: 1000, lastSequence: 1010, framesEnd: 5000, sealedAt: 77,
                                   treeSize: 1011, treeRoot: frontier.root, contentDigest: SHA256Hasher.hash([9]),
                                   frontier: frontier.hashes, sealHash: .zero)
        footer.sealHash = footer.computeSealHash(header: header)
        var file = [UInt8](repeating: 0, count: 5000)
        file += footer.encoded
        let back = try ByteView.of(file) { try SegmentFooter.decodeAtEnd($0).get() }
        #expect(back == footer)
        #expect(footer.size == 184 + 32 * 1011.nonzeroBitCount)
    }

    @Test func newerSegmentVersionIsRejectedClearly() {
        var bytes = SegmentHeader(storeID: Array(repeating: 1, count: 16), index: 1, firstSequence: 0, createdAt: 0,
                                  previousSeal: .zero).encoded
        bytes[8] = 2
        // A flipped version byte is damage (the checksum no longer matches)...
        #expect(ByteView.of(bytes) { SegmentHeader.decode($0) } == .failure(.checksum("segment header")))
        // ...while a header really written by a newer version is refused as such.
        let sum = xxh3(Array(bytes[0 ..< 120]))
        withUnsafeBytes(of: sum.littleEndian) { bytes.replaceSubrange(120 ..< 128, with: $0) }
        #expect(ByteView.of(bytes) { SegmentHeader.decode($0) } == .failure(.unsupportedVersion(found: 2, supported: 1)))
    }

    @Test func configRoundTripAndRejections() throws {
        let config = StoreConfig(storeID: Array(0 ..< 16), createdAt: 5, segmentSize: 1 << 20, origin: "example.com/log")
        #expect(try StoreConfig.decode(config.encoded, path: "c") == config)
        let newer = config.encoded.replacingOccurrences(of: "stele-store 1", with: "stele-store 2")
        #expect(throws: SteleError.unsupportedVersion(file: "c", found: 2, supported: 1)) { try StoreConfig.decode(newer, path: "c") }
        let edited = config.encoded.replacingOccurrences(of: "segment-size 1048576", with: "segment-size 2097152")
        #expect(throws: SteleError.corruption(Corruption(file: "c", detail: "config checksum mismatch"))) {
            try StoreConfig.decode(edited, path: "c")
        }
    }

    /// The worked example in docs/format.md must be exactly what the code produces and decodes.
    @Test func workedExampleInFormatDocDecodes() throws {
        let doc = try String(contentsOfFile: Self.repositoryRoot + "/docs/format.md", encoding: .utf8)
        let hex = try #require(Self.block(doc, "example-frame")).split(whereSeparator: { $0 == " " || $0 == "\n" }).joined()
        let bytes = try #require(bytesFromHex(hex))
        let leafHex = try #require(Self.block(doc, "example-leaf-hash")).trimmingCharacters(in: .whitespacesAndNewlines)
        let (record, leaf) = try ByteView.of(bytes) { view in
            let frame = try Frame.decode(view, at: 0, limit: view.count).get()
            #expect(frame.length == view.count)
            return (frame.record(in: view), frame.leafHash(in: view))
        }
        #expect(record == Record(sequence: 0, type: .put, timestamp: 1_700_000_000_000_000_000,
                                 namespace: Array("acme/orders".utf8), key: Array("order-1001".utf8),
                                 value: Array("{\"total\":4200}".utf8)))
        #expect(leaf?.hex == leafHex)
        let reencoded = Self.encodeFrame(sequence: 0, timestamp: 1_700_000_000_000_000_000, namespace: Array("acme/orders".utf8),
                                         key: Array("order-1001".utf8), stored: Array("{\"total\":4200}".utf8), valueLength: 14)
        #expect(reencoded == bytes)
    }

    static var repositoryRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    /// The text between `<!-- name -->` and `<!-- /name -->`, without a surrounding code fence.
    static func block(_ doc: String, _ name: String) -> String? {
        guard let start = doc.range(of: "<!-- \(name) -->"), let end = doc.range(of: "<!-- /\(name) -->") else { return nil }
        return doc[start.upperBound ..< end.lowerBound].split(separator: "\n").filter { !$0.hasPrefix("```") }.joined(separator: "\n")
    }
}
