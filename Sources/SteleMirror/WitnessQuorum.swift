import Foundation
import Stele

/// The witnesses a store asks at every seal (``Stele/Store/Options/checkpointWitnesses``):
/// c2sp.org/tlog-witness servers, asked all at once (a thread each) by ``WitnessClient``.
///
/// ```swift
/// var options = Store.Options(checkpointSigner: logKey)
/// options.checkpointWitnesses = try WitnessQuorum([w1, w2, w3], quorum: 2)
/// ```
public struct WitnessQuorum: CheckpointWitnesses {
    public let witnesses: [WitnessEndpoint]
    public let quorum: Int
    /// For each HTTP request to a witness.
    public let timeout: TimeInterval

    /// - Parameters:
    ///   - quorum: cosignatures a checkpoint needs to be published (default: every witness).
    /// - Throws: ``SteleError/invalidArgument(_:)`` for no witnesses, a quorum outside
    ///   1 ... `witnesses.count`, or one witness key given twice.
    public init(_ witnesses: [WitnessEndpoint], quorum: Int? = nil, timeout: TimeInterval = 10) throws {
        guard !witnesses.isEmpty else { throw SteleError.invalidArgument("no witnesses given") }
        let quorum = quorum ?? witnesses.count
        guard (1 ... witnesses.count).contains(quorum) else {
            throw SteleError.invalidArgument("a quorum of \(quorum) among \(witnesses.count) witnesses")
        }
        // Witnesses are counted by public key (a cosignature does not commit to the name).
        guard Set(witnesses.map(\.key.publicKey)).count == witnesses.count else {
            throw SteleError.invalidArgument("one witness key is given twice: it would count twice toward the quorum")
        }
        self.witnesses = witnesses
        self.quorum = quorum
        self.timeout = timeout
    }

    public func cosign(_ note: String, of store: Store) -> (cosignatures: [String], failures: [String]) {
        var lines: [String] = [], failures: [String] = []
        for outcome in WitnessClient.cosign(note, of: store, witnesses: witnesses, timeout: timeout) {
            switch outcome.result {
            case .success(let line): lines.append(line)
            case .failure(let error): failures.append("witness \(outcome.witness.key.name): \(error)")
            }
        }
        return (lines, failures)
    }
}
