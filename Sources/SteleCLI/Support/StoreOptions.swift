import ArgumentParser
import Foundation
import Stele

// The positional arguments and options that several commands share, declared once so that each
// is spelled, explained and parsed alike wherever it appears. A command whose spelling or help
// text differs (`put`'s namespace, `bench`'s and `demo`'s directory, `restore --to`) keeps its
// own declaration: grouping must not change what `--help` says.

/// The directory of the store a command works on: the first positional argument.
struct StoreDirectory: ParsableArguments {
    @Argument(help: ArgumentHelp("The store directory.", valueName: "dir"))
    var path: String

    @Option(name: .customLong("encryption-key"),
            help: ArgumentHelp("An encrypted store's master key file (default: $STELE_ENCRYPTION_KEY_FILE); needed to write and to read keys and values.",
                               valueName: "file"))
    var encryptionKeyFile: String?

    /// The master key from `--encryption-key` or `STELE_ENCRYPTION_KEY_FILE`, if either is given.
    /// - Throws: ``InputError`` for an unreadable file; `SteleError.encryption` for one that is not a key.
    func encryptionKey() throws -> EncryptionKey? {
        guard let file = encryptionKeyFile ?? ProcessInfo.processInfo.environment["STELE_ENCRYPTION_KEY_FILE"], !file.isEmpty else {
            return nil
        }
        return try loadEncryptionKey(file)
    }
}

/// The namespace a command works in, as a positional argument after the store directory.
struct NamespaceArgument: ParsableArguments {
    @Argument(help: ArgumentHelp("Namespace.", valueName: "namespace"))
    var name: String
}

/// A key, as a positional argument in ``KeyText`` form: any key that the output shows can be
/// named, bytes that are not printable text included.
struct KeyArgument: ParsableArguments {
    /// The key as given, for messages: it names the key the way the user did.
    @Argument(help: ArgumentHelp("Key (b64:BASE64 for bytes that are not printable UTF-8).", valueName: "key"))
    var text: String

    /// The key's bytes.
    /// - Throws: ``InputError`` when a `b64:` key is not valid base64.
    func bytes() throws -> [UInt8] { try KeyText.parse(text) }
}

/// `--sync`: when the records that a command appends in batches become durable.
struct CommitPolicyOption: ParsableArguments {
    @Option(help: "Commit policy: none, batch, or interval:MS.")
    var sync: String = "batch"

    /// Parses `none`, `batch` or `interval:MS`.
    /// - Throws: `ValidationError` (a usage error, exit 2) for anything else.
    func policy() throws -> CommitPolicy {
        switch sync {
        case "none": return .none
        case "batch": return .everyBatch
        default:
            if sync.hasPrefix("interval:"), let ms = Int(sync.dropFirst("interval:".count)), ms > 0 {
                return .interval(.milliseconds(ms))
            }
            throw ValidationError("--sync must be none, batch or interval:MS (got \(sync))")
        }
    }
}
