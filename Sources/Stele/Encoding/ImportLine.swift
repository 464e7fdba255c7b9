#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SteleNative

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
    /// - Throws: ``SteleError/importLine(_:)`` for anything that is not a valid line.
    public init(parsing line: [UInt8], lineNumber: Int, now: Int64) throws(SteleError) {
        func fail(_ message: String) -> SteleError { .importLine(ImportLineError(lineNumber: lineNumber, message: message)) }
        let fields: Fields
        do {
            fields = try JSONDecoder().decode(Fields.self, from: Data(line))
        } catch {
            throw fail("not a JSON object with \"ns\", \"key\" and \"value\" (\(error))")
        }
        func bytes(_ text: String?, _ base64: String?, _ name: String) throws(SteleError) -> [UInt8] {
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
public struct ImportLineError: Sendable, Equatable, CustomStringConvertible {
    /// The 1-based line number the caller gave.
    public var lineNumber: Int
    /// What is wrong with the line.
    public var message: String

    /// An error for line `lineNumber` (1-based) saying `message`.
    public init(lineNumber: Int, message: String) {
        self.lineNumber = lineNumber
        self.message = message
    }

    /// `line N: message`.
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

    /// An ISO 8601 date and time (`2027-01-31T00:00:00Z`, optionally with a fraction of a second
    /// and an offset `+08:00` instead of `Z`) as ns since the Unix epoch; nil if it is not one, names
    /// a day the calendar does not have (February 30th) or an hour, minute or second out of range,
    /// or lies outside what a timestamp can hold. Parsed strictly, field by field: a lenient parser
    /// rolls February 30th over into March.
    package static func date(_ text: String) -> Int64? {
        let b = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int64? {
            guard range.upperBound <= b.count, !range.isEmpty else { return nil }
            var value: Int64 = 0
            for i in range {
                guard b[i] >= 0x30, b[i] <= 0x39 else { return nil }
                value = value * 10 + Int64(b[i] - 0x30)
            }
            return value
        }
        guard b.count >= 20, b[4] == 0x2d, b[7] == 0x2d, b[10] == 0x54 || b[10] == 0x74, b[13] == 0x3a, b[16] == 0x3a,
              let year = number(0 ..< 4), let month = number(5 ..< 7), let day = number(8 ..< 10),
              let hour = number(11 ..< 13), let minute = number(14 ..< 16), let second = number(17 ..< 19),
              (1 ... 12).contains(month), hour < 24, minute < 60, second < 60 else { return nil }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][Int(month - 1)]
        guard day >= 1, day <= Int64(days) else { return nil }
        var position = 19
        var fraction: Int64 = 0
        if b[position] == 0x2e {  // .fraction, up to nanoseconds (further digits dropped)
            var digits = 0
            position += 1
            while position < b.count, b[position] >= 0x30, b[position] <= 0x39 {
                if digits < 9 { fraction = fraction * 10 + Int64(b[position] - 0x30) }
                digits += 1
                position += 1
            }
            guard digits > 0 else { return nil }
            for _ in min(digits, 9) ..< 9 { fraction *= 10 }
        }
        var offset: Int64 = 0
        if position == b.count - 1, b[position] == 0x5a || b[position] == 0x7a {
            offset = 0
        } else if position == b.count - 6, b[position] == 0x2b || b[position] == 0x2d, b[position + 3] == 0x3a,
                  let h = number(position + 1 ..< position + 3), let m = number(position + 4 ..< position + 6), h < 24, m < 60 {
            offset = (h * 3600 + m * 60) * (b[position] == 0x2b ? 1 : -1)
        } else {
            return nil
        }
        // Days since 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant's algorithm).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let epochDays = era * 146_097 + dayOfEra - 719_468
        let seconds = epochDays * 86_400 + hour * 3600 + minute * 60 + second - offset
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return nil }
        let (total, late) = scaled.addingReportingOverflow(fraction)
        return late ? nil : total
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
        "dates are ISO 8601 date-times of days the calendar has (no February 30th), between the years 1678 and 2261, e.g. 2027-01-31T00:00:00Z (got \(text))"
    }
    package static func tooLateHint(_ text: String) -> String { "\(text) from now is past the year 2262" }
}
