import Foundation
import ArgumentParser
import Stele

/// Output helpers: stdout is buffered and flushed at exit; stderr is written at once.
enum Console {
    static func error(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    /// A line on stdout, written at once (for progress that a pipe should see as it happens).
    static func line(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }
}

/// Bad input data (not usage): exit code 1.
struct InputError: Error {
    let message: String
}

/// Bytes as JSON-ready fields: `"name":"text"` when valid UTF-8, else `"name_b64":"..."`.
func jsonBytesField(_ name: String, _ bytes: [UInt8]) -> String {
    if let text = String(validating: bytes, as: UTF8.self) {
        return "\"\(name)\":\(jsonString(text))"
    }
    return "\"\(name)_b64\":\"\(Data(bytes).base64EncodedString())\""
}

/// A JSON string literal (RFC 8259 escaping).
func jsonString(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20:
            let hex = String(scalar.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

/// RFC 3339 UTC time with nanoseconds, e.g. `2026-11-21T22:52:22.123456789Z`.
func rfc3339(nanoseconds: Int64) -> String {
    let seconds = nanoseconds >= 0 ? nanoseconds / 1_000_000_000 : (nanoseconds - 999_999_999) / 1_000_000_000
    let fraction = nanoseconds - seconds * 1_000_000_000
    var days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
    let secondOfDay = seconds - days * 86_400
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    days += 719_468
    let era = (days >= 0 ? days : days - 146_096) / 146_097
    let dayOfEra = days - era * 146_097
    let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
    let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
    let mp = (5 * dayOfYear + 2) / 153
    let day = dayOfYear - (153 * mp + 2) / 5 + 1
    let month = mp < 10 ? mp + 3 : mp - 9
    let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
    func pad(_ v: Int64, _ width: Int) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }
    return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2)).\(pad(fraction, 9))Z"
}

/// Parses `none`, `batch` or `interval:MS` into a commit policy.
func parseCommitPolicy(_ text: String) throws -> CommitPolicy {
    switch text {
    case "none": return .none
    case "batch": return .everyBatch
    default:
        if text.hasPrefix("interval:"), let ms = Int(text.dropFirst("interval:".count)), ms > 0 {
            return .interval(.milliseconds(ms))
        }
        throw ValidationError("--sync must be none, batch or interval:MS (got \(text))")
    }
}

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
