import SteleNative

/// Naming of segment files: `segments/000000000001.seg`, twelve zero-padded decimal digits.
package enum SegmentFiles {
    package static let suffix = ".seg"
    /// A segment being created; never holds data that was acknowledged.
    package static let temporarySuffix = ".seg.tmp"

    package static func name(_ index: UInt64) -> String {
        let digits = String(index)
        return String(repeating: "0", count: max(0, 12 - digits.count)) + digits + suffix
    }

    /// The index in a segment file name, or nil for any other name.
    package static func index(of name: String) -> UInt64? {
        guard name.hasSuffix(suffix), name.utf8.count == 12 + suffix.utf8.count else { return nil }
        let digits = name.dropLast(suffix.count)
        guard digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let value = UInt64(digits), value >= 1 else { return nil }
        return value
    }
}
