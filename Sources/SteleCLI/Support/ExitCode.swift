import Stele

/// The `stele` command's exit codes: 0 ok, 1 not found or refused, 2 usage (ArgumentParser),
/// 3 corruption detected (or a copy or checkpoint that shows lost or rewritten history, or a
/// damaged keyring), 4 I/O. A missing or wrong encryption key, or a shredded namespace, is 1.
/// The CLI's business, not the library's: the library reports what happened, the CLI decides
/// what a shell script sees.
extension SteleError {
    var exitCode: Int32 {
        switch self {
        case .corruption, .recordsLost, .checkpoint(.storeBehindCheckpoint), .checkpoint(.rootMismatch): 3
        case .mirror(.missing), .mirror(.altered), .mirror(.checkpointMismatch), .mirror(.conflict), .mirror(.tampered): 3
        case .encryption(.keyringDamaged): 3
        case .io, .writesDisabled, .mirror(.transport), .mirror(.target), .encryption(.libcryptoFailed): 4
        default: 1
        }
    }
}
