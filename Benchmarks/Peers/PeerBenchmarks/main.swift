// PeerBenchmarks: one workload on Stele, SQLite, LMDB, RocksDB and LevelDB, in one process, on
// one disk, one engine at a time; prints one table (or one JSON object).
//
// Batch workload (issue 7): N records, 16-byte sequential keys, 100-byte random values, batches
// of 1,000; (a) durable per batch, (b) durable only at the end; then random point reads of the
// written keys on the warm store, every value checked. Concurrent workload (issue 18): 64
// threads x 300 single-record puts, each durable before it returns, on every engine; 1,024 tasks
// x 100 puts through Stele's async API; every record read back. See docs/benchmarks.md.
//
//   swift run -c release --package-path Benchmarks PeerBenchmarks [--records N] [--reads N]
//       [--repeat N] [--dir PARENT] [--engines stele,sqlite,lmdb,rocksdb,leveldb] [--json] [--check]
//
// Exit codes: 0 ok, 1 a --check gate failed, 2 usage or an engine error.

import Foundation

let usage = """
usage: PeerBenchmarks [--workloads batch,concurrent] [--records N] [--reads N] [--repeat N] [--dir PARENT] [--engines LIST]
                      [--concurrent-engines LIST] [--threads N] [--puts-per-thread N] [--tasks N] [--puts-per-task N]
                      [--json] [--check]
  --workloads W   batch (one caller, batches of 1,000), concurrent (single durable puts from many
                  threads, and from many tasks through Stele's async API), or both (default)
  --records N     records written per engine and mode (default 1000000)
  --reads N       random point reads per engine and mode (default: as many as records)
  --repeat N      rounds over all engines; each figure is the median of its N runs (default 1)
  --dir PARENT    where the stores go, in a fresh subdirectory removed afterwards
                  (default: the system temporary directory; put it on the disk you care about)
  --engines LIST  comma-separated subset of stele,sqlite,lmdb,rocksdb,leveldb (default: all)
  --concurrent-engines LIST   the engines of the concurrent workload (default: as --engines)
  --threads N, --puts-per-thread N   concurrent threads and each one's durable puts (default 64 x 300)
  --tasks N, --puts-per-task N       Stele's concurrent async tasks and each one's puts (default 1024 x 100)
  --json          print one JSON object instead of the table
  --check         exit 1 unless Stele's ratio to the best peer of this run clears each CI gate
"""

struct Arguments {
    var records = 1_000_000
    var reads: Int?
    var rounds = 1
    var parent = NSTemporaryDirectory()
    var engines: Set<String> = ["stele", "sqlite", "lmdb", "rocksdb", "leveldb"]
    var json = false
    var check = false
    /// Which workloads run: the one-caller batches, the concurrent single puts, or both.
    var workloads: Set<String> = ["batch", "concurrent"]
    /// The engines of the concurrent workload (default: as --engines).
    var concurrentEngines: Set<String>?
    var threads = 64
    var tasks = 1024
    var putsPerThread = 300
    var putsPerTask = 100

    init(_ arguments: [String]) throws {
        var rest = arguments[...]
        func value(_ name: String) throws -> String {
            guard let next = rest.popFirst() else { throw EngineError("usage", "\(name) needs a value") }
            return next
        }
        func count(_ name: String) throws -> Int {
            guard let number = Int(try value(name)), number >= 1 else { throw EngineError("usage", "\(name) must be a positive integer") }
            return number
        }
        while let argument = rest.popFirst() {
            switch argument {
            case "--records": records = try count(argument)
            case "--reads": reads = try count(argument)
            case "--repeat": rounds = try count(argument)
            case "--dir": parent = try value(argument)
            case "--engines":
                engines = Set(try value(argument).lowercased().split(separator: ",").map(String.init))
                let known: Set = ["stele", "sqlite", "lmdb", "rocksdb", "leveldb"]
                guard engines.isSubset(of: known), !engines.isEmpty else {
                    throw EngineError("usage", "--engines takes a comma-separated subset of \(known.sorted().joined(separator: ","))")
                }
            case "--workloads":
                workloads = Set(try value(argument).lowercased().split(separator: ",").map(String.init))
                guard workloads.isSubset(of: ["batch", "concurrent"]), !workloads.isEmpty else {
                    throw EngineError("usage", "--workloads takes batch, concurrent or both")
                }
            case "--concurrent-engines":
                let chosen = Set(try value(argument).lowercased().split(separator: ",").map(String.init))
                guard chosen.isSubset(of: ["stele", "sqlite", "lmdb", "rocksdb", "leveldb"]), !chosen.isEmpty else {
                    throw EngineError("usage", "--concurrent-engines takes a comma-separated subset of leveldb,lmdb,rocksdb,sqlite,stele")
                }
                concurrentEngines = chosen
            case "--threads": threads = try count(argument)
            case "--tasks": tasks = try count(argument)
            case "--puts-per-thread": putsPerThread = try count(argument)
            case "--puts-per-task": putsPerTask = try count(argument)
            case "--json": json = true
            case "--check": check = true
            case "--help", "-h":
                print(usage)
                exit(0)
            default: throw EngineError("usage", "unknown argument \(argument)")
            }
        }
    }
}

