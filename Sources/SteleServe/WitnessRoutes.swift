import Dispatch
import Hummingbird
import Stele

extension RouterMethods {
    /// Serves `witness` as c2sp.org/tlog-witness: `POST add-checkpoint` at this router's path
    /// (mount it on a group for a submission prefix). The body is read up to the size of the
    /// largest note and 63 proof lines; the answer is ``Witness/addCheckpoint(_:)``'s.
    @discardableResult
    public func addWitnessRoutes(_ witness: Witness) -> Self {
        post("add-checkpoint") { request, _ in
            var request = request
            let body: ByteBuffer
            do {
                body = try await request.collectBody(upTo: 1 << 20 + 63 * 46 + 32)
            } catch {
                return Self.response(TileAnswer.error(413, "the request body is larger than a checkpoint and its proof can be"))
            }
            // The state is persisted (fsync) before the answer: off the cooperative pool.
            let answer = await withCheckedContinuation { (continuation: CheckedContinuation<Witness.Answer, Never>) in
                DispatchQueue.global(qos: .userInitiated).async {
                    continuation.resume(returning: witness.addCheckpoint(Array(buffer: body)))
                }
            }
            return Self.response(TileAnswer(status: answer.status, contentType: answer.contentType, cacheControl: nil,
                                            body: Array(answer.body.utf8)))
        }
        return self
    }
}
