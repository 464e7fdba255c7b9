import Foundation
import Testing
@testable import Stele
import SteleNative

/// Proof that the real sync calls are made: the crash child (`Tests/CrashChild`) appends on the
/// real file system under `strace`, printing each acknowledgement in one write(2) to standard
/// output, and the trace must show, before every acknowledgement, the system calls the commit
/// policy promises, on the files that hold the acknowledged records (docs/durability.md):
///
/// - `everyBatch`: an `msync(MS_SYNC)` whose mapped range covers the acknowledged record's frame,
///   or an `fdatasync`/`fsync` of its segment file, issued after the same thread's previous
///   acknowledgement and finished before this one;
/// - every segment before the one a record lives in was `fsync`ed (its seal), and the rename that
///   named that record's segment was followed by an `fsync` of the segments directory, both
///   before the record was acknowledged;
/// - under every policy, a clean close syncs the last record's frame before the process ends.
///
/// Frame places come from the segment files afterwards. The fault sweep and the power-cut model
/// prove what Stele does with the calls its file-system layer makes; this proves the calls reach
/// the kernel. A build with any of those syncs removed fails here.
@Suite(.serialized) struct SyncTraceTests {
    struct Trace {
        enum Event {
            case ack(thread: Int, sequence: UInt64)
            /// A sync of `file`, over `range` (nil: the whole file), issued at `issued` by `thread`.
            case sync(file: String, range: Range<UInt64>?, issued: Int, thread: Int)
            case rename(to: String)
            /// A `pwrite` of `bytes` of `file` (staged frames of a large batch, handed to the kernel).
            case pwrite(file: String, bytes: Range<UInt64>)
            case exit
        }

        /// Events in the order their calls finished (acknowledgements: in the order they began).
        var events: [(index: Int, event: Event)] = []
    }

    /// A mapping made with `mmap(..., MAP_SHARED, fd</path>, offset)`.
    struct Mapping {
        var base: UInt64
        var length: UInt64
        var file: String
        var offset: UInt64
    }

    static func segmentName(_ path: String) -> String {
        let name = (path as NSString).lastPathComponent
        return name.hasSuffix(".tmp") ? String(name.dropLast(4)) : name
    }

    /// The path inside `fd</path>`.
    static func fdPath(_ argument: Substring) -> String? {
        guard let open = argument.firstIndex(of: "<"), let close = argument.lastIndex(of: ">"), open < close else { return nil }
        return String(argument[argument.index(after: open) ..< close])
    }

