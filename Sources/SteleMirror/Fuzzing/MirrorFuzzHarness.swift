/// Entry points for the mirror's libFuzzer targets in `tools/fuzz` (see `docs/fuzzing.md`), as
/// ``Stele``'s `FuzzHarness` is for the store's: not API (`@_spi(Fuzzing)`). Each feeds bytes a
/// copy or an object store hands back to the decoder that reads them, and returns the properties
/// that did not hold; rejection is fine, a trap is a finding.
@_spi(Fuzzing) public enum MirrorFuzzHarness {
    /// An S3 answer body: a ListObjectsV2 page, a ListObjectVersions page, an error. What a page
    /// yields, written back as XML (entities escaped), must read back the same.
    public static func s3Listing(_ data: UnsafeRawBufferPointer) -> [String] { s3Listing(data, reencoded: { $0 }) }

    /// `reencoded` is applied to each page written back before it is read again: the identity,
    /// except in `FuzzPropertyTests`, which passes a wrong encoder to show that the check can fail.
    static func s3Listing(_ data: UnsafeRawBufferPointer, reencoded: ([UInt8]) -> [UInt8]) -> [String] {
        var violations: [String] = []
        let body = Array(data)
        _ = S3Client.errorText(.init(status: 500, headers: [:], body: body))
        _ = XMLFields.first("UploadId", in: body)
        if let page = try? S3Target.listingPage(body, prefix: "p/", listing: "fuzz") {
            let written = "<ListBucketResult>" + page.objects.map { "<Contents><Key>\(escaped("p/" + $0.name))</Key><Size>\($0.size)</Size></Contents>" }.joined()
                + (page.next.map { "<IsTruncated>true</IsTruncated><NextContinuationToken>\(escaped($0))</NextContinuationToken>" } ?? "")
                + "</ListBucketResult>"
            let again = try? S3Target.listingPage(reencoded(Array(written.utf8)), prefix: "p/", listing: "fuzz")
            if again?.objects != page.objects || again?.next != page.next { violations.append("object listing round trip") }
        }
        if let page = try? S3Target.versionsPage(body, prefix: "p/", listing: "fuzz") {
            let written = "<ListVersionsResult>" + page.versions.map { v in
                let element = v.isDeleteMarker ? "DeleteMarker" : "Version"
                return "<\(element)><Key>\(escaped("p/" + v.name))</Key>" + (v.versionID.map { "<VersionId>\(escaped($0))</VersionId>" } ?? "")
                    + "<IsLatest>\(v.isLatest)</IsLatest><LastModified>\(escaped(v.lastModified))</LastModified>"
                    + (v.etag.map { "<ETag>\(escaped($0))</ETag>" } ?? "") + (v.isDeleteMarker ? "" : "<Size>\(v.size)</Size>") + "</\(element)>"
            }.joined()
                + (page.next.map { "<IsTruncated>true</IsTruncated><NextKeyMarker>\(escaped($0.key))</NextKeyMarker><NextVersionIdMarker>\(escaped($0.version))</NextVersionIdMarker>" } ?? "")
                + "</ListVersionsResult>"
            let again = try? S3Target.versionsPage(reencoded(Array(written.utf8)), prefix: "p/", listing: "fuzz")
            if again?.versions != page.versions || again?.next?.key != page.next?.key || again?.next?.version != page.next?.version {
                violations.append("version listing round trip")
            }
        }
        return violations
    }

    /// A directory copy's `NAME.sha256` file. One written from what it yields must yield the
    /// same (the writer drops line breaks from labels, so labels holding one are not compared).
    public static func sidecar(_ data: UnsafeRawBufferPointer) -> [String] { sidecar(data, reencoded: { $0 }) }

    static func sidecar(_ data: UnsafeRawBufferPointer, reencoded: ([UInt8]) -> [UInt8]) -> [String] {
        let read = DirectoryTarget.sidecar(Array(data))
        guard let sha256 = read.sha256, read.label?.contains(where: \.isNewline) != true else { return [] }
        let again = DirectoryTarget.sidecar(reencoded(DirectoryTarget.sidecar(sha256: sha256, label: read.label)))
        return again.sha256 == sha256 && again.label == read.label ? [] : ["sidecar round trip"]
    }

    private static func escaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
            .replacingOccurrences(of: "'", with: "&apos;")
    }
}
