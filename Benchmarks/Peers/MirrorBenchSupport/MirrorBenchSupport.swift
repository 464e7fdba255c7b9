// What the mirror benchmarks (MirrorLag, CopyCheck) share: their command line, and the copy
// they write to.

import Foundation
import Stele
import SteleMirror

/// The value after `name` on the command line, or `fallback`.
public func option(_ name: String, _ fallback: String) -> String {
    let arguments = CommandLine.arguments
    guard let i = arguments.firstIndex(of: name), i + 1 < arguments.count else { return fallback }
    return arguments[i + 1]
}

/// `destination` as a target: s3://BUCKET/PREFIX at $STELE_S3_ENDPOINT (credentials from
/// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), a directory, or, if empty, `scratch`.
public func mirrorTarget(_ destination: String, scratch: String) throws -> any MirrorTarget {
    guard destination.hasPrefix("s3://") else { return DirectoryTarget(root: destination.isEmpty ? scratch : destination) }
    let environment = ProcessInfo.processInfo.environment
    guard let endpoint = URL(string: environment["STELE_S3_ENDPOINT"] ?? ""), let key = environment["AWS_ACCESS_KEY_ID"],
          let secret = environment["AWS_SECRET_ACCESS_KEY"] else {
        throw SteleError.mirror(.invalid("set STELE_S3_ENDPOINT, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"))
    }
    let rest = destination.dropFirst(5)
    let bucket = String(rest.prefix { $0 != "/" })
    let client = S3Client(endpoint: endpoint, bucket: bucket, signer: SigV4Signer(accessKeyID: key, secretAccessKey: secret))
    return S3Target(client: client, prefix: String(rest.dropFirst(bucket.count + 1)))
}
