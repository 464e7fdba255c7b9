import Hummingbird

extension RouterMethods {
    /// Serves `log` as a tiled transparency log (c2sp.org/tlog-tiles) at this router's paths:
    /// `GET checkpoint`, `GET tile/<L>/<N>[.p/<W>]` and `GET tile/entries/<N>[.p/<W>]`. Mount it
    /// on a group to give the log a prefix (`router.group("log").addTileRoutes(log)`).
    ///
    /// Read-only, and every answer comes from ``TileLog/answer(_:)``: a malformed path is a 400, a
    /// resource the published checkpoint does not cover a 404; nothing a client sends can change
    /// the log. Reads are of tiles and records already on disk (page-cache reads, as the store's
    /// own `get`), so they run on the request's task.
    @discardableResult
    public func addTileRoutes(_ log: TileLog) -> Self {
        get("checkpoint") { _, _ in Self.response(log.answer(.checkpoint)) }
        get("tile/**") { request, context in
            let path = "tile/" + context.parameters.getCatchAll().joined(separator: "/")
            guard let resource = TileResource(path: path), resource != .checkpoint else {
                return Self.response(.error(400, "not a tile path (c2sp.org/tlog-tiles): /\(path)"))
            }
            return Self.response(log.answer(resource))
        }
        return self
    }

    static func response(_ answer: TileAnswer) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = answer.contentType
        if let cacheControl = answer.cacheControl { headers[.cacheControl] = cacheControl }
        return Response(status: HTTPResponse.Status(code: answer.status), headers: headers,
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: answer.body)))
    }
}
