import Foundation
import Synchronization
@testable import Stele
import SteleNative

/// What a power cut at this moment could leave on disk: one image drawn from the model.
extension PowerLossFileSystem {

    /// One state a power cut now could leave (see the type's comment); `random` makes the choices.
    func crashImage(_ random: inout SplitMix64) throws -> CrashImage {
        let state = model.withLock { $0 }
        if let gap = state.gaps.first { throw SteleError.io(IOError(operation: "power-loss model: \(gap)", path: root, errno: 0)) }
        var files = state.baseFiles
        var directories = state.baseDirectories
        let pending = state.changes.indices.filter { !state.changes[$0].durable }
        let keptPending = Set(pending.prefix(random.next(below: pending.count + 1)))
        for (i, entry) in state.changes.enumerated() where entry.durable || keptPending.contains(i) {
            switch entry.change {
            case .create(let path, let inode): files[path] = inode
            case .makeDirectory(let path): directories.insert(path)
            case .rename(let from, let to):
                guard let inode = files.removeValue(forKey: from) else { continue }
                files[to] = inode
            case .renameDirectory(let from, let to):
                guard directories.contains(from) else { continue }
                // An empty directory at `to` is replaced (rename(2) refuses a full one).
                directories = Set(directories.filter { !Self.within($0, to) }.map { Self.moving($0, from: from, to: to) })
                var moved: [String: Int] = [:]
                for (path, inode) in files where !Self.within(path, to) { moved[Self.moving(path, from: from, to: to)] = inode }
                files = moved
            case .remove(let path):
                files.removeValue(forKey: path)
                directories.remove(path)
            }
        }
        // A directory whose removal is in the image takes along what the image still has in it.
        directories = directories.filter { directory in
            var above = Self.parent(directory)
            while !above.isEmpty {
                if !directories.contains(above) { return false }
                above = Self.parent(above)
            }
            return true
        }
        var image = CrashImage(directories: directories.filter { !$0.isEmpty }.sorted(), files: [:])
        for (path, inode) in files where directories.contains(Self.parent(path)) {
            let node = state.inodes[inode]
            var permissions = node.lastPermissions
            var current = node.lastKnown ?? node.durable
            if let live = node.path, let status = try real.status(live) {
                current = try readFile(live)
                permissions = status.permissions
            }
            // The store being made may have reached the page cache only in part when the page
            // was written back: keep a prefix of it, to an aligned word.
            if let store = state.storeInProgress, store.inode == inode, random.next(below: 2) == 0,
               store.range.upperBound <= current.count {
                let cuts = stride(from: (store.range.lowerBound + 7) / 8 * 8, through: store.range.upperBound, by: 8).map { $0 }
                if !cuts.isEmpty {
                    let cut = cuts[random.next(below: cuts.count)]
                    for i in cut ..< store.range.upperBound { current[i] = store.old[i - store.range.lowerBound] }
                }
            }
            image.files[path] = (Self.mix(durable: node.durable, current: current, &random), permissions)
        }
        return image
    }

    /// Byte-for-byte equality in one `memcmp`.
    private static func same(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        a.count == b.count && a.withUnsafeBytes { a in
            b.withUnsafeBytes { b in
                guard let x = a.baseAddress, let y = b.baseAddress else { return true }  // both empty
                return memcmp(x, y, a.count) == 0
            }
        }
    }

    /// Durable bytes, with every page that differs in `current` lost, kept or torn per sector.
    private static func mix(durable: [UInt8], current: [UInt8], _ random: inout SplitMix64) -> [UInt8] {
        let length = current.count == durable.count || random.next(below: 2) == 0 ? current.count : durable.count
        let zerosPastDurable = random.next(below: 4) == 0
        // Nothing written since the last sync: the durable bytes, which the loop below would copy
        // one by one without drawing again (slow in a debug build, and most files are synced).
        if Self.same(durable, current) { return durable }
        var out = [UInt8](repeating: 0, count: length)
        func old(_ i: Int) -> UInt8 { i < durable.count ? durable[i] : 0 }
        func new(_ i: Int) -> UInt8 { i < current.count && !(zerosPastDurable && i >= durable.count) ? current[i] : 0 }
        var page = 0
        while page < length {
            let end = min(page + 4096, length)
            let differs = (page ..< end).contains { old($0) != new($0) }
            let choice = differs ? random.next(below: 3) : 0
            var sector = page
            while sector < end {
                let sectorEnd = min(sector + 512, end)
                let takeNew = choice == 1 || (choice == 2 && random.next(below: 2) == 0)
                for i in sector ..< sectorEnd { out[i] = takeNew ? new(i) : old(i) }
                sector = sectorEnd
            }
            page = end
        }
        return out
    }
}
