import CLibFuzzer
@_spi(Fuzzing) import Stele
@_spi(Fuzzing) import SteleMirror
#if canImport(Glibc)
import Glibc
#endif

// One executable for every libFuzzer target: `stele-fuzz TARGET [libFuzzer arguments]`.
// Each target feeds one input to one of Stele's decoders (FuzzHarness). A thrown error or a
// rejection is fine; a trap, crash or hang is a finding, and so is a violated round-trip
// property (reported by the harness, turned into a trap here so that libFuzzer saves the input).

/// The decoders, by the target names `tools/fuzz.sh` and the corpus directories use.
let harnesses: [String: (UnsafeRawBufferPointer) -> [String]] = [
    "frame": FuzzHarness.frames,             // frames back to back: decode, values, re-encoding
    "segment": FuzzHarness.segment,          // a segment file: header, footer, recovery scan
    "checkpoint": FuzzHarness.note,          // signed note, checkpoint body, keys, authorizations
    "jsonl": FuzzHarness.importLine,         // one JSON Lines import line
    "snapshot": FuzzHarness.indexSnapshot,   // an index snapshot file
    "config": FuzzHarness.config,            // a stele.conf text
    "sealed": FuzzHarness.sealedSegment,     // a sealed segment as read: offset table, frames, copy checks
    "state": FuzzHarness.stateFile,          // tiles/state and reach
    "governance": FuzzHarness.governance,    // governance bypass and key-change notes against requests
    "s3xml": MirrorFuzzHarness.s3Listing,    // S3 answers: object and version listings, errors
    "sidecar": MirrorFuzzHarness.sidecar,    // a directory copy's NAME.sha256 file
]

let arguments = CommandLine.arguments
guard arguments.count >= 2, let chosen = harnesses[arguments[1]] else {
    let usage = "usage: stele-fuzz {\(harnesses.keys.sorted().joined(separator: "|"))} [libFuzzer arguments]\n"
    _ = usage.withCString { write(STDERR_FILENO, $0, strlen($0)) }
    exit(2)
}
/// Set once, before libFuzzer's driver starts calling `fuzz` (on this thread).
nonisolated(unsafe) let harness = chosen

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    if let violated = harness(UnsafeRawBufferPointer(start: data, count: size)).first {
        fatalError("fuzz property violated: \(violated)")
    }
    return 0
}

// SwiftPM links every executable's entry point as `main` (so tests can link executables),
// which would shadow libFuzzer's own main: start libFuzzer's driver from here instead, with the
// arguments after TARGET.
var argc = CommandLine.argc - 1
let argv = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: Int(CommandLine.argc))
argv[0] = CommandLine.unsafeArgv[0]
for i in 2 ..< Int(CommandLine.argc) { argv[i - 1] = CommandLine.unsafeArgv[i] }
argv[Int(argc)] = nil
var driverArgv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
exit(LLVMFuzzerRunDriver(&argc, &driverArgv, fuzz))
