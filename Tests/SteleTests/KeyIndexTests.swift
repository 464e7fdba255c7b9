import CXXHash
import Testing
@testable import Stele

@Suite struct KeyIndexTests {
    /// Keys arriving in order (the O(1) path), out of order (into their block), and enough of
    /// them to fill and split blocks: every walk is in byte order, holds every key once, and
    /// from any start key.
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

    /// Many keys out of order, filed one by one (blocks fill and split many times) and with
    /// ordering deferred as a rebuild does (sorted once): both walk in byte order.
    @Test func outOfOrderKeysWalkInOrderFiledOneByOneOrSortedOnce() {
        var random = SplitMix64(seed: 7)
        let keys: [[UInt8]] = (0 ..< 20_000).map { n in
            // Shared 8-byte prefixes for some (the sort's tie-break), varied lengths for others.
            n % 5 == 0 ? Array("prefix00".utf8) + (0 ..< 1 + random.next(below: 4)).map { _ in UInt8(random.next(below: 256)) }
                       : (0 ..< 1 + random.next(below: 12)).map { _ in UInt8(random.next(below: 256)) }
        }
        let ns = Array("n".utf8)
        let expected = Set(keys.map { KeyIndex.compositeKey(namespace: ns, key: $0) }).sorted { $0.lexicographicallyPrecedes($1) }
        for deferred in [false, true] {
            var index = KeyIndex()
            if deferred { index.deferOrdering() }
            for (sequence, key) in keys.enumerated() {
                index.record(KeyIndex.compositeKey(namespace: ns, key: key), sequence: UInt64(sequence), deleted: false)
            }
            if deferred { index.finishOrdering() }
            var walked: [[UInt8]] = []
            index.forEachKeyInOrder { key, _ in walked.append(key) }
            #expect(walked == expected, "deferred: \(deferred)")
            // From keys that are not in the index (between two keys, maybe across a block's
            // boundary): the walk starts at the first key after them.
            for _ in 0 ..< 200 {
                let probe = KeyIndex.compositeKey(namespace: ns, key: (0 ..< 1 + random.next(below: 12)).map { _ in UInt8(random.next(below: 256)) })
                var first: [UInt8]?
                index.forEachKey(startingAt: probe) { key, _ in first = key; return false }
                #expect(first == expected.first { !$0.lexicographicallyPrecedes(probe) }, "deferred: \(deferred)")
            }
            // Keys filed after a deferred rebuild go into their blocks as usual.
            index.record(KeyIndex.compositeKey(namespace: ns, key: [0]), sequence: 99_999, deleted: false)
            var first: [UInt8]?
            index.forEachKey(startingAt: []) { key, _ in first = key; return false }
            #expect(first == KeyIndex.compositeKey(namespace: ns, key: [0]) || expected.first.map { $0.lexicographicallyPrecedes(KeyIndex.compositeKey(namespace: ns, key: [0])) } == true)
        }
    }

    /// The deferred sort reads 24 bytes after the prefix every key shares: keys that tie there,
    /// end inside it, are prefixes of one another, or hold zero bytes (the padding value) must
    /// still come out in byte order.
    @Test func keysUnderALongSharedPrefixSortInByteOrder() {
        var random = SplitMix64(seed: 11)
        let shared = Array("tenant-17/orders/2026-11-22/".utf8)
        var keys: [[UInt8]] = [shared, shared + [0], shared + [0, 0], shared + [1]]
        for _ in 0 ..< 5_000 {
            // Tails from a small alphabet so that many keys tie over the 24 bytes read ahead.
            let length = random.next(below: 40)
            keys.append(shared + (0 ..< length).map { _ in [0, 1, 255][random.next(below: 3)] })
        }
        let ns = Array("ns".utf8)
        let expected = Set(keys.map { KeyIndex.compositeKey(namespace: ns, key: $0) }).sorted { $0.lexicographicallyPrecedes($1) }
        var index = KeyIndex()
        index.deferOrdering()
        for (sequence, key) in keys.enumerated() {
            index.record(KeyIndex.compositeKey(namespace: ns, key: key), sequence: UInt64(sequence), deleted: false)
        }
        index.finishOrdering()
        var walked: [[UInt8]] = []
        index.forEachKeyInOrder { key, _ in walked.append(key) }
        #expect(walked == expected)
    }

    /// Growing the table re-homes each slot from its stored tag, without the key: after the
    /// table has doubled eleven times, every key still finds its own versions, and keys never
    /// recorded find nothing.
    @Test func everyKeyIsFoundAfterTheTableHasGrownManyTimes() {
        var index = KeyIndex()
        let ns = Array("grow".utf8)
        func composite(_ n: Int) -> [UInt8] { KeyIndex.compositeKey(namespace: ns, key: Array("key-\(n)".utf8)) }
        for n in 0 ..< 40_000 { index.record(composite(n), sequence: UInt64(n), deleted: false) }
        for n in stride(from: 0, to: 40_000, by: 3) { index.record(composite(n), sequence: UInt64(40_000 + n), deleted: n % 2 == 0) }
        #expect(index.keyCount == 40_000)
        for n in 0 ..< 40_000 {
            let expected = n % 3 == 0 ? [UInt64(n), UInt64(40_000 + n)] : [UInt64(n)]
            #expect(index.versions(of: composite(n)).map(\.sequence) == expected)
        }
        for n in 40_000 ..< 41_000 { #expect(index.latest(of: composite(n)) == nil) }
    }

    /// `get` takes the first slot whose hash tag and length match without comparing the key in
    /// the index, and confirms it from the record. These two keys in namespace "n" share the
    /// upper 32 bits of their XXH3 (the tag, whose low bits are also their home slot), found by
    /// search: each must still find only itself.
    @Test func aKeyWhoseHashTagCollidesIsNeverTakenForAnother() throws {
        let ns = Array("n".utf8), a = Array("c00269462".utf8), b = Array("c00989104".utf8)
        func hash(_ key: [UInt8]) -> UInt64 { KeyIndex.compositeKey(namespace: ns, key: key).withUnsafeBytes { XXH3_64bits($0.baseAddress, $0.count) } }
        #expect(hash(a) >> 32 == hash(b) >> 32 && hash(a) != hash(b))

        var index = KeyIndex()
        index.record(KeyIndex.compositeKey(namespace: ns, key: a), sequence: 0, deleted: false)
        let candidate = ns.withUnsafeBytes { n in b.withUnsafeBytes { index.candidate(namespace: n, key: $0, asOf: nil) } }
        guard case .unconfirmed(let version, _) = candidate else {
            Issue.record("expected the colliding key's version as an unconfirmed candidate, got \(candidate)")
            return
        }
        #expect(version.sequence == 0)
        #expect(index.latest(of: KeyIndex.compositeKey(namespace: ns, key: b)) == nil)

        try withStore { _, path in
            let store = try Store(path: path)
            defer { try? store.close() }
            try store.put(namespace: "n", key: a, value: Array("value of a".utf8))
            #expect(try store.get(namespace: "n", key: b) == nil)
            try store.put(namespace: "n", key: b, value: Array("value of b".utf8))
            #expect(try store.get(namespace: "n", key: a)?.value == Array("value of a".utf8))
            #expect(try store.get(namespace: "n", key: b)?.value == Array("value of b".utf8))
            try store.delete(namespace: "n", key: a)
            #expect(try store.get(namespace: "n", key: a) == nil)
            #expect(try store.get(namespace: "n", key: b)?.value == Array("value of b".utf8))
        }
    }
}
