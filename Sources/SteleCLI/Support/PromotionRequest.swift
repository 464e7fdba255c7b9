import Foundation
import Stele

/// How `stele promote` asks a running `stele standby --follow` to promote the store it holds
/// open (as `pg_ctl promote` leaves a file for the server): the standby holds the writer lock,
/// and promoting in its process needs no reopen, which for a large store is most of the
/// recovery time.
///
/// ```
/// promote-request   written by `stele promote`:  stele-promote-request 1 / copy <COPY> / retain-days <N> / accept-unproven yes|no
/// promote-answer    written by the standby:      stele-promote-answer 1 / exit <code> / <message, one line>
/// ```
/// Both are written atomically in the store's directory. The standby looks for the request
/// between passes (every 50 ms while it waits), answers, and removes the request; `promote`
/// waits for the answer, prints it, removes it and exits with its code.
enum PromotionRequest {
    static let requestName = "promote-request"
    static let answerName = "promote-answer"

    struct Request: Equatable {
        var copy: String
        var retainDays: Int
        var acceptingUnproven: Bool
    }

    static func write(_ request: Request, directory: String) throws {
        // An answer left by an earlier request that nobody waited for is not this one's.
        try? FileManager.default.removeItem(atPath: directory + "/" + answerName)
        try replaceFile(directory + "/" + requestName, "stele-promote-request 1\ncopy \(oneLine(request.copy))\nretain-days \(request.retainDays)\n"
            + "accept-unproven \(request.acceptingUnproven ? "yes" : "no")\n")
    }

    /// The request waiting in `directory`, if any; a malformed one is answered with exit 2.
    static func pending(in directory: String) -> Result<Request, SteleError>? {
        guard let text = try? String(contentsOfFile: directory + "/" + requestName, encoding: .utf8) else { return nil }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.count == 5, lines[0] == "stele-promote-request 1", lines[1].hasPrefix("copy "), lines[2].hasPrefix("retain-days "),
              let days = Int(lines[2].dropFirst("retain-days ".count)), (1 ... 36_500).contains(days),
              lines[3] == "accept-unproven yes" || lines[3] == "accept-unproven no" else {
            return .failure(.invalidArgument("\(directory)/\(requestName) is not a promotion request"))
        }
        return .success(Request(copy: String(lines[1].dropFirst("copy ".count)), retainDays: days, acceptingUnproven: lines[3] == "accept-unproven yes"))
    }

    /// Answers the request and removes it.
    static func answer(exit code: Int32, _ message: String, directory: String) throws {
        try replaceFile(directory + "/" + answerName, "stele-promote-answer 1\nexit \(code)\n\(oneLine(message))\n")
        try? FileManager.default.removeItem(atPath: directory + "/" + requestName)
    }

    /// Waits up to `timeout` for the answer; returns its exit code and message, and removes it.
    static func awaitAnswer(directory: String, timeout: Duration) -> (code: Int32, message: String)? {
        let deadline = ContinuousClock.now + timeout
        let path = directory + "/" + answerName
        while ContinuousClock.now < deadline {
            if let text = try? String(contentsOfFile: path, encoding: .utf8) {
                let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                if lines.count == 4, lines[0] == "stele-promote-answer 1", lines[1].hasPrefix("exit "), let code = Int32(lines[1].dropFirst(5)) {
                    try? FileManager.default.removeItem(atPath: path)
                    return (code, lines[2])
                }
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return nil
    }
}
