import Testing
@testable import Stele

@Suite struct KeyIndexTests {
    /// Keys arriving in order (the O(1) path), out of order (the delta), and enough of them to
    /// force merges: every walk is in byte order, holds every key once, and from any start key.
    @Test func keysWalkInByteOrderWhateverOrderTheyArriveIn() {
        var random = SplitMix64(seed: 42)
        var index = KeyIndex()
        var expected: [[UInt8]: [UInt64]] = [:]
        var sequence: UInt64 = 0
        func put(_ key: [UInt8]) {
            let composite = KeyIndex.compositeKey(namespace: Array("ns".utf8), key: key)
            index.record(composite, sequence: sequence, deleted: false)
            expected[composite, default: []].append(sequence)
            sequence += 1
        }
        for round in 0 ..< 6 {
            // An in-order run: zero-padded counters.
            for n in 0 ..< 1500 { put(Array(String(format: "run%d-%06d", round, n).utf8)) }
            // Random keys of random lengths, some repeated, some prefixes of others.
            for _ in 0 ..< 1500 {
                let length = 1 + random.next(below: 6)
                put((0 ..< length).map { _ in UInt8(97 + random.next(below: 4)) })
            }
        }
        var walked: [[UInt8]] = []
        index.forEachKeyInOrder { key, versions in
            walked.append(key)
            #expect(versions.map(\.sequence) == expected[key])
        }
        let sortedKeys = expected.keys.sorted { $0.lexicographicallyPrecedes($1) }
        #expect(walked == sortedKeys)
        for _ in 0 ..< 50 {
            let start = sortedKeys[random.next(below: sortedKeys.count)]
            var first: [UInt8]?
            index.forEachKey(startingAt: start) { key, _ in first = key; return false }
            #expect(first == start)
        }
    }
}
