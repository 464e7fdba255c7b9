// A writer for the crash tests: opens the store given as the first argument and appends
// batches under `.everyBatch` until it is killed. After each append returns, it prints the last
// acknowledged sequence number on its own line, so the parent knows exactly what had been
// promised durable at the moment it sent SIGKILL.
//
// Record n has namespace "crash", key "k<n>" and value "value-<n>;" repeated to
// 40 + (n % 7) * 300 bytes (the crash test regenerates it to check every byte).
import Foundation
import Stele

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    FileHandle.standardError.write(Data("usage: stele-crash-child STORE [BATCH]\n".utf8))
    exit(2)
}
let batch = arguments.count >= 3 ? max(1, Int(arguments[2]) ?? 1) : 1
do {
    let store = try Store(path: arguments[1], options: .init(commitPolicy: .everyBatch))
    var next = store.recordCount
    while true {
        let entries = (next ..< next + UInt64(batch)).map { n in
            Entry(namespace: "crash", key: Array("k\(n)".utf8),
                  value: Array(String(repeating: "value-\(n);", count: 300).utf8.prefix(40 + Int(n % 7) * 300)))
        }
        let receipt = try store.append(contentsOf: entries)
        next = receipt.sequences.upperBound + 1
        FileHandle.standardOutput.write(Data("\(receipt.sequences.upperBound)\n".utf8))
    }
} catch {
    FileHandle.standardError.write(Data("stele-crash-child: \(error)\n".utf8))
    exit(1)
}
