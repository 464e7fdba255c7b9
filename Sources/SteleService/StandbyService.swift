import Logging
import ServiceLifecycle
import Stele
import SteleMirror
import Synchronization

/// `stele standby --follow` as a swift-service-lifecycle `Service`, with promotion in the same
/// process: a server that embeds a ``Standby`` serves reads of ``store`` (every record in it
/// proven by a checkpoint signed with the trusted key) while it follows the copy, and becomes
/// the writer when ``promote(retention:)`` is called (an operator's request, say), with no
/// reopen: ``store`` accepts writes as soon as it returns.
///
/// Passes and the promotion never overlap (one lock), and after a promotion no pass runs again
/// (the service then waits for the group's graceful shutdown: it does not end on its own).
/// A pass that fails for a reason that may pass (the copy unreachable) is logged and tried again
/// with a back-off of up to a minute; a copy that was tampered with ends the service with that
/// error (it needs a person). At graceful shutdown the pass under way finishes first; the store
/// stays open for the caller to close (a ``StoreService`` placed before this one does).
public final class StandbyService: Service, Sendable {
    /// The standby's store: readable now, writable once promoted.
    public let store: Store
    /// Time between passes.
    public let interval: Duration
    private let standby: Mutex<StandbyBox>
    private let logger: Logger

    private struct StandbyBox: ~Copyable {
        let standby: Standby
        var promoted: WriterEpoch?
        var lastReport: Standby.Report?
    }

    /// - Parameters:
    ///   - standby: the standby to run; the service is then its only user.
    ///   - interval: time between passes.
    ///   - logger: where passes, retries, the promotion and the error that ends the service go.
    public init(standby: sending Standby, interval: Duration = .seconds(1), logger: Logger = Logger(label: "stele.standby")) {
        let (store, directory) = (standby.store, standby.directory)
        self.store = store
        self.interval = interval
        self.standby = Mutex(StandbyBox(standby: standby))
        var logger = logger
        logger[metadataKey: "stele.store"] = .string(directory)
        self.logger = logger
    }

    /// The writer epoch this process claimed, once promoted.
    public var promoted: WriterEpoch? { standby.withLock { $0.promoted } }

    /// What the latest pass reported (nil before the first).
    public var lastReport: Standby.Report? { standby.withLock { $0.lastReport } }

    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            var pause = self.interval
            while !Task.isCancelled {
                do {
                    let report = try await offThePool { () -> Standby.Report? in
                        try self.standby.withLock { box in
                            guard box.promoted == nil else { return nil }
                            let report = try box.standby.catchUp()
                            box.lastReport = report
                            return report
                        }
                    }
                    guard let report else {
                        // Promoted: the follow is over, and the store is the writer. The service
                        // stays up until the group shuts down, as a service that ended would end it.
                        try? await gracefulShutdown()
                        return
                    }
                    self.logger.debug("standby pass", metadata: [
                        "stele.installed": "\(report.segmentsInstalled)", "stele.records": "\(report.records)",
                        "stele.waiting": "\(report.recordsWaiting)",
                    ])
                    pause = self.interval
                } catch SteleError.mirror(let error) where !error.isTransient {
                    self.logger.critical("the copy the standby follows needs attention; following stopped", metadata: ["stele.error": "\(error)"])
                    throw SteleError.mirror(error)
                } catch {
                    self.logger.warning("standby pass failed; trying again", metadata: ["stele.error": "\(error)"])
                    pause = min(pause * 2, .seconds(60))
                }
                do { try await Task.sleep(for: pause) } catch { return }
            }
        }
    }

    /// Promotes the standby (``Standby/promote(retention:acceptingUnproven:)``): a last pass, the
    /// next writer epoch claimed in the copy, the fence lifted. Idempotent: a second call returns
    /// the same claim.
    /// - Throws: as ``Standby/promote(retention:acceptingUnproven:)``; the standby is then still a standby.
    @discardableResult
    public func promote(retention: ObjectRetention? = nil, acceptingUnproven: Bool = false) async throws -> WriterEpoch {
        try await offThePool {
            try self.standby.withLock { box in
                if let claim = box.promoted { return claim }
                let claim = try box.standby.promote(retention: retention, acceptingUnproven: acceptingUnproven)
                box.promoted = claim
                self.logger.notice("promoted", metadata: ["stele.epoch": "\(claim.epoch)", "stele.records": "\(claim.firstSequence)"])
                return claim
            }
        }
    }
}
