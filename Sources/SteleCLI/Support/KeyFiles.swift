import Foundation
import Stele

/// Creates `path` holding `text`, with exactly `permissions`, durably, through the engine's file
/// layer: exclusive creation refuses a file already there (a key is never overwritten; the
/// error is the `open` failure, exit 4), the permissions are set on the open file because the
/// creation mode passes through the umask, and the directory is synced after the file so that
/// the new name survives a crash too.
func writeNewFile(_ path: String, _ text: String, permissions: UInt32, fileSystem: any FileSystem = PosixFileSystem()) throws {
    do {
        let file = try fileSystem.open(path, .createNew(permissions: permissions))
        defer { fileSystem.close(file) }
        try fileSystem.setPermissions(file, permissions)
        try Array(text.utf8).withUnsafeBytes { try fileSystem.write(file, $0, at: 0) }
        try fileSystem.syncAll(file)
    }
    try fileSystem.syncDirectory(parentDirectory(of: path))
}

/// Replaces (or creates) `path` with `text`, readable by all (0o644), through the engine's
/// `writeAtomically`: a crash leaves the old file or the new one, never a part of either.
func replaceFile(_ path: String, _ text: String, fileSystem: any FileSystem = PosixFileSystem()) throws {
    try fileSystem.writeAtomically(Array(text.utf8), to: path, permissions: 0o644, directory: parentDirectory(of: path))
}

/// Reads a small text file, for keys and checkpoints.
func readText(_ path: String) throws -> String {
    guard let data = FileManager.default.contents(atPath: path) else { throw InputError(message: "cannot read \(path)") }
    return String(decoding: data, as: UTF8.self)
}

/// A master encryption key file (`stele keygen --encryption`).
func loadEncryptionKey(_ path: String) throws -> EncryptionKey {
    try EncryptionKey(parsing: try readText(path))
}

/// A verifier key given inline (`name+id+key`) or as a file holding one.
func loadVerifier(_ argument: String) throws -> NoteVerifier {
    if FileManager.default.fileExists(atPath: argument) {
        return try NoteVerifier(parsing: try readText(argument).trimmingCharacters(in: .whitespacesAndNewlines))
    }
    return try NoteVerifier(parsing: argument)
}

/// A witness's cosigner key given inline (`name+id+key`, type 0x04) or as a file holding one.
func loadCosignatureVerifier(_ argument: String) throws -> CosignatureVerifier {
    if FileManager.default.fileExists(atPath: argument) {
        return try CosignatureVerifier(parsing: try readText(argument).trimmingCharacters(in: .whitespacesAndNewlines))
    }
    return try CosignatureVerifier(parsing: argument)
}

/// Refuses `note` unless at least `quorum` (default: all) of `keys` cosigned it.
func requireCosignatures(_ note: String, keys arguments: [String], quorum: Int?, logKey: NoteVerifier) throws {
    guard !arguments.isEmpty else {
        if quorum != nil { throw InputError(message: "--quorum counts the --witness-key witnesses: give them") }
        return
    }
    let keys = try arguments.map(loadCosignatureVerifier)
    guard !keys.contains(where: { $0.publicKey == logKey.publicKey }) else {
        throw InputError(message: "a --witness-key is the log's own key: the log could cosign for itself")
    }
    let needed = quorum ?? keys.count
    guard (1 ... keys.count).contains(needed) else { throw InputError(message: "--quorum must be 1-\(keys.count)") }
    let valid = try CosignatureQuorum.count(in: note, keys: keys)
    guard valid >= needed else {
        throw InputError(message: "the checkpoint carries \(valid) valid cosignatures of the \(keys.count) witness keys given, \(needed) needed")
    }
}