    /// Parses an `strace -f -y` log of the calls the test traces.
    static func parse(_ log: String) throws -> Trace {
        var trace = Trace()
        var mappings: [Mapping] = []
        var pending: [Int: (call: String, arguments: String, index: Int)] = [:]
        for (index, rawLine) in log.split(separator: "\n").enumerated() {
            guard let space = rawLine.firstIndex(of: " "), let thread = Int(rawLine[..<space]) else { continue }
            let line = rawLine[rawLine.index(after: space)...].drop { $0 == " " }
            if line.hasPrefix("+++ exited") || line.hasPrefix("+++ killed") {
                trace.events.append((index, .exit))
                continue
            }
            // A call another thread's interrupts is split: its arguments on one line ending
            // "<unfinished ...>", its result on a later "<... call resumed>" line.
            if !line.hasPrefix("<... "), line.hasSuffix("<unfinished ...>"), let paren = line.firstIndex(of: "(") {
                let call = String(line[..<paren])
                let arguments = String(line[line.index(after: paren)...].dropLast("<unfinished ...>".count)).trimmingCharacters(in: .whitespaces)
                pending[thread] = (call, arguments, index)
                if call == "write", let ack = Self.acknowledgement(arguments) { trace.events.append((index, .ack(thread: thread, sequence: ack))) }
                continue
            }
            // The result follows the last " = " (strace pads short lines with spaces before it).
            guard let equals = line.range(of: " = ", options: .backwards) else { continue }
            let result = line[equals.upperBound...].prefix { !$0.isWhitespace }
            let call: String, arguments: String, issued: Int
            if line.hasPrefix("<... ") {
                guard let started = pending.removeValue(forKey: thread) else { continue }
                (call, arguments, issued) = (started.call, started.arguments, started.index)
            } else {
                guard let paren = line.firstIndex(of: "(") else { continue }
                let inside = line[line.index(after: paren) ..< equals.lowerBound].trimmingCharacters(in: .whitespaces)
                guard inside.hasSuffix(")") else { continue }
                (call, arguments, issued) = (String(line[..<paren]), String(inside.dropLast()), index)
            }
            guard !result.hasPrefix("-1") else { continue }  // a failed call promises nothing
            let parts = arguments.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces)[...] }
            switch call {
            case "write":
                if issued == index, let ack = Self.acknowledgement(arguments) { trace.events.append((index, .ack(thread: thread, sequence: ack))) }
            case "mmap":
                guard parts.count == 6, parts[3].contains("MAP_SHARED"), let path = fdPath(parts[4]), path.contains("/segments/"),
                      let base = UInt64(result.dropFirst(2), radix: 16), let length = UInt64(parts[1]),
                      let offset = UInt64(parts[5].hasPrefix("0x") ? parts[5].dropFirst(2) : parts[5], radix: parts[5].hasPrefix("0x") ? 16 : 10)
                else { continue }
                mappings.append(Mapping(base: base, length: length, file: segmentName(path), offset: offset))
            case "munmap":
                guard let base = UInt64(parts.first?.dropFirst(2) ?? "", radix: 16) else { continue }
                mappings.removeAll { $0.base == base }
            case "msync":
                guard parts.count == 3, parts[2].contains("MS_SYNC"), let address = UInt64(parts[0].dropFirst(2), radix: 16),
                      let length = UInt64(parts[1]),
                      let mapping = mappings.last(where: { $0.base <= address && address < $0.base + $0.length }) else { continue }
                let start = address - mapping.base + mapping.offset
                trace.events.append((index, .sync(file: mapping.file, range: start ..< start + length, issued: issued, thread: thread)))
            case "fdatasync", "fsync":
                guard let path = parts.first.flatMap(fdPath) else { continue }
                let file = path.hasSuffix("/segments") ? "segments/" : segmentName(path)
                trace.events.append((index, .sync(file: file, range: nil, issued: issued, thread: thread)))
            case "pwrite64", "pwrite":
                // The buffer may hold commas: the path comes first, the count and offset last.
                guard let path = fdPath(arguments.prefix { $0 != "," }[...]), path.contains("/segments/") else { continue }
                let tail = arguments.split(separator: ",").suffix(2).map { $0.trimmingCharacters(in: .whitespaces) }
                guard tail.count == 2, let offset = UInt64(tail[1]), let written = UInt64(result) else { continue }
                trace.events.append((index, .pwrite(file: segmentName(path), bytes: offset ..< offset + written)))
            case "rename", "renameat", "renameat2":
                guard let target = parts.dropFirst(call == "rename" ? 1 : 3).first, target.contains("/segments/") else { continue }
                trace.events.append((index, .rename(to: segmentName(String(target.trimmingCharacters(in: CharacterSet(charactersIn: "\"")))))))
            default:
                continue
            }
        }
        return trace
    }

    /// The sequence number in `1<pipe:[…]>, "57\n", 3`: a write to standard output.
    static func acknowledgement(_ arguments: String) -> UInt64? {
        guard arguments.hasPrefix("1<"), let open = arguments.firstIndex(of: "\""),
              let close = arguments[arguments.index(after: open)...].firstIndex(of: "\\") else { return nil }
        return UInt64(arguments[arguments.index(after: open) ..< close])
    }

    /// Where each record's frame is: segment file name and byte range.
    static func framePlaces(store: String) throws -> [UInt64: (file: String, bytes: Range<UInt64>)] {
        var out: [UInt64: (file: String, bytes: Range<UInt64>)] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: store + "/segments").sorted() where name.hasSuffix(".seg") {
            let bytes = try readFile(store + "/segments/" + name)
            ByteView.of(bytes) { view in
                var offset = SegmentHeader.size
                while case .success(let frame) = Frame.decode(view, at: offset, limit: view.count) {
                    out[frame.sequence] = (name, UInt64(frame.offset) ..< UInt64(frame.end))
                    offset = frame.end
                }
            }
        }
        return out
    }

    /// Runs the child under strace and checks the trace; returns (acknowledgements, segments,
    /// records whose frames reached the file through a staged `pwrite` rather than the mapping).
    @discardableResult
    static func check(policy: String, batch: Int, writers: Int, records: Int) throws -> (acks: Int, segments: Int, staged: Int) {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = dir.child("s")
        try Store.create(at: store, segmentSize: 64 * 1024)
        let log = dir.child("trace")
        let run = try CLITests.run("/usr/bin/env", ["strace", "-f", "-y", "-qq", "-o", log, "-e", "signal=none",
                                                    "-e", "trace=write,pwrite64,mmap,munmap,msync,fdatasync,fsync,rename,renameat,renameat2",
                                                    ProcessCrashTests.childPath, store, "\(batch)", "--policy", policy,
                                                    "--writers", "\(writers)", "--records", "\(records)"])
        #expect(run.status == 0, "strace or the child failed: \(run.stderr.suffix(2000))")
        let trace = try parse(try String(contentsOfFile: log, encoding: .utf8))
        let places = try framePlaces(store: store)
        let segments = Set(places.values.map(\.file)).sorted()

        var previousAck: [Int: Int] = [:]  // thread → index of its last acknowledgement
        var syncs: [(index: Int, file: String, range: Range<UInt64>?, issued: Int, thread: Int)] = []
        var renamedAt: [String: Int] = [:]
        var directorySyncs: [Int] = []
        var pwrites: [(index: Int, file: String, bytes: Range<UInt64>)] = []
        var staged = Set<UInt64>()
        var acks = 0, problems: [String] = []
        /// Whether a sync issued after line `after` (and finished by now) covers `bytes` of `file`.
        func synced(_ file: String, _ bytes: Range<UInt64>, after: Int) -> Bool {
            syncs.contains { $0.file == file && $0.issued > after && ($0.range.map { $0.lowerBound <= bytes.lowerBound && bytes.upperBound <= $0.upperBound } ?? true) }
        }
        for (index, event) in trace.events {
            switch event {
            case .sync(let file, let range, let issued, let thread):
                if file == "segments/" { directorySyncs.append(index) } else { syncs.append((index, file, range, issued, thread)) }
            case .rename(let to):
                renamedAt[to] = renamedAt[to] ?? index
            case .pwrite(let file, let bytes):
                pwrites.append((index, file, bytes))
            case .ack(let thread, let sequence):
                acks += 1
                defer { previousAck[thread] = index }
                guard let place = places[sequence] else { problems.append("ack \(sequence): no such record on disk"); continue }
                // Every record of the call: a batch's sequence numbers are consecutive.
                for record in sequence - min(sequence, UInt64(batch - 1)) ... sequence {
                    guard let frame = places[record] else { continue }
                    // A frame handed to the kernel with pwrite needs a sync issued after that
                    // write finished (an msync of the mapping covers the file's pages however
                    // they were dirtied; one issued before the write would not cover it).
                    let written = pwrites.last { $0.file == frame.file && $0.bytes.lowerBound <= frame.bytes.lowerBound
                        && frame.bytes.upperBound <= $0.bytes.upperBound }
                    if written != nil { staged.insert(record) }
                    let after = max(previousAck[thread] ?? -1, written?.index ?? -1)
                    if policy == "every-batch" && !synced(frame.file, frame.bytes, after: after) {
                        problems.append("ack \(sequence) (line \(index)): no sync of \(frame.file) bytes \(frame.bytes) (record \(record)) since line \(after)")
                    }
                }
                // Every earlier segment sealed with an fsync; this one's name made durable.
                for earlier in segments where earlier < place.file {
                    if !syncs.contains(where: { $0.file == earlier && $0.range == nil }) {
                        problems.append("ack \(sequence) in \(place.file): \(earlier) was never fsynced before it")
                    }
                }
                if place.file != segments.first {
                    if let renamed = renamedAt[place.file] {
                        if !directorySyncs.contains(where: { $0 > renamed }) {
                            problems.append("ack \(sequence): the rename to \(place.file) was not followed by a directory fsync")
                        }
                    } else {
                        problems.append("ack \(sequence): \(place.file) was never renamed into place before it")
                    }
                }
            case .exit:
                break
            }
        }
        // A clean close makes the last record durable under any policy.
        let last = try #require(places.keys.max())
        let place = try #require(places[last])
        let lastAck = trace.events.last { if case .ack = $0.event { true } else { false } }?.index ?? -1
        if !synced(place.file, place.bytes, after: lastAck) {
            problems.append("the close did not sync \(place.file) bytes \(place.bytes), the last record (\(last))")
        }
        #expect(problems.isEmpty, "\(problems.count) problems, first: \(problems.prefix(5))")
        return (acks, segments.count, staged.count)
    }

    /// A run: policy, records per call, concurrent writers, and the least acknowledgements it
    /// must make (1,000 records; at least 5 segments, so seals and new segments are crossed).
    struct Run: Sendable, CustomTestStringConvertible {
        var policy: String, batch: Int, writers: Int, minimumAcks: Int
        /// The fewest records whose frames must have gone through a staged `pwrite`.
        var minimumStaged = 0
        var records = 1000
        var testDescription: String { "\(policy), batches of \(batch), \(writers) writer(s)" }
    }

    @Test(arguments: [
        Run(policy: "every-batch", batch: 1, writers: 1, minimumAcks: 990),
        Run(policy: "every-batch", batch: 8, writers: 1, minimumAcks: 120),
        Run(policy: "every-batch", batch: 2, writers: 4, minimumAcks: 450),  // group commit: each caller's own records
        Run(policy: "none", batch: 4, writers: 1, minimumAcks: 240),         // seals and close only
        // Batches of SegmentLog.parallelBatchMinimum records and more go to two threads, their
        // frames staged in memory and handed to the kernel with pwrite: the same checks apply.
        Run(policy: "every-batch", batch: SegmentLog.parallelBatchMinimum, writers: 1, minimumAcks: 45, minimumStaged: 2700, records: 3000),
        Run(policy: "every-batch", batch: SegmentLog.parallelBatchMinimum + 36, writers: 2, minimumAcks: 28, minimumStaged: 2700, records: 3000),
    ])
    func eachAcknowledgementFollowsTheSyncsItsPolicyPromises(_ run: Run) throws {
        let (acks, segments, staged) = try Self.check(policy: run.policy, batch: run.batch, writers: run.writers, records: run.records)
        #expect(acks >= run.minimumAcks && segments >= 5, "\(acks) acknowledgements in \(segments) segments")
        #expect(staged >= run.minimumStaged, "\(staged) records written through a staged pwrite")
        print("sync trace, \(run.testDescription): \(acks) acknowledgements, \(segments) segments, \(staged) records staged")
    }
}
