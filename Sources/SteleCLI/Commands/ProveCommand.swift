import ArgumentParser
import Stele

struct ProveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prove",
        abstract: "Print an inclusion proof (--index) or a consistency proof (--consistency).",
        discussion: """
        Proofs follow RFC 9162 and are checked against the records before they are printed. \
        JSON: {"index","tree_size","root","proof":[...]} or {"from","to","proof":[...]}, hashes in lowercase hex.
        """)

    @OptionGroup var directory: StoreDirectory

    @Option(help: "Leaf index (record sequence number) to prove.")
    var index: UInt64?

    @Option(help: "Tree size for the inclusion proof (default: the whole log).")
    var treeSize: UInt64?

    @Option(help: "Old tree size for a consistency proof.")
    var consistency: UInt64?

    @Option(help: "New tree size for the consistency proof (default: the whole log).")
    var to: UInt64?

    @Flag(help: "Print JSON.")
    var json = false

    func validate() throws {
        guard (index == nil) != (consistency == nil) else { throw ValidationError("give exactly one of --index and --consistency") }
    }

    func run() throws {
        try withStore(directory, .readOnly) { store in
            if let index {
                let proof = try store.inclusionProof(index: index, treeSize: treeSize)
                if json {
                    print(try jsonLine(InclusionProofJSON(proof)))
                } else {
                    print("inclusion of leaf \(proof.index) in tree size \(proof.treeSize), root \(proof.root.hex)")
                    for hash in proof.hashes { print(hash.hex) }
                }
            } else if let consistency {
                let proof = try store.consistencyProof(from: consistency, to: to)
                if json {
                    print(try jsonLine(ConsistencyProofJSON(proof)))
                } else {
                    print("consistency from size \(proof.from) (root \(proof.oldRoot.hex)) to size \(proof.to) (root \(proof.newRoot.hex))")
                    for hash in proof.hashes { print(hash.hex) }
                }
            }
        }
    }
}

/// `{"index","tree_size","root","proof":[...]}`, hashes in lowercase hex, as the help says.
private struct InclusionProofJSON: Encodable {
    let index: UInt64
    let treeSize: UInt64
    let root: String
    let proof: [String]


    init(_ proof: InclusionProof) {
        (index, treeSize, root, self.proof) = (proof.index, proof.treeSize, proof.root.hex, proof.hashes.map(\.hex))
    }
}

/// `{"from","to","proof":[...]}`, hashes in lowercase hex, as the help says.
private struct ConsistencyProofJSON: Encodable {
    let from: UInt64
    let to: UInt64
    let proof: [String]

    init(_ proof: ConsistencyProof) {
        (from, to, self.proof) = (proof.from, proof.to, proof.hashes.map(\.hex))
    }
}
