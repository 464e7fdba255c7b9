import Foundation

/// Keys (and other bytes) in text output and on the command line, unambiguously: printable
/// UTF-8 as is; anything else (invalid UTF-8, control characters, spaces at either end) and any
/// text that itself starts with `b64:` as `b64:` and its base64. Every command that takes a key
/// reads the same form, so every key that can be shown can be named.
enum KeyText {
    static let prefix = "b64:"

    static func display(_ bytes: [UInt8]) -> String {
        if let text = String(validating: bytes, as: UTF8.self), !text.hasPrefix(prefix),
           !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }),
           text.first?.isWhitespace == false, text.last?.isWhitespace == false {
            return text
        }
        return prefix + Data(bytes).base64EncodedString()
    }

    static func parse(_ text: String) throws -> [UInt8] {
        guard text.hasPrefix(prefix) else { return Array(text.utf8) }
        guard let data = Data(base64Encoded: String(text.dropFirst(prefix.count))) else {
            throw InputError(message: "\(text): not valid base64 after b64:")
        }
        return Array(data)
    }
}
