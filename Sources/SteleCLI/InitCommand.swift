import ArgumentParser
import Stele

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a new, empty store.",
        discussion: "DIR must not exist or be empty. Creates segments/, tiles/, checkpoints/, index/, LOCK, stele.conf and the first segment.")

    @Argument(help: "The store directory.")
    var dir: String

    @Option(help: "Bytes per segment file (a multiple of 4096, at least 65536).")
    var segmentSize: Int = Limits.defaultSegmentSize

    @Option(help: "Log identity for signed checkpoints (default stele.local/<store uuid>).")
    var origin: String?

    func run() throws {
        let config = try Store.create(at: dir, segmentSize: segmentSize, origin: origin)
        print("created store \(config.storeIDHex) at \(dir) (segment size \(config.segmentSize), origin \(config.origin))")
    }
}
