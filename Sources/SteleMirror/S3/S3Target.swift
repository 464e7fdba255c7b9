import Foundation
import Stele
import SteleNative

/// A mirror target in an S3-compatible object store with Object Lock (AWS S3, MinIO, Ceph RGW).
///
/// Every object is written once with `x-amz-object-lock-mode` and
/// `x-amz-object-lock-retain-until-date`, a `Content-MD5` (which Object Lock requires) and its
/// SHA-256 both as `x-amz-checksum-sha256` (checked by the server) and as user metadata
/// `x-amz-meta-sha256` (read back by `head` to verify a copy without downloading it). Objects
/// larger than ``partSize`` go up in a multipart upload. Before any upload the mirror asks
/// `head`; an existing object is verified by its recorded SHA-256, never sent again.
public struct S3Target: MirrorTarget {
    public let client: S3Client
    /// Key prefix inside the bucket (no leading slash; empty or ending in `/`).
    public let prefix: String
    /// Multipart part size (S3's minimum is 5 MiB).
    public var partSize = 16 << 20
    /// Keys per listing page (`max-keys`); nil: the server's default (1,000 on AWS).
    public var pageSize: Int?

    public var description: String { "s3://\(client.bucket)/\(prefix)" }

    public init(client: S3Client, prefix: String) {
        self.client = client
        self.prefix = prefix.isEmpty || prefix.hasSuffix("/") ? prefix : prefix + "/"
    }

    private func check(_ response: S3Client.Response, _ what: String) throws {
        guard (200 ..< 300).contains(response.status) else { throw SteleError.mirror(.target("\(what): \(S3Client.errorText(response))")) }
    }

    private func lockHeaders(_ retention: ObjectRetention?, digest: [UInt8]) -> [String: String] {
        var headers = ["x-amz-meta-sha256": hexString(digest)]
        if let retention {
            headers["x-amz-object-lock-mode"] = retention.mode.rawValue
            headers["x-amz-object-lock-retain-until-date"] = retention.iso8601
            if retention.legalHold { headers["x-amz-object-lock-legal-hold"] = "ON" }
        }
        return headers
    }

    @discardableResult
    public func put(_ name: String, _ bytes: [UInt8], retention: ObjectRetention?, label: String?) throws -> Bool {
        let digest = sha256(bytes)
        if let existing = try head(name) {
            guard existing.sha256 == hexString(digest), existing.size == bytes.count else { throw SteleError.mirror(.conflict(name: name)) }
            // The checksum in the metadata is whatever the writer of that version said: verify the
            // content itself, from the ETag the server computed (MD5, or for a multipart upload
            // the MD5 of the parts' MD5s), or, where the ETag is not an MD5 (SSE-KMS), by reading it.
            if existing.etag != etag(of: bytes) {
                if let etag = existing.etag, S3Target.isMD5ETag(etag) { throw SteleError.mirror(.conflict(name: name)) }
                guard sha256(try get(name)) == digest else { throw SteleError.mirror(.conflict(name: name)) }
            }
            return false
        }
        let key = prefix + name
        var headers = lockHeaders(retention, digest: digest)
        if let label { headers["x-amz-meta-stele-label"] = label }
        if bytes.count <= partSize {
            headers["content-md5"] = Data(md5(bytes)).base64EncodedString()
            headers["x-amz-checksum-sha256"] = Data(digest).base64EncodedString()
            // Created only if the name is free (S3's conditional write): of two writers racing
            // for one name, one wins and the other finds its object (a writer epoch's claim
            // depends on it, see ``WriterEpoch``).
            headers["if-none-match"] = "*"
            return try writeOnce(name, digest: digest, size: bytes.count, "PUT \(key)") {
                try client.send(.init(method: "PUT", key: key, headers: headers, body: bytes))
            }
        }
        let started = try client.sendRetrying(.init(method: "POST", key: key, query: [("uploads", "")], headers: headers))
        try check(started, "start multipart upload of \(key)")
        guard let uploadID = XMLFields.first("UploadId", in: started.body) else { throw SteleError.mirror(.target("no UploadId for \(key)")) }
        let created: Bool
        do {
            var parts: [(Int, String)] = []
            var offset = 0
            while offset < bytes.count {
                let part = Array(bytes[offset ..< min(offset + partSize, bytes.count)])
                let number = parts.count + 1
                // A part sent twice replaces itself: safe to retry.
                let response = try client.sendRetrying(.init(method: "PUT", key: key, query: [("partNumber", "\(number)"), ("uploadId", uploadID)],
                                                             headers: ["content-md5": Data(md5(part)).base64EncodedString()], body: part))
                try check(response, "PUT part \(number) of \(key)")
                guard let etag = response.headers["etag"] else { throw SteleError.mirror(.target("no ETag for part \(number) of \(key)")) }
                parts.append((number, etag))
                offset += part.count
            }
            let manifest = "<CompleteMultipartUpload>" + parts.map { "<Part><PartNumber>\($0.0)</PartNumber><ETag>\($0.1)</ETag></Part>" }.joined()
                + "</CompleteMultipartUpload>"
            created = try writeOnce(name, digest: digest, size: bytes.count, "complete multipart upload of \(key)") {
                let completed = try client.send(.init(method: "POST", key: key, query: [("uploadId", uploadID)],
                                                      headers: ["content-type": "application/xml", "if-none-match": "*"],
                                                      body: Array(manifest.utf8)))
                // S3 can answer 200 with an error document for CompleteMultipartUpload (and
                // then means a 500: "InternalError", worth another try).
                if completed.status == 200, XMLFields.first("Code", in: completed.body) != nil {
                    return S3Client.Response(status: 500, headers: completed.headers, body: completed.body)
                }
                return completed
            }
        } catch {
            // Parts of an upload never completed are stored (and billed) until aborted.
            abortMultipartUpload(key, uploadID)
            throw error
        }
        guard created else {
            // Another writer's object holds the name: this upload's parts are dropped.
            abortMultipartUpload(key, uploadID)
            return false
        }
        if let retention { try ensureRetention(key, retention) }
        return true
    }

