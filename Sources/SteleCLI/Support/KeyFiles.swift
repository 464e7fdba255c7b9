import Foundation
import Glibc
import Stele

/// Creates `path` with `mode` (failing if it exists) and writes `text`.
func writeNew(_ path: String, _ text: String, mode: mode_t) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
    guard fd >= 0 else { throw SteleError.io(IOError(operation: "open", path: path, errno: errno)) }
    defer { close(fd) }
    let bytes = Array(text.utf8)
    guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count, fsync(fd) == 0 else {
        throw SteleError.io(IOError(operation: "write", path: path, errno: errno))
    }
}

/// Reads a small text file, for keys and checkpoints.
func readText(_ path: String) throws -> String {
    guard let data = FileManager.default.contents(atPath: path) else { throw InputError(message: "cannot read \(path)") }
    return String(decoding: data, as: UTF8.self)
}

/// A verifier key given inline (`name+id+key`) or as a file holding one.
func loadVerifier(_ argument: String) throws -> NoteVerifier {
    if FileManager.default.fileExists(atPath: argument) {
        return try NoteVerifier(parsing: try readText(argument).trimmingCharacters(in: .whitespacesAndNewlines))
    }
    return try NoteVerifier(parsing: argument)
}
