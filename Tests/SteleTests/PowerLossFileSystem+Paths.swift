/// Paths as the model names them: a directory holds what lies under it, and a renamed directory
/// moves everything under it (the namespace events are recorded by path).
extension PowerLossFileSystem {
    /// The directory holding `path` ("" for a bare name).
    static func parent(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "" }
        return String(path[..<slash])
    }

    /// Whether `path` is `directory` or under it.
    static func within(_ path: String, _ directory: String) -> Bool {
        path == directory || path.hasPrefix(directory + "/")
    }

    /// `path` once the directory `from` is called `to`: renamed if it is `from` or under it.
    static func moving(_ path: String, from: String, to: String) -> String {
        within(path, from) ? to + path.dropFirst(from.count) : path
    }
}
