import Foundation
import Testing
@_spi(Fuzzing) @testable import Stele
@_spi(Fuzzing) @testable import SteleMirror

/// docs/fuzzing.md: each target checks a property besides "no trap". Those checks can fail: fed
/// the seed corpus with a wrong encoder (one bit of every re-encoding, and of every note the
/// harness signs, flipped before the property compares it), each target reports its property by
/// name; with the true encoder, nothing.
@Suite struct FuzzPropertyTests {
    typealias Encoder = @Sendable ([UInt8]) -> [UInt8]

    /// Flips the low bit of the middle byte.
    static let wrong: Encoder = { bytes in
        var bytes = bytes
        if bytes.isEmpty { return [1] }
        bytes[bytes.count / 2] ^= 0x01
        return bytes
    }

    static let targets: [String: @Sendable (UnsafeRawBufferPointer, @escaping Encoder) -> [String]] = [
        "frame": { data, e in FuzzRun(reencoded: e).run { $0.frames(data) } },
        "segment": { data, e in FuzzRun(reencoded: e).run { $0.segment(data) } },
        "checkpoint": { data, e in FuzzRun(reencoded: e).run { $0.note(data) } },
        "jsonl": { data, e in FuzzRun(reencoded: e).run { $0.importLine(data) } },
        "snapshot": { data, e in FuzzRun(reencoded: e).run { $0.indexSnapshot(data) } },
        "config": { data, e in FuzzRun(reencoded: e).run { $0.config(data) } },
        "sealed": { data, e in FuzzRun(reencoded: e).run { $0.sealedSegment(data) } },
        "state": { data, e in FuzzRun(reencoded: e).run { $0.stateFile(data) } },
        "governance": { data, e in FuzzRun(reencoded: e).run { $0.governance(data) } },
        "s3xml": { data, e in MirrorFuzzHarness.s3Listing(data, reencoded: e) },
        "sidecar": { data, e in MirrorFuzzHarness.sidecar(data, reencoded: e) },
    ]

    /// What each seed makes its target report under ``wrong``: exactly the properties whose
    /// comparison the flipped bit reaches.
    static let expected: [String: Set<String>] = [
        "frame/put-0.frame": ["frame re-encodes to the same bytes"],
        "frame/put-1.frame": ["frame re-encodes to the same bytes"],
        "frame/put-2.frame": ["frame re-encodes to the same bytes"],
        "frame/tombstone-0.frame": ["frame re-encodes to the same bytes"],
        "frame/config-0.frame": ["frame re-encodes to the same bytes", "config record round trip"],
        "frame/retention-0.frame": ["frame re-encodes to the same bytes", "retention record round trip"],
        "frame/legal-hold-0.frame": ["frame re-encodes to the same bytes", "legal-hold record round trip"],
        "frame/policy-0.frame": ["frame re-encodes to the same bytes", "policy record round trip"],
        "frame/redaction-0.frame": ["frame re-encodes to the same bytes", "redaction record round trip"],
        "frame/loss-0.frame": ["frame re-encodes to the same bytes", "loss record round trip"],
        // An encrypted store's frames: puts (plain and LZ4 under the blob), a tombstone, a shred record.
        "frame/put-4.frame": ["frame re-encodes to the same bytes"],
        "frame/put-5.frame": ["frame re-encodes to the same bytes"],
        "frame/tombstone-4.frame": ["frame re-encodes to the same bytes"],
        "frame/shred-0.frame": ["frame re-encodes to the same bytes", "shred record round trip"],
        "frame/first-five.frames": ["frame re-encodes to the same bytes", "config record round trip", "retention record round trip"],
        "segment/sealed.seg": ["segment header re-encodes to the same bytes", "footer re-encodes to the same bytes"],
        "segment/active.seg": ["segment header re-encodes to the same bytes"],
        "checkpoint/checkpoint.note": ["stored checkpoint round trip", "signed note does not open to its text"],
        "checkpoint/verifier.key": ["verifier key round trip"],
        "checkpoint/signer.key": ["signer key round trip"],
        "checkpoint/authorization.note": ["signed note does not open to its text"],
        "snapshot/snapshot": ["index snapshot re-encodes to the same bytes"],
        "config/stele.conf": ["store config round trip"],
        "config/governed.conf": ["store config round trip"],
        "sealed/purged.seg": ["a sealed segment is a purge's rewrite of itself (every frame equal)"],
        "sealed/second.seg": ["a sealed segment is a purge's rewrite of itself (every frame equal)"],
        "state/tiles-state": ["tile state re-encodes to the same bytes"],
        "state/reach": ["reach re-encodes to the same bytes"],
        "governance/bypass.note": ["a bypass is accepted for the request it names"],
        "governance/whole-key-bypass.txt": ["a bypass is accepted for the request it names"],
        "governance/key-change.note": ["a key change is accepted as of its own tree size"],
        "governance/retirement.txt": ["a key change is accepted as of its own tree size"],
        // The middle of these pages is markup the reader skips (a closing tag): nothing to report.
        "s3xml/list-objects-v2.xml": [], "s3xml/list-object-versions.xml": [], "s3xml/error.xml": [],
        "sidecar/segment.sha256": ["sidecar round trip"],
        "sidecar/checkpoint.sha256": ["sidecar round trip"],
    ]

