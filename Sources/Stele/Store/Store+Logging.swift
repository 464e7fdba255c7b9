import Logging

/// What the store tells its ``Store/Options/logger`` at open: a recovery that had work to do is
/// a notice an operator should read (a torn tail saved aside, a seal finished, records lost);
/// a clean open is a debug line.
extension Store {
    static func logOpen(_ logger: Logger, _ report: RecoveryReport, records: UInt64, readOnly: Bool) {
        var metadata: Logger.Metadata = ["stele.records": "\(records)", "stele.sealed_segments": "\(report.sealedSegments)"]
        if let torn = report.tornTail {
            metadata["stele.torn_tail"] = "\(torn.file) at \(torn.offset): \(torn.bytes) bytes (\(torn.reason))"
            if let saved = torn.savedTo { metadata["stele.torn_tail_saved_to"] = .string(saved) }
        }
        if let seal = report.completedSeal { metadata["stele.completed_seal"] = .string(seal) }
        if !report.removedTemporaryFiles.isEmpty { metadata["stele.removed_temporary_files"] = "\(report.removedTemporaryFiles.count)" }
        if let lost = report.lostRecords { metadata["stele.records_lost"] = "\(lost)" }
        if let reason = report.keysUnavailable { metadata["stele.keys_unavailable"] = .string(reason) }
        if let reason = report.tilesUnavailable { metadata["stele.tiles_unavailable"] = .string(reason) }
        if report.isClean {
            logger.debug(readOnly ? "store opened read-only" : "store opened", metadata: metadata)
        } else {
            logger.notice("store recovered", metadata: metadata)
        }
    }
}

extension Store {
    /// A failed sync or seal stopped writes: an error, with the failed call, until a reopen.
    func logWritesDisabled(_ cause: IOError, during step: String) {
        metrics.syncFailures.increment()
        logger.error("writes disabled until the store is reopened: \(step) failed", metadata: [
            "stele.operation": .string(cause.operation), "stele.path": .string(cause.path), "stele.errno": "\(cause.errno)",
        ])
    }
}
