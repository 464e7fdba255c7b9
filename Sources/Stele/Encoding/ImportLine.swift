#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One line of a JSON Lines import (`stele append --jsonl`): a put, with an optional lock.
///
/// Each line is an object `{"ns": "...", "key": "...", "value": "..."}`. `"key_b64"` and
/// `"value_b64"` (standard padded base64) carry bytes that are not text; exactly one of each
/// pair must be given. An optional `"lock": {"mode": "governance" | "compliance", "until":
/// ISO 8601 date}` or `"for": "90s" | "15m" | "12h" | "30d"` (from `now`) locks the new version.
/// Unknown fields are ignored. Blank lines are the caller's business (the CLI skips them).
///
/// The parser lives in the library, not the CLI, so that the fuzz target (`tools/fuzz`) runs
/// the code that reads real input.
public struct ImportLine: Sendable, Equatable {
    /// The record to append.
    public var entry: Entry
    /// The lock to put on the new version, if the line asks for one.
    public var lock: RetentionLock?

    /// Parses one line (without its newline).
    /// - Parameters:
    ///   - line: the line's bytes (UTF-8 JSON).
    ///   - lineNumber: the 1-based line number, repeated in errors.
    ///   - now: the current time in ns since the Unix epoch, the base of a `"for"` lock.
    /// - Throws: ``ImportLineError`` for anything that is not a valid line.
    public init(parsing line: [UInt8], lineNumber: Int, now: Int64) throws(ImportLineError) {
        func fail(_ message: String) -> ImportLineError { ImportLineError(lineNumber: lineNumber, message: message) }
        let fields: Fields
        do {
            fields = try JSONDecoder().decode(Fields.self, from: Data(line))
        } catch {
            throw fail("not a JSON object with \"ns\", \"key\" and \"value\" (\(error))")
        }
        func bytes(_ text: String?, _ base64: String?, _ name: String) throws(ImportLineError) -> [UInt8] {
            switch (text, base64) {
            case (let text?, nil): return Array(text.utf8)
            case (nil, let encoded?):
                guard let data = Data(base64Encoded: encoded) else { throw fail("\"\(name)_b64\" is not valid base64") }
                return Array(data)
            default:
                throw fail("give exactly one of \"\(name)\" and \"\(name)_b64\"")
            }
        }
        if let spec = fields.lock {
            guard let mode = RetentionMode(name: spec.mode) else { throw fail("lock mode must be governance or compliance") }
            let retainUntil: Int64
            switch (spec.until, spec.for) {
            case (let until?, nil):
                guard let date = RetentionText.date(until) else { throw fail(RetentionText.dateHint(until)) }
                retainUntil = date
            case (nil, let text?):
                guard let duration = RetentionText.duration(text) else { throw fail(RetentionText.durationHint(text)) }
                retainUntil = now + Int64(clamping: duration.components.seconds) * 1_000_000_000
            default:
                throw fail("give exactly one of \"until\" and \"for\"")
            }
            lock = RetentionLock(mode: mode, retainUntil: retainUntil)
        }
        entry = Entry(namespace: fields.ns, key: try bytes(fields.key, fields.key_b64, "key"),
                      value: try bytes(fields.value, fields.value_b64, "value"))
    }

    private struct Fields: Decodable {
        var ns: String
        var key: String?
        var key_b64: String?
        var value: String?
        var value_b64: String?
        var lock: Lock?
    }

    private struct Lock: Decodable {
        var mode: String
        var until: String?
        var `for`: String?
    }
}

/// Why a JSON Lines import line was rejected.
public struct ImportLineError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The 1-based line number the caller gave.
    public var lineNumber: Int
    /// What is wrong with the line.
    public var message: String

    public init(lineNumber: Int, message: String) {
        self.lineNumber = lineNumber
        self.message = message
    }

    public var description: String { "line \(lineNumber): \(message)" }
}

/// Retention dates and durations as people type them (import lines and CLI options).
package enum RetentionText {
    /// `90s`, `15m`, `12h`, `30d`; nil for anything else.
    package static func duration(_ text: String) -> Duration? {
        guard let unit = text.last, let amount = Int64(text.dropLast()), amount > 0 else { return nil }
        switch unit {
        case "s": return .seconds(amount)
        case "m": return .seconds(amount * 60)
        case "h": return .seconds(amount * 3600)
        case "d": return .seconds(amount * 86_400)
        default: return nil
        }
    }

    /// An ISO 8601 date as ns since the Unix epoch; nil if it is not one.
    package static func date(_ text: String) -> Int64? {
        guard let date = try? Date(text, strategy: .iso8601) else { return nil }
        return Int64(date.timeIntervalSince1970 * 1e9)
    }

    package static func durationHint(_ text: String) -> String { "durations are written 90s, 15m, 12h or 30d (got \(text))" }
    package static func dateHint(_ text: String) -> String { "dates are ISO 8601, e.g. 2027-01-31T00:00:00Z (got \(text))" }
}
