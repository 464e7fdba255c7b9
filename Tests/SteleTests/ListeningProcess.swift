import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
@testable import Stele

/// A server process started with `--listen 127.0.0.1:0`, found by the port it prints.
final class ListeningProcess {
    /// The `stele` binary beside the crash child.
    static var stele: String {
        URL(fileURLWithPath: ProcessCrashTests.childPath).deletingLastPathComponent().appendingPathComponent("stele").path
    }

    let process = Process()
    let port: Int

    init(_ binary: String, _ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        var line = Data()
        while let byte = try out.fileHandleForReading.read(upToCount: 1), !byte.isEmpty, byte != Data("\n".utf8) { line.append(byte) }
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("listening on "), let port = text.split(separator: ":").last.flatMap({ Int($0) }) else {
            process.terminate()
            throw SteleError.invalidArgument("the server did not start: \(text)")
        }
        self.port = port
    }

    func request(_ method: String, _ path: String, body: [UInt8]?) throws -> (status: Int, contentType: String?, body: [UInt8]) {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/\(path)")!)
        request.httpMethod = method
        request.httpBody = body.map { Data($0) }
        request.cachePolicy = .reloadIgnoringLocalCacheData
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: (Int, String?, [UInt8])?
        nonisolated(unsafe) var failure: (any Error)?
        URLSession.shared.dataTask(with: request) { data, response, error in
            if let error {
                failure = error
            } else {
                let http = response as? HTTPURLResponse
                result = (http?.statusCode ?? 0, http?.value(forHTTPHeaderField: "Content-Type"), Array(data ?? Data()))
            }
            done.signal()
        }.resume()
        done.wait()
        if let failure { throw failure }
        return result ?? (0, nil, [])
    }

    /// A GET to a server on 127.0.0.1 at `port`.
    static func get(_ port: Int, _ path: String) throws -> (status: Int, body: [UInt8]) {
        let url = URL(string: "http://127.0.0.1:\(port)/\(path)")!
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: (Int, [UInt8]) = (0, [])
        URLSession.shared.dataTask(with: URLRequest(url: url)) { data, response, _ in
            result = ((response as? HTTPURLResponse)?.statusCode ?? 0, Array(data ?? Data()))
            done.signal()
        }.resume()
        done.wait()
        return result
    }

    func get(_ path: String) throws -> (status: Int, body: [UInt8]) {
        let answer = try request("GET", path, body: nil)
        return (answer.status, answer.body)
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
    }
}
