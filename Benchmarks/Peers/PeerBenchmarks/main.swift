// PeerBenchmarks: one workload on Stele, SQLite, LMDB, RocksDB and LevelDB, in one process, on
// one disk, one engine at a time; prints one table (or one JSON object).
//
// Workload (issue 7): N records, 16-byte sequential keys, 100-byte random values, batches of
// 1,000; (a) durable per batch, (b) durable only at the end; then random point reads of the
// written keys on the warm store, every value checked. See docs/benchmarks.md ("Peers").
//
//   swift run -c release --package-path Benchmarks PeerBenchmarks [--records N] [--reads N]
//       [--repeat N] [--dir PARENT] [--engines stele,sqlite,lmdb,rocksdb,leveldb] [--json] [--check]
//
// Exit codes: 0 ok, 1 a --check gate failed, 2 usage or an engine error.

import Foundation

let usage = """
usage: PeerBenchmarks [--records N] [--reads N] [--repeat N] [--dir PARENT] [--engines LIST] [--json] [--check]
  --records N     records written per engine and mode (default 1000000)
  --reads N       random point reads per engine and mode (default: as many as records)
  --repeat N      rounds over all engines; each figure is the median of its N runs (default 1)
  --dir PARENT    where the stores go, in a fresh subdirectory removed afterwards
                  (default: the system temporary directory; put it on the disk you care about)
  --engines LIST  comma-separated subset of stele,sqlite,lmdb,rocksdb,leveldb (default: all)
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
    let workload = Workload(records: arguments.records, reads: arguments.reads ?? arguments.records,
                            batchSize: 1000, valueSize: 100, seed: 0x5EED_57E1E)
    let directory = try makeTemporaryDirectory(under: arguments.parent)
    defer { removeTree(directory) }
    var runs: [Measurement] = []
    func include<E: Engine>(_ engine: E, round: Int) throws {
        guard arguments.engines.contains(engine.name.lowercased()) else { return }
        for durability in Durability.allCases {
            progress("round \(round) of \(arguments.rounds): \(engine.name), \(durability.label): "
                + "\(workload.records) records, \(workload.readOrder.count) reads ...")
            runs.append(try measure(engine, durability, workload, under: directory))
        }
    }
    // Whole rounds over every engine, rather than each engine's runs back to back, so that a
    // slow spell on the shared machine lands on several engines' runs instead of all of one's.
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

    if arguments.json {
        print(json(results, workload: workload, directory: directory, rounds: arguments.rounds))
    } else {
        print("\(workload.records) records (16 B sequential keys, 100 B random values, batches of \(workload.batchSize)), "
            + "\(workload.readOrder.count) random reads, in \(directory)"
            + (arguments.rounds > 1 ? "; medians of \(arguments.rounds) rounds" : ""))
        print(table(results, check: arguments.check))
    }
    if arguments.check {
        let all = comparisons(results)
        guard all.count == 3 else {
            progress("check failed: --check needs Stele and at least one peer (--engines)")
            return 1
        }
        let failed = all.filter { !$0.gatePassed }
        for comparison in failed {
            progress(String(format: "check failed: %@: Stele at %.2f× of the best peer (median of the rounds' ratios), below the gate of %.2f×",
                            comparison.workload, comparison.pairedRatio, comparison.minimum))
        }
        if !failed.isEmpty { return 1 }
    }
    return 0
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
