import ArgumentParser
import Stele

struct ScanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scan", abstract: "List a namespace's keys in byte order with their latest versions.")

    @OptionGroup var directory: StoreDirectory
    @OptionGroup var namespace: NamespaceArgument
    @Option(help: "Only keys starting with this prefix.") var prefix: String = ""
    @Option(help: "Start after this key (paging).") var after: String?
    @Option(help: "At most this many keys.") var limit: Int = 1000
    @Flag(help: "Include keys whose latest version is a tombstone.") var includeDeleted = false
    @Flag(help: "One JSON object per line.") var json = false

    func run() throws {
        try withStore(directory, .readOnly) { store in
            do {
                for version in try store.scan(namespace: namespace.name, prefix: try KeyText.parse(prefix), after: try after.map(KeyText.parse),
                                              limit: limit, includeDeleted: includeDeleted) {
                    print(try describe(version, json: json))
                }
            } catch SteleError.encryption(.shredded(let name, let at)) {
                // The versions are listed as shredded (where and when; their keys and values are
                // gone), and the command still fails: nothing of the namespace can be read.
                for version in try store.shreddedVersions(namespace: name) {
                    print("\(version.sequence)\t\(version.isTombstone ? "tombstone" : "put")\t\(rfc3339(nanoseconds: version.timestamp))\t(shredded)")
                }
                throw SteleError.encryption(.shredded(namespace: name, at: at))
            }
        }
    }
}
