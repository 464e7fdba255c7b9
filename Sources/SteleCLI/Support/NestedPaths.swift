import Foundation
import Stele

/// Refuses a mirror target or a restored store inside a store (or a store inside it): copies
/// must live beyond the store's reach, and a restore must not write into one.
func refuseInsideStore(_ path: String, store: String?, what: String) throws {
    guard !path.hasPrefix("s3://") else { return }
    if let store { try refuseNested(path, store, what, "the store") }
    var ancestor = URL(fileURLWithPath: path).standardizedFileURL.deletingLastPathComponent()
    while ancestor.path != "/" {
        if FileManager.default.fileExists(atPath: ancestor.appendingPathComponent(StoreConfig.fileName).path) {
            throw InputError(message: "\(path) is inside the store \(ancestor.path): \(what) must not be")
        }
        ancestor = ancestor.deletingLastPathComponent()
    }
}

/// Refuses `a` inside `b` or `b` inside `a` (after resolving symbolic links).
func refuseNested(_ a: String, _ b: String, _ aName: String, _ bName: String) throws {
    func resolved(_ path: String) -> String {
        // The deepest existing ancestor, resolved, and what follows it.
        var url = URL(fileURLWithPath: path).standardizedFileURL
        var rest: [String] = []
        while !FileManager.default.fileExists(atPath: url.path) && url.path != "/" {
            rest.insert(url.lastPathComponent, at: 0)
            url = url.deletingLastPathComponent()
        }
        return ([url.resolvingSymlinksInPath().path] + rest).joined(separator: "/").replacingOccurrences(of: "//", with: "/")
    }
    let (x, y) = (resolved(a) + "/", resolved(b) + "/")
    if x.hasPrefix(y) { throw InputError(message: "\(aName) (\(a)) is inside \(bName) (\(b))") }
    if y.hasPrefix(x) { throw InputError(message: "\(bName) (\(b)) is inside \(aName) (\(a))") }
}