    /// Sends a conditional request that creates `name` (a `PUT`, or a multipart completion, with
    /// `If-None-Match: *`) until it takes effect: after a retryable failure, a `HEAD` tells whether
    /// the attempt took effect after all (its answer was lost): then it is done; only if the
    /// object is absent is it sent again. Never two versions of one object for one write.
    /// - Returns: true if created (by this call, or by an earlier attempt of it whose answer was
    ///   lost); false if another writer created it first with the same content.
    /// - Throws: ``MirrorError/conflict(name:)`` if another writer created it first with other
    ///   content.
    private func writeOnce(_ name: String, digest: [UInt8], size: Int, _ what: String, _ attempt: () throws -> S3Client.Response) throws -> Bool {
        var tries = 1
        while true {
            let reason: String
            do {
                let response = try attempt()
                if (200 ..< 300).contains(response.status) { return true }
                // 412: the name was taken meanwhile (by a racing writer, or by this write's own
                // earlier attempt whose answer was lost).
                if response.status == 412 {
                    guard let existing = try head(name), existing.sha256 == hexString(digest), existing.size == size else {
                        throw SteleError.mirror(.conflict(name: name))
                    }
                    return tries > 1
                }
                // 409 ConditionalRequestConflict: another conditional write to the name is in
                // flight; the next attempt finds it done (412) or gone.
                guard S3RetryPolicy.isRetryable(response) || response.status == 409 else {
                    throw SteleError.mirror(.target("\(what): \(S3Client.errorText(response))"))
                }
                reason = S3Client.errorText(response)
            } catch SteleError.mirror(.transport(let detail)) {
                reason = detail
            }
            if let existing = try head(name) {
                guard existing.sha256 == hexString(digest), existing.size == size else { throw SteleError.mirror(.conflict(name: name)) }
                return true
            }
            guard tries < client.retryPolicy.maxAttempts else { throw SteleError.mirror(.target("\(what): \(reason) (\(tries) attempts)")) }
            let wait = client.retryPolicy.delay(afterAttempt: tries)
            client.retried(.init(method: what.hasPrefix("PUT") ? "PUT" : "POST", key: prefix + name), reason: reason, attempt: tries, wait: wait)
            Thread.sleep(forTimeInterval: Double(wait.components.seconds) + Double(wait.components.attoseconds) * 1e-18)
            tries += 1
        }
    }

