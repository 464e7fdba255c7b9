import Foundation
import Testing
import SteleNative
@_spi(Fuzzing) @testable import Stele
@_spi(Fuzzing) import SteleMirror

/// Inputs the fuzz targets (tools/fuzz, docs/fuzzing.md) found crashing, fixed since: each must
/// now be rejected with a typed error. The same bytes are kept in tools/fuzz/regressions/TARGET/.
@Suite struct FuzzRegressionTests {
    static func lockLine(_ lock: String) -> [UInt8] {
        Array(#"{"ns":"n","key":"k","value":"v","lock":{"mode":"governance",\#(lock)}}"#.utf8)
    }

    static func importError(_ line: [UInt8]) -> ImportLineError? {
        do {
            _ = try ImportLine(parsing: line, lineNumber: 7, now: 1_767_225_600_000_000_000)
            return nil
        } catch {
            guard case .importLine(let rejected) = error else { return nil }
            return rejected
        }
    }

    /// A date after 2262-04-11 does not fit a timestamp: converting it trapped.
    @Test func importLineLockDatePastTheYear2262IsAnError() throws {
        let line = Array(#"{"ns":"ledger","key":"e-1","value":"x","lock":{"mode":"compliance","until":"4054-01-31T00:00:00Z"}}"#.utf8)
        let error = try #require(Self.importError(line))
        #expect(error.lineNumber == 7 && error.message.contains("4054-01-31T00:00:00Z"))
        #expect(Self.importError(Self.lockLine(#""until":"1500-01-01T00:00:00Z""#)) != nil)
        // The largest and smallest dates that fit still parse.
        #expect(Self.importError(Self.lockLine(#""until":"2262-04-11T00:00:00Z""#)) == nil)
        #expect(Self.importError(Self.lockLine(#""until":"1677-09-22T00:00:00Z""#)) == nil)
    }

    /// Days times 86,400, seconds times 10^9 and now plus the duration each overflowed Int64.
    @Test func importLineLockDurationOverflowIsAnError() {
        for duration in ["999999999999999d", "9999999999s", "106000d"] {
            let error = Self.importError(Self.lockLine(#""for":"\#(duration)""#))
            #expect(error?.message.contains(duration) == true, "\(duration)")
        }
        #expect(Self.importError(Self.lockLine(#""for":"36500d""#)) == nil, "a century still works")
    }

    /// A footer (valid checksum) whose last sequence is UInt64.max and first 0: computing the
    /// record count from them overflowed.
    @Test func footerWithSequenceSpanOfUInt64MaxIsMalformed() {
        let footer = SegmentFooter(recordCount: 1, firstSequence: 0, lastSequence: .max, framesEnd: 172, sealedAt: 0,
                                   treeSize: 0, treeRoot: Digest(bytes: [UInt8](repeating: 0, count: 32))!,
                                   contentDigest: Digest(bytes: [UInt8](repeating: 0, count: 32))!, frontier: [],
                                   sealHash: Digest(bytes: [UInt8](repeating: 0, count: 32))!)
        let file = [UInt8](repeating: 0, count: SegmentHeader.size + Frame.overhead) + footer.encoded
        let result = ByteView.of(file) { SegmentFooter.decode($0, at: SegmentHeader.size + Frame.overhead) }
        #expect(result == .failure(.malformed("segment footer fields")))
        #expect(ByteView.of(file) { SegmentFooter.decodeAtEnd($0) } == .failure(.malformed("segment footer fields")))
    }

    /// `tiles/state` with a leading space (or two spaces between fields) decoded: the fields were
    /// split on runs of spaces, so text `encoded` never writes was taken for a state file.
    @Test func tileStateWithExtraSpacesIsRejected() throws {
        let state = TileState(size: 19, root: Digest(bytes: [UInt8](repeating: 0xc9, count: 32))!)
        #expect(try TileState.decode(state.encoded, path: "state") == state)
        let text = String(decoding: state.encoded, as: UTF8.self)
        for variant in [" " + text, text.replacingOccurrences(of: " 19 ", with: "  19 ")] {
            #expect(throws: SteleError.corruption(Corruption(file: "state", detail: "not a tile state file"))) {
                try TileState.decode(Array(variant.utf8), path: "state")
            }
        }
    }

    /// Every saved crash input replayed through its fuzz target's harness: none may trap.
    @Test func savedFuzzCrashesAreRejectedCleanly() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("tools/fuzz/regressions").path
        let harness: [String: (UnsafeRawBufferPointer) -> [String]] = [
            "frame": FuzzHarness.frames, "segment": FuzzHarness.segment, "checkpoint": FuzzHarness.note,
            "jsonl": FuzzHarness.importLine, "snapshot": FuzzHarness.indexSnapshot, "config": FuzzHarness.config,
            "sealed": FuzzHarness.sealedSegment, "state": FuzzHarness.stateFile, "governance": FuzzHarness.governance,
            "s3xml": MirrorFuzzHarness.s3Listing, "sidecar": MirrorFuzzHarness.sidecar,
        ]
        var replayed = 0
        for (target, run) in harness {
            let directory = root + "/" + target
            for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
                let violated = try readFile(directory + "/" + name).withUnsafeBytes { run($0) }
                #expect(violated.isEmpty, "\(target)/\(name): \(violated)")
                replayed += 1
            }
        }
        #expect(replayed >= 4)
    }
}
