// swift-tools-version:6.1
// An orders API embedding Stele the way a SaaS backend would: Hummingbird 2 for HTTP,
// swift-service-lifecycle for startup and graceful shutdown, Stele's async API for writes that
// are answered 201 only once durable. A package of its own, so that Stele's build and tests do
// not compile Hummingbird; CI builds it and runs its load-and-kill test (orders-load --kill-test).
//
//   swift run --package-path Examples/OrdersServer orders-server --store /tmp/orders.stele --port 8080
//   swift run --package-path Examples/OrdersServer orders-load --kill-test
import PackageDescription

let package = Package(
    name: "OrdersServer",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "orders-server", targets: ["OrdersServer"]),
        .executable(name: "orders-load", targets: ["OrdersLoad"]),
    ],
    dependencies: [
        .package(name: "Stele", path: "../.."),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // Already in Hummingbird's graph; named for HTTPField.Name (the stele-sequence header).
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
    ],
    targets: [
        .executableTarget(
            name: "OrdersServer",
            dependencies: [
                .product(name: "Stele", package: "Stele"),
                .product(name: "SteleService", package: "Stele"),
                .product(name: "SteleMirror", package: "Stele"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            path: "Sources/OrdersServer"
        ),
        // The load generator, the load-and-kill test and the failover drill: a client in another
        // process (URLSession); the drill also makes the signing key and checks the promoted
        // store's log against the old primary's checkpoint with Stele itself.
        .executableTarget(name: "OrdersLoad", dependencies: [.product(name: "Stele", package: "Stele")], path: "Sources/OrdersLoad"),
    ]
)
