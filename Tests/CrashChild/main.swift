// A writer for the crash tests: opens the store given as the first argument and appends
// batches under `.everyBatch` until it is killed. After each append returns, it prints the last
// acknowledged sequence number on its own line and flushes, so the parent knows exactly what
// was promised durable at the moment it sent SIGKILL.
//
// Record n (sequence n) has key "k<n>" and a value derived from n (see `CrashWorkload`).
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
        let entries = (0 ..< UInt64(batch)).map { i in
            Entry(namespace: "crash", key: Array("k\(next + i)".utf8), value: crashValue(next + i))
        }
        let receipt = try store.append(contentsOf: entries)
        next = receipt.sequences.upperBound + 1
        FileHandle.standardOutput.write(Data("\(receipt.sequences.upperBound)\n".utf8))
    }
} catch {
    FileHandle.standardError.write(Data("stele-crash-child: \(error)\n".utf8))
    exit(1)
}

/// The value for sequence `n`: 40 to 2,000 bytes, some compressible, some not.
func crashValue(_ n: UInt64) -> [UInt8] {
    var state = n &* 0x9E37_79B9_7F4A_7C15 | 1
    let length = 40 + Int(n % 7) * 300
    return (0 ..< length).map { i in
        if n % 2 == 0 { return UInt8(ascii: "a") + UInt8(i % 26) }
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return UInt8(truncatingIfNeeded: state)
    }
}
