import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Stele
import SteleNative
import Synchronization

/// A witness to ask for cosignatures: its submission prefix and its cosigner key.
public struct WitnessEndpoint: Sendable {
    public let url: URL
    public let key: CosignatureVerifier

    public init(url: URL, key: CosignatureVerifier) {
        self.url = url
        self.key = key
    }

    /// Parses `URL=VERIFIER_KEY`, as `stele checkpoint --witness` takes it.
    /// - Throws: ``SteleError/invalidArgument(_:)`` or the key's parse error.
    public init(parsing text: String) throws {
        guard let equals = text.firstIndex(of: "="), let url = URL(string: String(text[..<equals])),
              url.scheme == "http" || url.scheme == "https" else {
            throw SteleError.invalidArgument("a witness is URL=VERIFIER_KEY, the URL http(s)://")
        }
        try self.init(url: url, key: CosignatureVerifier(parsing: String(text[text.index(after: equals)...])))
    }
}

/// Asks witnesses to cosign a store's latest checkpoint (c2sp.org/tlog-witness `add-checkpoint`).
///
/// Each witness is sent the checkpoint with a consistency proof from the size it last cosigned.
/// That size is not kept here: the first request says `old 0`, and a witness that holds a larger
/// one answers 409 with it, whereupon the request is made again with the proof from that size.
/// A witness holding a size beyond the checkpoint's has seen a larger tree of this log than the
/// store has: that is a fork or a rollback, reported, never worked around.
public enum WitnessClient {
    /// What one witness answered.
    public struct Outcome: Sendable {
        public let witness: WitnessEndpoint
        /// The valid cosignature line, or why there is none.
        public let result: Result<String, SteleError>
    }

    /// Asks every witness at once (a thread each) to cosign `note`, the store's latest
    /// checkpoint, and returns when all have answered or timed out: a slow witness delays the
    /// answer by its own time, not by the sum of everyone's.
    /// - Parameter timeout: for each HTTP request, whole (a witness takes at most two).
    public static func cosign(_ note: String, of store: Store, witnesses: [WitnessEndpoint],
                              timeout: TimeInterval = 10) -> [Outcome] {
        let outcomes = Mutex([Outcome?](repeating: nil, count: witnesses.count))
        let done = DispatchGroup()
        // A thread per witness, not a dispatch queue: each blocks on the network, and a queue's
        // width follows the CPU count (two witnesses at a time on two cores).
        for (index, witness) in witnesses.enumerated() {
            let record: @Sendable (Result<String, SteleError>) -> Void = { result in
                outcomes.withLock { $0[index] = Outcome(witness: witness, result: result) }
                done.leave()
            }
            done.enter()
            do throws(SteleError) {
                try system { () throws(SystemError) in
                    try DedicatedThread.start(name: "stele-witness") {
                        record(Result { try cosign(note, of: store, by: witness, timeout: timeout) }
                            .mapError { $0 as? SteleError ?? .invalidArgument("\($0)") })
                    }
                }
            } catch {
                record(.failure(error))
            }
        }
        done.wait()
        return outcomes.withLock { $0.compactMap { $0 } }
    }

    private static func cosign(_ note: String, of store: Store, by witness: WitnessEndpoint, timeout: TimeInterval) throws -> String {
        let checkpoint = try Checkpoint(parsing: SignedNote.split(note).text)
        var old: UInt64 = 0
        for _ in 0 ..< 2 {
            let proof = old == 0 || old == checkpoint.treeSize ? [] : try store.consistencyProof(from: old, to: checkpoint.treeSize).hashes
            let body = "old \(old)\n" + proof.map { Base64.encode($0.bytes) + "\n" }.joined() + "\n" + note
            let (status, answer) = try post(body, to: witness.url.appendingPathComponent("add-checkpoint"), timeout: timeout)
            switch status {
            case 200:
                let lines = answer.split(separator: "\n").map { String($0) + "\n" }
                for line in lines where try witness.key.cosignatureTime(in: note + line) != nil { return line }
                throw SteleError.checkpoint(.noTrustedSignature(key: witness.key.name))
            case 409:
                guard let held = UInt64(answer.trimmingCharacters(in: .newlines)), held != old else {
                    throw SteleError.checkpoint(.malformedNote("witness \(witness.key.name): 409 \(answer.prefix(200))"))
                }
                guard held <= checkpoint.treeSize else {
                    throw SteleError.checkpoint(.inconsistentWithPrevious(previousSize: held,
                        detail: "witness \(witness.key.name) has cosigned a tree of \(held) records of this log, larger than the store's \(checkpoint.treeSize): a fork or a rollback"))
                }
                old = held
            default:
                throw SteleError.checkpoint(.malformedNote("witness \(witness.key.name) answered \(status): \(answer.prefix(200))"))
            }
        }
        throw SteleError.checkpoint(.malformedNote("witness \(witness.key.name) kept answering 409"))
    }

    private static func post(_ body: String, to url: URL, timeout: TimeInterval) throws -> (Int, String) {
        let answer = try PlainHTTP.request("POST", url, body: Data(body.utf8), timeout: timeout)
        return (answer.status, String(decoding: answer.body, as: UTF8.self))
    }
}