    /// AbortMultipartUpload (`DELETE ?uploadId=`): drops the parts of an upload that will not be
    /// completed. It removes no object; a failure is left for the bucket's lifecycle rule.
    private func abortMultipartUpload(_ key: String, _ uploadID: String) {
        let aborted = try? client.sendRetrying(.init(method: "DELETE", key: key, query: [("uploadId", uploadID)]))
        if aborted.map({ !(200 ..< 300).contains($0.status) && $0.status != 404 }) ?? true {
            client.onNotice?("DELETE \(key)?uploadId=\(uploadID): the abandoned upload could not be aborted "
                + "(\(aborted.map(S3Client.errorText) ?? "no answer")); a lifecycle rule for incomplete uploads removes its parts")
        }
    }

    /// Some S3-compatible servers ignore Object Lock headers on multipart uploads: check, and
    /// set the retention explicitly if it is missing (a request that can only lengthen it).
    private func ensureRetention(_ key: String, _ retention: ObjectRetention) throws {
        let head = try client.sendRetrying(.init(method: "HEAD", key: key))
        try check(head, "HEAD \(key)")
        let holdMissing = retention.legalHold && head.headers["x-amz-object-lock-legal-hold"] != "ON"
        if head.headers["x-amz-object-lock-mode"] != nil && !holdMissing { return }
        if head.headers["x-amz-object-lock-mode"] == nil { try setRetention(key, retention) }
        if holdMissing {
            let hold = Array("<LegalHold><Status>ON</Status></LegalHold>".utf8)
            try check(try client.sendRetrying(.init(method: "PUT", key: key, query: [("legal-hold", "")],
                                            headers: ["content-md5": Data(md5(hold)).base64EncodedString(), "content-type": "application/xml"],
                                            body: hold)), "set legal hold on \(key)")
        }
    }

    private func setRetention(_ key: String, _ retention: ObjectRetention) throws {
        let body = Array(("<Retention><Mode>\(retention.mode.rawValue)</Mode><RetainUntilDate>\(retention.iso8601)</RetainUntilDate>"
            + "</Retention>").utf8)
        let set = try client.sendRetrying(.init(method: "PUT", key: key, query: [("retention", "")],
                                        headers: ["content-md5": Data(md5(body)).base64EncodedString(), "content-type": "application/xml"],
                                        body: body))
        try check(set, "set Object Lock retention of \(key)")
    }

    public func head(_ name: String) throws -> ObjectInfo? {
        let response = try client.sendRetrying(.init(method: "HEAD", key: prefix + name))
        if response.status == 404 { return nil }
        try check(response, "HEAD \(prefix + name)")
        return ObjectInfo(name: name, size: Int(response.headers["content-length"] ?? "") ?? 0, sha256: response.headers["x-amz-meta-sha256"],
                          label: response.headers["x-amz-meta-stele-label"], etag: response.headers["etag"])
    }

    /// The ETag S3 computes for `bytes` uploaded as this target uploads them: the quoted MD5 of
    /// the content, or for a multipart upload the MD5 of the parts' MD5s, a dash and the count.
    func etag(of bytes: [UInt8]) -> String {
        guard bytes.count > partSize else { return "\"" + hexString(md5(bytes)) + "\"" }
        var digests: [UInt8] = []
        var offset = 0
        var parts = 0
        while offset < bytes.count {
            digests += md5(Array(bytes[offset ..< min(offset + partSize, bytes.count)]))
            offset += partSize
            parts += 1
        }
        return "\"" + hexString(md5(digests)) + "-\(parts)\""
    }

    /// Whether an ETag has the form of an MD5 (single or multipart), which S3 computes unless the
    /// object is encrypted with a KMS key.
    static func isMD5ETag(_ etag: String) -> Bool {
        let body = etag.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        let hex = body.split(separator: "-").first.map(String.init) ?? ""
        return hex.count == 32 && hex.allSatisfy(\.isHexDigit)
    }