    /// Flips the low bit of the byte just before (or just after) the first occurrence of `marker`.
    static func flip(before marker: String) -> Encoder { flip(marker, at: -1) }
    static func flip(after marker: String) -> Encoder { flip(marker, at: marker.utf8.count) }

    static func flip(_ marker: String, at delta: Int) -> Encoder {
        { bytes in
            var bytes = bytes
            let needle = Array(marker.utf8)
            guard let at = (0 ... max(0, bytes.count - needle.count)).first(where: { bytes[$0 ..< min(bytes.count, $0 + needle.count)].elementsEqual(needle) }),
                  bytes.indices.contains(at + delta) else { return [] }
            bytes[at + delta] ^= 0x01
            return bytes
        }
    }

    @Test func everyTargetsPropertyCheckFiresOnAWrongEncoding() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let seeds = try FuzzCorpusTests.seeds(dir)
        #expect(Set(seeds.keys) == Set(Self.targets.keys))
        var fired: Set<String> = []
        var cases = 0
        // The jsonl target writes its line back with JSONEncoder, whose order of a lock's fields
        // varies from run to run: its middle byte is not one place. Targeted flips below.
        for (target, run) in Self.targets where target != "jsonl" {
            for (name, bytes) in seeds[target] ?? [] {
                let right = bytes.withUnsafeBytes { run($0, { $0 }) }
                #expect(right.isEmpty, "\(target)/\(name): \(right)")
                let wrong = Set(bytes.withUnsafeBytes { run($0, Self.wrong) })
                #expect(wrong == Self.expected["\(target)/\(name)"], "\(target)/\(name): \(wrong.sorted())")
                fired.formUnion(wrong)
                cases += 1
            }
        }
        #expect(cases == Self.expected.count)

        // The jsonl target, and properties the middle bit does not reach in any seed, with bits that do.
        let seed = { (target: String, name: String) in try #require(seeds[target]?.first { $0.0 == name }?.1) }
        let note = String(decoding: try seed("checkpoint", "checkpoint.note"), as: UTF8.self)
        let body = Array(try #require(note.components(separatedBy: "\n\n").first).utf8) + [0x0a]  // a bare checkpoint
        let targeted: [(String, [UInt8], Encoder, Set<String>)] = [
            ("checkpoint", body, Self.wrong, ["checkpoint text round trip", "signed note does not open to its text"]),
            ("jsonl", try seed("jsonl", "line-0.jsonl"), Self.flip(after: #""ns":""#), ["import line round trip (entry)"]),
            ("jsonl", try seed("jsonl", "line-1.jsonl"), Self.flip(after: #""key_b64":""#), ["import line round trip (entry)"]),
            // A mode one bit away from a valid one: the line no longer parses, so the entry differs too.
            ("jsonl", try seed("jsonl", "line-3.jsonl"), Self.flip(after: #""mode":""#), ["import line round trip (entry)", "import line round trip (lock mode)"]),
            ("jsonl", try seed("jsonl", "line-2.jsonl"), Self.flip(before: "-01-31T"), ["import line round trip (lock date)"]),
            ("s3xml", try seed("s3xml", "list-objects-v2.xml"), Self.flip(before: "egments/000000000001"), ["object listing round trip"]),
            ("s3xml", try seed("s3xml", "list-object-versions.xml"), Self.flip(before: "egments/000000000002"), ["version listing round trip"]),
        ]
        for (target, input, encoder, expected) in targeted {
            let run = try #require(Self.targets[target])
            #expect(input.withUnsafeBytes { run($0, { $0 }) }.isEmpty, "\(target)")
            let wrong = Set(input.withUnsafeBytes { run($0, encoder) })
            #expect(wrong == expected, "\(target): \(wrong.sorted())")
            fired.formUnion(wrong)
        }

        // Every round-trip and acceptance property of docs/fuzzing.md's table has fired. Not
        // reached by a wrong encoder: the sealed target's offset-table count, and the refusals
        // of the governance target (a wrong note is refused anyway).
        #expect(fired == [
            "frame re-encodes to the same bytes", "retention record round trip", "legal-hold record round trip", "policy record round trip",
            "redaction record round trip", "config record round trip", "loss record round trip", "shred record round trip",
            "segment header re-encodes to the same bytes", "footer re-encodes to the same bytes",
            "checkpoint text round trip", "stored checkpoint round trip", "verifier key round trip", "signer key round trip",
            "signed note does not open to its text",
            "import line round trip (entry)", "import line round trip (lock mode)", "import line round trip (lock date)",
            "index snapshot re-encodes to the same bytes", "store config round trip",
            "a sealed segment is a purge's rewrite of itself (every frame equal)",
            "tile state re-encodes to the same bytes", "reach re-encodes to the same bytes",
            "a bypass is accepted for the request it names", "a key change is accepted as of its own tree size",
            "object listing round trip", "version listing round trip", "sidecar round trip",
        ], "\(fired.sorted())")
    }
}
