// swift-tools-version:6.1
// Stele: an embedded, immutable, append-only storage engine.
//
// Target graph (each arrow is "may import"; the compiler keeps it):
//   CLZ4, CXXHash, CCrypto, CSteleSys (C)  ←  SteleNative  ←  Stele  ←  SteleMirror  ←  SteleCLI
//                                                                          ↖ SteleService (swift-service-lifecycle)
//                                                              Stele  ←  SteleServe (Hummingbird)  ←  SteleCLI
// SteleNative is the only target with system calls and C libraries: typed, thin wrappers in the
// style of swift-system. Stele, the engine, imports no C module and no Glibc (LayerTests
// refuses one: SwiftPM would let it compile); inside it the folders follow the data: Files → Encoding → Segments →
// Merkle → Index → Retention → Checkpoints → Store → Verify.
import PackageDescription

let package = Package(
    name: "Stele",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Stele", targets: ["Stele"]),
        // Off-host copies (directory, S3 with Object Lock) and verified restores; a separate
        // library so that embedding Stele does not pull in FoundationNetworking.
        .library(name: "SteleMirror", targets: ["SteleMirror"]),
        // A store's seal timer and shutdown, and `mirror --follow`, as swift-service-lifecycle
        // services; its own product, so that embedding Stele does not pull in the lifecycle library.
        .library(name: "SteleService", targets: ["SteleService"]),
        // A read-only tile server of a store's log (c2sp.org/tlog-tiles) as Hummingbird routes
        // any Hummingbird app can mount; its own product, so that embedding Stele does not pull
        // in an HTTP server.
        .library(name: "SteleServe", targets: ["SteleServe"]),
        .executable(name: "stele", targets: ["SteleCLI"]),
    ],
    dependencies: [
        // The engine's Swift dependencies, both tiny and without dependencies of their own: the
        // server ecosystem's logging API; the embedding server chooses the backend.
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // The server ecosystem's metrics API (CoreMetrics: no dependencies); the embedding
        // server chooses the backend (Prometheus, statsd, OpenTelemetry).
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // SteleService only: the server ecosystem's service lifecycle (ServiceGroup, graceful
        // shutdown on SIGTERM); brings swift-async-algorithms.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // SteleServe and the CLI's `serve` only: the HTTP server (swift-nio underneath).
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        // Tests only: an independent Ed25519 implementation (BoringSSL) to check our signatures.
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        // Documentation only: a build plugin that adds `swift package generate-documentation`
        // (DocC, catalog in Sources/Stele/Stele.docc). No target depends on it, so no code of it
        // is linked into Stele or anything that embeds it.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // System libraries, found through pkg-config; Debian package names in `providers`.
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
        .systemLibrary(name: "CXXHash", pkgConfig: "libxxhash", providers: [.apt(["libxxhash-dev"])]),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        // Only what Glibc does not declare without _GNU_SOURCE (fallocate, MADV_POPULATE_WRITE).
        .target(name: "CSteleSys"),
        .target(name: "SteleNative", dependencies: ["CLZ4", "CXXHash", "CCrypto", "CSteleSys"]),
        .target(name: "Stele", dependencies: ["SteleNative", .product(name: "Logging", package: "swift-log"),
                                              .product(name: "CoreMetrics", package: "swift-metrics")]),
        .target(name: "SteleMirror", dependencies: ["Stele", "SteleNative", .product(name: "CoreMetrics", package: "swift-metrics")]),
        .target(name: "SteleService", dependencies: ["Stele", "SteleMirror", .product(name: "Logging", package: "swift-log"),
                                                     .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")]),
        .target(name: "SteleServe", dependencies: ["Stele", .product(name: "Logging", package: "swift-log"),
                                                   .product(name: "Hummingbird", package: "hummingbird")]),
        .executableTarget(
            name: "SteleCLI",
            dependencies: ["Stele", "SteleMirror", "SteleNative", "SteleServe", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "Hummingbird", package: "hummingbird")]
        ),
        // A child process for the crash tests: appends under `.everyBatch` and reports each
        // acknowledged sequence number on stdout until it is killed.
        .executableTarget(name: "stele-crash-child", dependencies: ["Stele"], path: "Tests/CrashChild"),
        .testTarget(
            name: "SteleTests",
            dependencies: ["Stele", "SteleNative", "SteleMirror", "SteleService", "SteleServe", "stele-crash-child", "SteleCLI",
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                           .product(name: "MetricsTestKit", package: "swift-metrics"), .product(name: "Crypto", package: "swift-crypto")]
        ),
    ]
)