    public func list(prefix listPrefix: String) throws -> [ObjectInfo] {
        var out: [ObjectInfo] = []
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", prefix + listPrefix)] + (pageSize.map { [("max-keys", "\($0)")] } ?? [])
            if let token { query.append(("continuation-token", token)) }
            let response = try client.sendRetrying(.init(method: "GET", key: "", query: query))
            try check(response, "list \(prefix + listPrefix)")
            let page = try S3Target.listingPage(response.body, prefix: prefix, listing: prefix + listPrefix)
            out += page.objects
            token = page.next
        } while token != nil
        return out.sorted { $0.name < $1.name }
    }

    /// One page of a ListObjectsV2 answer: its objects (named without the target's `prefix`;
    /// keys outside it are skipped) and, if the listing is truncated, the continuation token.
    /// - Throws: ``SteleError/mirror(_:)`` (``MirrorError/target(_:)``) for keys without sizes, or a truncated page without a token.
    static func listingPage(_ body: [UInt8], prefix: String, listing: String) throws -> (objects: [ObjectInfo], next: String?) {
        let keys = XMLFields.all("Key", in: body)
        let sizes = XMLFields.all("Size", in: body)
        guard keys.count == sizes.count else { throw SteleError.mirror(.target("unreadable listing of \(listing)")) }
        var objects: [ObjectInfo] = []
        for (key, size) in zip(keys, sizes) where key.hasPrefix(prefix) {
            guard let size = Int(size), size >= 0 else { throw SteleError.mirror(.target("listing of \(listing): \(key) has size \(size)")) }
            objects.append(ObjectInfo(name: String(key.dropFirst(prefix.count)), size: size, sha256: nil, label: nil))
        }
        guard XMLFields.first("IsTruncated", in: body) == "true" else { return (objects, nil) }
        guard let next = XMLFields.first("NextContinuationToken", in: body), !next.isEmpty else {
            throw SteleError.mirror(.target("truncated listing of \(listing) without a continuation token"))
        }
        return (objects, next)
    }

    public func get(_ name: String) throws -> [UInt8] {
        try get(name, version: nil)
    }

    public func get(_ name: String, version: String?) throws -> [UInt8] {
        let response = try client.sendRetrying(.init(method: "GET", key: prefix + name, query: version.map { [("versionId", $0)] } ?? []))
        if response.status == 404 { throw SteleError.mirror(.missing(name: name)) }
        try check(response, "GET \(prefix + name)")
        return response.body
    }

    public func head(_ name: String, version: String?) throws -> ObjectInfo? {
        guard let version else { return try head(name) }
        let response = try client.sendRetrying(.init(method: "HEAD", key: prefix + name, query: [("versionId", version)]))
        if response.status == 404 { return nil }
        try check(response, "HEAD \(prefix + name) version \(version)")
        return ObjectInfo(name: name, size: Int(response.headers["content-length"] ?? "") ?? 0, sha256: response.headers["x-amz-meta-sha256"],
                          label: response.headers["x-amz-meta-stele-label"])
    }

    /// ListObjectVersions (`GET ?versions`): every version and delete marker, so that nothing a
    /// delete marker hides, and no version an overwrite pushed down, is missed.
    public func versions(prefix listPrefix: String) throws -> [ObjectVersion] {
        try versions(prefix: listPrefix, after: "")
    }

    /// As ``versions(prefix:)``, from the key after `after` on (`key-marker` alone, which S3
    /// treats as exclusive; names not after it are dropped here as well): requests in proportion
    /// to what is new.
    public func versions(prefix listPrefix: String, after: String) throws -> [ObjectVersion] {
        var out: [ObjectVersion] = []
        var markers: (key: String, version: String)?
        repeat {
            var query = [("versions", ""), ("prefix", prefix + listPrefix)] + (pageSize.map { [("max-keys", "\($0)")] } ?? [])
            if let markers {
                query += [("key-marker", markers.key), ("version-id-marker", markers.version)]
            } else if !after.isEmpty {
                query.append(("key-marker", prefix + after))
            }
            let response = try client.sendRetrying(.init(method: "GET", key: "", query: query))
            try check(response, "list versions of \(prefix + listPrefix)")
            let page = try S3Target.versionsPage(response.body, prefix: prefix, listing: prefix + listPrefix)
            out += page.versions
            markers = page.next
        } while markers != nil
        // By name, then oldest first: the listing gives each key's versions newest first.
        var byName: [String: [ObjectVersion]] = [:]
        for version in out where version.name > after { byName[version.name, default: []].append(version) }
        return byName.keys.sorted().flatMap { byName[$0, default: []].reversed() }
    }
}

