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
                guard let end = RetentionText.after(now, duration) else { throw fail(RetentionText.tooLateHint(text)) }
                retainUntil = end
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
///
/// Every result must fit a timestamp (signed 64-bit ns since the Unix epoch, years 1677-2262):
/// text beyond that is rejected rather than trapped on or wrapped.
package enum RetentionText {
    /// `90s`, `15m`, `12h`, `30d`; nil for anything else or more than fits in 64-bit nanoseconds
    /// (about 292 years).
    package static func duration(_ text: String) -> Duration? {
        guard let unit = text.last, let amount = Int64(text.dropLast()), amount > 0 else { return nil }
        let scale: Int64
        switch unit {
        case "s": scale = 1
        case "m": scale = 60
        case "h": scale = 3600
        case "d": scale = 86_400
        default: return nil
        }
        let (seconds, overflow) = amount.multipliedReportingOverflow(by: scale)
        guard !overflow, !seconds.multipliedReportingOverflow(by: 1_000_000_000).overflow else { return nil }
        return .seconds(seconds)
    }

    /// An ISO 8601 date as ns since the Unix epoch (fractions of a ns dropped); nil if it is not
    /// one or lies outside what a timestamp can hold.
    package static func date(_ text: String) -> Int64? {
        guard let date = try? Date(text, strategy: .iso8601) else { return nil }
        return Int64(exactly: (date.timeIntervalSince1970 * 1e9).rounded(.towardZero))
    }

    /// `now` plus whole seconds of `duration`, in ns; nil past the largest timestamp.
    package static func after(_ now: Int64, _ duration: Duration) -> Int64? {
        let (nanoseconds, overflow) = duration.components.seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return nil }
        let (sum, late) = now.addingReportingOverflow(nanoseconds)
        return late ? nil : sum
    }

    package static func durationHint(_ text: String) -> String {
        "durations are written 90s, 15m, 12h or 30d, at most 292 years (got \(text))"
    }
    package static func dateHint(_ text: String) -> String {
        "dates are ISO 8601 between the years 1678 and 2261, e.g. 2027-01-31T00:00:00Z (got \(text))"
    }
    package static func tooLateHint(_ text: String) -> String { "\(text) from now is past the year 2262" }
}
