import Stele
import SteleNative

/// AWS Signature Version 4 for S3 requests (header-based): pure functions, no I/O.
///
/// The steps follow Amazon's "Signature Version 4 signing process": a canonical request (method,
/// URI-encoded path, sorted query, sorted lower-case headers, the payload's SHA-256), a string to
/// sign naming the date, region and service, and an HMAC chain that derives the signing key
/// from the secret. The unit test checks Amazon's published S3 example.
public struct SigV4Signer: Sendable {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var region: String
    public var service: String

    public init(accessKeyID: String, secretAccessKey: String, region: String = "us-east-1", service: String = "s3") {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.region = region
        self.service = service
    }

    /// The `Authorization` header for a request. `headers` must already hold every header to
    /// sign (at least `host`, `x-amz-date` and `x-amz-content-sha256`); names in any case.
    /// - Parameters:
    ///   - path: the absolute path, not yet encoded (`/bucket/key`).
    ///   - query: decoded name/value pairs.
    ///   - amzDate: `YYYYMMDDTHHMMSSZ`, the value of `x-amz-date`.
    ///   - payloadHash: lower-case hex SHA-256 of the body (or `UNSIGNED-PAYLOAD`).
    public func authorization(method: String, path: String, query: [(String, String)], headers: [String: String],
                              amzDate: String, payloadHash: String) -> String {
        let (signedHeaders, canonical) = Self.canonicalRequest(method: method, path: path, query: query, headers: headers,
                                                               payloadHash: payloadHash)
        let date = String(amzDate.prefix(8))
        let scope = "\(date)/\(region)/\(service)/aws4_request"
        let stringToSign = "AWS4-HMAC-SHA256\n\(amzDate)\n\(scope)\n\(hexString(sha256(Array(canonical.utf8))))"
        var key = hmacSHA256(key: Array("AWS4\(secretAccessKey)".utf8), message: Array(date.utf8))
        for part in [region, service, "aws4_request"] { key = hmacSHA256(key: key, message: Array(part.utf8)) }
        let signature = hexString(hmacSHA256(key: key, message: Array(stringToSign.utf8)))
        return "AWS4-HMAC-SHA256 Credential=\(accessKeyID)/\(scope),SignedHeaders=\(signedHeaders),Signature=\(signature)"
    }

    /// The canonical request and its signed-header list.
    static func canonicalRequest(method: String, path: String, query: [(String, String)], headers: [String: String],
                                 payloadHash: String) -> (signedHeaders: String, request: String) {
        let encodedPath = path.split(separator: "/", omittingEmptySubsequences: false).map { uriEncode(String($0)) }.joined(separator: "/")
        let encodedQuery: [(name: String, value: String)] = query.map { (uriEncode($0.0), uriEncode($0.1)) }
        let sortedQuery = encodedQuery.sorted { a, b in a.name == b.name ? a.value < b.value : a.name < b.name }
        let canonicalQuery = sortedQuery.map { $0.name + "=" + $0.value }.joined(separator: "&")
        let lowered: [(name: String, value: String)] = headers.map { ($0.key.lowercased(), trimmed($0.value)) }
        let sortedHeaders = lowered.sorted { a, b in a.name < b.name }
        let signedHeaders = sortedHeaders.map(\.name).joined(separator: ";")
        let canonicalHeaders = sortedHeaders.map { $0.name + ":" + $0.value + "\n" }.joined()
        return (signedHeaders, [method, encodedPath.isEmpty ? "/" : encodedPath, canonicalQuery, canonicalHeaders, signedHeaders, payloadHash]
            .joined(separator: "\n"))
    }

    /// RFC 3986 percent-encoding of everything but the unreserved characters, as SigV4 wants.
    static func uriEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A") ... UInt8(ascii: "Z"), UInt8(ascii: "a") ... UInt8(ascii: "z"), UInt8(ascii: "0") ... UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return out
    }

    /// Leading and trailing spaces removed, inner runs of spaces collapsed to one.
    private static func trimmed(_ value: String) -> String {
        value.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
    }
}