extension S3Target {
    /// One page of a ListObjectVersions answer: its versions and delete markers in document
    /// order (by key, and within a key newest first; named without the target's `prefix`, keys
    /// outside it skipped) and, if truncated, the key and version-id markers of the next page.
    /// A delete marker has no size; a version without a readable size is refused.
    /// - Throws: ``SteleError/mirror(_:)`` (``MirrorError/target(_:)``).
    static func versionsPage(_ body: [UInt8], prefix: String, listing: String) throws
        -> (versions: [ObjectVersion], next: (key: String, version: String)?) {
        var versions: [ObjectVersion] = []
        for (element, block) in XMLFields.blocks(anyOf: ["Version", "DeleteMarker"], in: body) {
            let bytes = Array(block.utf8)
            guard let key = XMLFields.first("Key", in: bytes), key.hasPrefix(prefix) else { continue }
            let isDeleteMarker = element == "DeleteMarker"
            let size = isDeleteMarker ? 0 : Int(XMLFields.first("Size", in: bytes) ?? "")
            guard let size, size >= 0 else { throw SteleError.mirror(.target("version listing of \(listing): \(key) has no readable size")) }
            versions.append(ObjectVersion(name: String(key.dropFirst(prefix.count)), versionID: XMLFields.first("VersionId", in: bytes),
                                          size: size, isDeleteMarker: isDeleteMarker,
                                          isLatest: XMLFields.first("IsLatest", in: bytes) == "true",
                                          lastModified: XMLFields.first("LastModified", in: bytes) ?? "",
                                          etag: XMLFields.first("ETag", in: bytes)))
        }
        guard XMLFields.first("IsTruncated", in: body) == "true" else { return (versions, nil) }
        guard let key = XMLFields.first("NextKeyMarker", in: body) else {
            throw SteleError.mirror(.target("truncated version listing of \(listing) without a next marker"))
        }
        return (versions, (key, XMLFields.first("NextVersionIdMarker", in: body) ?? ""))
    }
}

/// Element texts from S3's small XML answers (flat elements only, XML entities decoded).
enum XMLFields {
    static func all(_ element: String, in body: [UInt8]) -> [String] {
        let text = String(decoding: body, as: UTF8.self)
        var out: [String] = []
        var searchStart = text.startIndex
        while let open = text.range(of: "<\(element)>", range: searchStart ..< text.endIndex),
              let close = text.range(of: "</\(element)>", range: open.upperBound ..< text.endIndex) {
            out.append(decodeEntities(String(text[open.upperBound ..< close.lowerBound])))
            searchStart = close.upperBound
        }
        return out
    }

    static func first(_ element: String, in body: [UInt8]) -> String? { all(element, in: body).first }

    /// The element name and raw inner text of each `<element>...</element>` block of any of
    /// `elements`, in document order (for lists of records such as the versions and delete
    /// markers of ListObjectVersions); entities are left for `first`/`all` to decode.
    static func blocks(anyOf elements: [String], in body: [UInt8]) -> [(String, String)] {
        let text = String(decoding: body, as: UTF8.self)
        var out: [(position: String.Index, element: String, inner: String)] = []
        for element in elements {
            var searchStart = text.startIndex
            while let open = text.range(of: "<\(element)>", range: searchStart ..< text.endIndex),
                  let close = text.range(of: "</\(element)>", range: open.upperBound ..< text.endIndex) {
                out.append((open.lowerBound, element, String(text[open.upperBound ..< close.lowerBound])))
                searchStart = close.upperBound
            }
        }
        return out.sorted { $0.position < $1.position }.map { ($0.element, $0.inner) }
    }

    private static func decodeEntities(_ text: String) -> String {
        text.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&amp;", with: "&")
    }
}
