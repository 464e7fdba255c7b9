import CLibFuzzer
@_spi(Fuzzing) import Stele
#if canImport(Glibc)
import Glibc
#endif

/// One fuzz input: one JSON Lines import line (ImportLine).
/// A thrown error or rejection is fine; a trap, crash or hang is a finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    // A violated round-trip property is a finding: stop, so that libFuzzer saves the input.
    if let violated = FuzzHarness.importLine(UnsafeRawBufferPointer(start: data, count: size)).first {
        fatalError("fuzz property violated: \(violated)")
    }
    return 0
}

// SwiftPM links every executable's entry point as `main` (so tests can link executables),
// which would shadow libFuzzer's own main: start libFuzzer's driver from here instead.
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv, fuzz))