func progress(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

func run(_ arguments: Arguments) throws -> Int32 {
    let directory = try makeTemporaryDirectory(under: arguments.parent)
    defer { removeTree(directory) }
    var passed = true
    var batchJSON: String?
    var concurrentJSON: String?
    if arguments.workloads.contains("batch") {
        let workload = Workload(records: arguments.records, reads: arguments.reads ?? arguments.records,
                                batchSize: 1000, valueSize: 100, seed: 0x5EED_57E1E)
        let results = try runBatches(arguments, workload, under: directory)
        if arguments.json {
            batchJSON = json(results, workload: workload, directory: directory, rounds: arguments.rounds)
        } else {
            print("\(workload.records) records (16 B sequential keys, 100 B random values, batches of \(workload.batchSize)), "
                + "\(workload.readOrder.count) random reads, in \(directory)"
                + (arguments.rounds > 1 ? "; medians of \(arguments.rounds) rounds" : ""))
            print(table(results, check: arguments.check))
        }
        if arguments.check { passed = check(comparisons(results), expected: 3) && passed }
    }
    if arguments.workloads.contains("concurrent") {
        let shape = ConcurrentShape(threads: arguments.threads, tasks: arguments.tasks,
                                    putsPerThread: arguments.putsPerThread, putsPerTask: arguments.putsPerTask)
        let results = try runConcurrent(arguments, shape, under: directory)
        if arguments.json {
            concurrentJSON = concurrentJSONObject(results, shape: shape, rounds: arguments.rounds)
        } else {
            if arguments.workloads.contains("batch") { print("") }
            print("Concurrent single-record puts, each durable before it returns (16 B keys, 100 B random values): "
                + "\(shape.threads) threads x \(shape.putsPerThread) puts; \(shape.tasks) tasks x \(shape.putsPerTask) puts"
                + (arguments.rounds > 1 ? "; medians of \(arguments.rounds) rounds" : ""))
            print(concurrentTable(results, check: arguments.check))
        }
        if arguments.check { passed = check(concurrentComparisons(results), expected: nil) && passed }
    }
    if arguments.json {
        // One object: the batch workload's fields at the top (as before), the concurrent one under "concurrent".
        switch (batchJSON, concurrentJSON) {
        case let (batch?, concurrent?): print(batch.dropLast() + ",\"concurrent\":" + concurrent + "}")
        case let (batch?, nil): print(batch)
        case let (nil, concurrent?): print("{\"concurrent\":" + concurrent + "}")
        case (nil, nil): break
        }
    }
    return passed ? 0 : 1
}

/// The one-caller batch workload, in whole rounds over every engine (rather than each engine's
/// runs back to back, so that a slow spell on the shared machine lands on several engines' runs
/// instead of all of one's); each row the median of its rounds.
func runBatches(_ arguments: Arguments, _ workload: Workload, under directory: String) throws -> [Measurement] {
    var runs: [Measurement] = []
    func include<E: Engine>(_ engine: E, round: Int) throws {
        guard arguments.engines.contains(engine.name.lowercased()) else { return }
        for durability in Durability.allCases {
            progress("round \(round) of \(arguments.rounds): \(engine.name), \(durability.label): "
                + "\(workload.records) records, \(workload.readOrder.count) reads ...")
            runs.append(try measure(engine, durability, workload, under: directory))
        }
    }
    for round in 1 ... arguments.rounds {
        try include(SteleEngine(), round: round)
        try include(SQLiteEngine(), round: round)
        try include(LMDBEngine(), round: round)
        try include(RocksDBEngine(), round: round)
        try include(LevelDBEngine(), round: round)
    }
    var results: [Measurement] = []
    for run in runs where !results.contains(where: { $0.engine == run.engine && $0.durability == run.durability }) {
        if let median = Measurement.median(runs.filter { $0.engine == run.engine && $0.durability == run.durability }) {
            results.append(median)
        }
    }
    return results
}

/// Whether every comparison passed its gate (each failure reported); `expected` comparisons
/// must be there when given (Stele and a peer were both run).
func check(_ all: [Comparison], expected: Int?) -> Bool {
    if let expected, all.count != expected {
        progress("check failed: --check needs Stele and at least one peer (--engines)")
        return false
    }
    let failed = all.filter { !$0.gatePassed }
    for comparison in failed {
        progress(String(format: "check failed: %@: Stele at %.2f× of %@ (median of the rounds' ratios), below the gate of %.2f×",
                        comparison.workload, comparison.pairedRatio, comparison.gatePeer, comparison.minimum))
    }
    return failed.isEmpty
}

do {
    let arguments = try Arguments(Array(CommandLine.arguments.dropFirst()))
    exit(try run(arguments))
} catch let error as EngineError where error.description.hasPrefix("usage:") {
    progress("PeerBenchmarks: \(error)\n\(usage)")
    exit(2)
} catch {
    progress("PeerBenchmarks: \(error)")
    exit(2)
}
