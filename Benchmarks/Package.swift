// swift-tools-version:6.1
// Append-throughput benchmarks for Stele (package-benchmark).
// Run from this directory: swift package --allow-writing-to-package-directory benchmark
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
    ]
)
