import Foundation
import Testing
@testable import Stele
import SteleNative

/// docs/durability.md: between syncs the writer starts writeback of the active segment's
/// finished pages every 8 MiB, never the header page (which is updated in place and left to the
/// syncs): `ActiveSegment.startWritebackIfDue` starts at `max(writebackStarted, page)`.
@Suite struct WritebackTests {
    @Test func writebackStartsCoverFinishedPagesAndNeverTheHeaderPage() throws {
        let segmentSize = 32 << 20
        try withStore(segmentSize: segmentSize) { _, path in
            let fs = FaultyFileSystem()
            var options = Store.Options(commitPolicy: .none, compressionThreshold: .max)
            options.fileSystem = fs
            let store = try Store(path: path, options: options)
            // 24 MiB of frames in the active segment, through both append paths: batches staged
            // on two threads, and single records copied into the mapping.
            for round in 0 ..< 24 {
                let entries = (0 ..< 16).map { i in
                    Entry(namespace: "n", key: Array("k-\(round)-\(i)".utf8), value: [UInt8](repeating: UInt8(truncatingIfNeeded: round * 16 + i), count: 64 << 10))
                }
                if round % 2 == 0 {
                    try store.append(contentsOf: entries)
                } else {
                    for entry in entries { try store.append(entry) }
                }
            }
            #expect(try store.stats().sealedSegments == 0, "every frame is in the first, active, segment")
            try store.close()

            let page = MappedRegion.pageSize
            let starts = fs.writebacks.withLock { $0 }.filter { $0.path.hasSuffix(".seg") }
            #expect(starts.count >= 2, "\(starts)")
            #expect(starts.allSatisfy { $0.path == segmentPath(path, 1) })
            #expect(starts.first?.offset == page, "the first start is just after the header page")
            for (i, start) in starts.enumerated() {
                #expect(start.offset >= page && start.offset % page == 0 && start.length % page == 0, "\(start)")
                #expect(start.length >= 8 << 20 && start.offset + start.length <= segmentSize, "\(start)")
                if i > 0 { #expect(start.offset == starts[i - 1].offset + starts[i - 1].length, "each start continues the last") }
            }
        }
    }
}
