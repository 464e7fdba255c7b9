import Foundation
import Testing

/// The target graph is the architecture (Package.swift's comment): only SteleNative reaches the
/// system. SwiftPM puts every C module of the package on each target's search path, so an
/// `import CXXHash` in the engine would still compile; this suite is what refuses it.
@Suite struct LayerTests {
    private static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Modules that only SteleNative may import: the system C library and the C libraries.
    private static let systemModules: Set<String> = ["Glibc", "Musl", "Darwin", "CLZ4", "CXXHash", "CCrypto", "CSteleSys"]

    /// The Swift files under `Sources/<target>`, with their text.
    private static func sources(of target: String) throws -> [(path: String, text: String)] {
        try swiftFiles(under: "Sources/\(target)")
    }

    /// The Swift files under a folder of the repository, with their text.
    private static func swiftFiles(under folder: String) throws -> [(path: String, text: String)] {
        let directory = root.appendingPathComponent(folder)
        guard let walker = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: nil) else { return [] }
        return try walker.compactMap { $0 as? URL }.filter { $0.pathExtension == "swift" }.map {
            ($0.path.replacingOccurrences(of: root.path + "/", with: ""), try String(contentsOf: $0, encoding: .utf8))
        }
    }

    /// The modules a file imports (`import X`, `@testable import X`, `internal import X`, `import struct X.Y`).
    static func importedModules(_ text: String) -> [String] {
        text.split(separator: "\n").compactMap { line -> String? in
            let words = line.split(separator: " ").map(String.init)
            guard let at = words.firstIndex(of: "import"), words[..<at].allSatisfy({ $0.hasPrefix("@") || ["public", "package", "internal", "private", "fileprivate"].contains($0) }),
                  at + 1 < words.count else { return nil }
            let name = ["struct", "class", "enum", "protocol", "func", "var", "let", "typealias"].contains(words[at + 1]) && at + 2 < words.count
                ? words[at + 2] : words[at + 1]
            return String(name.split(separator: ".").first ?? "")
        }
    }

    @Test func theImportScannerSeesEveryFormOfImport() {
        let text = "import Glibc\n@testable import Stele\ninternal import CXXHash\nimport struct CLZ4.Thing\n// import Darwin\nlet important = 1"
        #expect(Self.importedModules(text) == ["Glibc", "Stele", "CXXHash", "CLZ4"])
    }

    @Test(arguments: ["Stele", "SteleMirror", "SteleService", "SteleServe", "SteleCLI"])
    func onlyTheNativeTargetImportsTheSystem(target: String) throws {
        let files = try Self.sources(of: target)
        #expect(files.count >= 3, "found the sources of \(target)")
        for file in files {
            let forbidden = Self.importedModules(file.text).filter(Self.systemModules.contains)
            #expect(forbidden.isEmpty, "\(file.path) imports \(forbidden): system calls and C libraries belong in SteleNative")
        }
    }

    /// Pointer work: raw pointers, their arithmetic, loads and stores, copies, manual memory and
    /// retain counts. Bounded borrowed buffers (`Unsafe*BufferPointer` from `withUnsafeBytes`),
    /// handed to SteleNative's APIs, are not on the list: they carry their bounds.
    private static let pointerWork = ["UnsafeRawPointer", "UnsafeMutableRawPointer", "UnsafePointer", "UnsafeMutablePointer",
                                      "baseAddress", "loadUnaligned", "load(fromByteOffset", "storeBytes", "copyMemory",
                                      "assumingMemoryBound", "bindMemory", "withUnsafeTemporaryAllocation", "Unmanaged", "allocate(capacity"]

    @Test(arguments: ["Stele", "SteleMirror", "SteleService", "SteleServe", "SteleCLI"])
    func onlyTheNativeTargetDoesPointerWork(target: String) throws {
        for file in try Self.sources(of: target) {
            let code = file.text.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("//") }
            let found = Self.pointerWork.filter { word in code.contains { $0.contains(word) } }
            #expect(found.isEmpty, "\(file.path) uses \(found): pointer work belongs in SteleNative, behind a bounds-checked API")
        }
    }

    @Test func noSourceFileIsOver500Lines() throws {
        for folder in ["Sources", "Tests", "Benchmarks/Benchmarks", "Benchmarks/Peers"] {
            let files = try Self.swiftFiles(under: folder)
            #expect(!files.isEmpty, "found the Swift files under \(folder)")
            for file in files {
                let lines = file.text.split(separator: "\n", omittingEmptySubsequences: false).count
                #expect(lines <= 500, "\(file.path) has \(lines) lines: split it by concept")
            }
        }
    }
}
