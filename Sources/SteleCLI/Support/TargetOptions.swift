import ArgumentParser
import Foundation
import Stele
import SteleMirror

/// Where a mirror target is given: a directory path, or `s3://BUCKET/PREFIX` with its endpoint
/// and credentials (from the environment or a file, never from the store's config).
struct TargetOptions: ParsableArguments {
    @Option(help: "S3 endpoint URL for s3:// targets (default: https://s3.REGION.amazonaws.com).")
    var endpoint: String?

    @Option(help: "S3 region (default: $AWS_REGION, else us-east-1).")
    var region: String?

    @Option(help: "Credentials file: an AWS-style file whose [default] profile has aws_access_key_id and aws_secret_access_key (default: $AWS_ACCESS_KEY_ID / $AWS_SECRET_ACCESS_KEY; session tokens are not supported).")
    var credentials: String?

    @Option(help: "Credentials file for an s3:// keyring target (--keyring-to, --keyring-from), which should have credentials of its own (default: those of --credentials).")
    var keyringCredentials: String?

    @Option(help: "Attempts per S3 request, the first included, for failures that say nothing about the request (no answer, timeouts, 5xx, throttling); waits grow from 0.2 s to at most 5 s.")
    var attempts = 5

    func target(_ text: String) throws -> any MirrorTarget {
        guard text.hasPrefix("s3://") else { return DirectoryTarget(root: text) }
        return try s3Target(text, credentials: credentials)
    }

    /// Where an encrypted store's keyring copy goes or comes from: a directory, or an s3:// target
    /// (a bucket or prefix without Object Lock) with ``keyringCredentials``.
    func keyringTarget(_ text: String) throws -> any KeyringTarget {
        guard text.hasPrefix("s3://") else { return DirectoryKeyringTarget(root: text) }
        return try s3Target(text, credentials: keyringCredentials ?? credentials)
    }

    private func s3Target(_ text: String, credentials: String?) throws -> S3Target {
        guard attempts >= 1 else { throw ValidationError("--attempts must be at least 1") }
        let rest = text.dropFirst("s3://".count)
        let bucket = String(rest.prefix { $0 != "/" })
        let prefix = String(rest.dropFirst(bucket.count).drop { $0 == "/" })
        guard !bucket.isEmpty else { throw ValidationError("s3://BUCKET/PREFIX needs a bucket") }
        let environment = ProcessInfo.processInfo.environment
        let region = region ?? environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? "us-east-1"
        var keyID = environment["AWS_ACCESS_KEY_ID"], secret = environment["AWS_SECRET_ACCESS_KEY"]
        if let credentials {
            // The [default] profile (or lines before any profile header) of an AWS-style file.
            var inDefault = true
            for line in try readText(credentials).split(separator: "\n") {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed.hasPrefix("[") { inDefault = trimmed == "[default]"; continue }
                let parts = trimmed.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard inDefault, parts.count == 2 else { continue }
                if parts[0] == "aws_access_key_id" { keyID = parts[1] }
                if parts[0] == "aws_secret_access_key" { secret = parts[1] }
            }
        }
        guard let keyID, let secret, !keyID.isEmpty, !secret.isEmpty else {
            throw InputError(message: "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give --credentials FILE")
        }
        guard let url = URL(string: endpoint ?? "https://s3.\(region).amazonaws.com"), url.host != nil else {
            throw ValidationError("--endpoint must be a URL such as http://127.0.0.1:9000")
        }
        // Retries (5xx, throttling, timeouts; bounded, with back-off) are said on stderr.
        let client = S3Client(endpoint: url, bucket: bucket,
                              signer: SigV4Signer(accessKeyID: keyID, secretAccessKey: secret, region: region),
                              retryPolicy: S3RetryPolicy(maxAttempts: attempts),
                              onNotice: { Console.error("stele: S3: \($0)") })
        return S3Target(client: client, prefix: prefix)
    }
}
