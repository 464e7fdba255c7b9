// swift-tools-version:6.1
// Benchmarks for Stele: package-benchmark suites (Benchmarks/*) and PeerBenchmarks (Peers/), a plain
// executable that runs one workload on Stele, SQLite, LMDB, RocksDB and LevelDB and prints one table.
// Run from this directory: swift package --allow-writing-to-package-directory benchmark
// Peers: tools/bench-peers.sh (or swift run -c release PeerBenchmarks --help)
import PackageDescription

let package = Package(
    name: "SteleBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        // Named explicitly: a path dependency's identity is otherwise the checkout directory's name.
        .package(name: "Stele", path: "../"),
        // ordo-one/benchmark (formerly package-benchmark; the plugin warns about the old identifier).
        // Only the MallocInterposer trait: the default traits pull a package that is not available here.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // The peers, as Debian ships them, through their C APIs. LevelDB ships no pkg-config file,
        // so its module map links it by name. Kept out of Benchmarks/, where package-benchmark
        // looks for its suites.
        .systemLibrary(name: "CSQLite", path: "Peers/CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CLMDB", path: "Peers/CLMDB", pkgConfig: "lmdb", providers: [.apt(["liblmdb-dev"])]),
        .systemLibrary(name: "CRocksDB", path: "Peers/CRocksDB", pkgConfig: "rocksdb", providers: [.apt(["librocksdb-dev"])]),
        .systemLibrary(name: "CLevelDB", path: "Peers/CLevelDB", providers: [.apt(["libleveldb-dev"])]),
        .executableTarget(
            name: "PeerBenchmarks",
            dependencies: [
                .product(name: "Stele", package: "Stele"),
                "CSQLite", "CLMDB", "CRocksDB", "CLevelDB",
            ],
            path: "Peers/PeerBenchmarks"
        ),
        .executableTarget(
            name: "AppendBenchmarks",
            dependencies: [
                .product(name: "Stele", package: "Stele"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/AppendBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "IndexBenchmarks",
            dependencies: [
                .product(name: "Stele", package: "Stele"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/IndexBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "ProofBenchmarks",
            dependencies: [
                .product(name: "Stele", package: "Stele"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/ProofBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // Many writers at once (threads, and tasks through the async API), single durable puts.
        .executableTarget(
            name: "ConcurrentBenchmarks",
            dependencies: [
                .product(name: "Stele", package: "Stele"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/ConcurrentBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // The mirror benchmarks' command line and copy.
        .target(
            name: "MirrorBenchSupport",
            dependencies: [
                .product(name: "Stele", package: "Stele"),
                .product(name: "SteleMirror", package: "Stele"),
            ],
            path: "Peers/MirrorBenchSupport"
        ),
        // Mirror lag under a steady write load with a seal timer (tools/mirror-lag.sh).
        .executableTarget(
            name: "MirrorLag",
            dependencies: [
                "MirrorBenchSupport",
                .product(name: "Stele", package: "Stele"),
                .product(name: "SteleMirror", package: "Stele"),
            ],
            path: "Peers/MirrorLag"
        ),
        // A follower's pass as the copy grows: full checks at every pass, or only what is new.
        .executableTarget(
            name: "CopyCheck",
            dependencies: [
                "MirrorBenchSupport",
                .product(name: "Stele", package: "Stele"),
                .product(name: "SteleMirror", package: "Stele"),
            ],
            path: "Peers/CopyCheck"
        ),
    ]
)
