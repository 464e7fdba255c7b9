// swift-tools-version:6.1
// libFuzzer targets for Stele's decoders (docs/fuzzing.md). A package of its own, so that users
// of the library never resolve or build it. Build and run with `tools/fuzz.sh TARGET SECONDS`.
import PackageDescription

// One executable, `stele-fuzz TARGET`, whose main.swift defines `LLVMFuzzerTestOneInput` for the
// chosen decoder and starts libFuzzer's driver (`LLVMFuzzerRunDriver`, declared by CLibFuzzer).
let package = Package(
    name: "SteleFuzz",
    platforms: [.macOS(.v15)],
    // The root package by name: a path dependency's identity is otherwise the checkout's
    // directory name, which differs between clones (see /work/shared/SWIFT-NOTES.md).
    dependencies: [.package(name: "Stele", path: "../..")],
    targets: [
        .target(name: "CLibFuzzer"),
        .executableTarget(name: "stele-fuzz", dependencies: ["CLibFuzzer", .product(name: "Stele", package: "Stele"),
                                                           .product(name: "SteleMirror", package: "Stele")]),
    ]
)
