import Foundation

/// One `--json` output: `value` as one line of compact JSON, its property names in snake case
/// (`treeSize` as `tree_size`), the one convention of every output. Keys are sorted because
/// JSONEncoder's own order changes from run to run, and scripts compare outputs byte for byte
/// (tools/dr-drill.sh hashes `read --json` before and after a restore); `/` is not escaped, as
/// paths and namespaces read better without it.
func jsonLine(_ value: some Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    encoder.keyEncodingStrategy = .convertToSnakeCase
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

/// An optional field that is written as `null` when absent (a synthesized `Encodable` leaves a
/// nil optional out), for the fields that every object of an output has.
struct NullWhenAbsent<Wrapped: Encodable>: Encodable {
    let value: Wrapped?

    init(_ value: Wrapped?) { self.value = value }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let value { try container.encode(value) } else { try container.encodeNil() }
    }
}

/// Bytes as JSON fields: as text under the field's own name when they are valid UTF-8, else as
/// base64 under the name with `_b64` (`"key":"o-1"` or `"key_b64":"AP8="`). Exactly one is set.
struct TextOrBase64 {
    let text: String?
    let base64: String?

    init(_ bytes: [UInt8]) {
        if let text = String(validating: bytes, as: UTF8.self) {
            (self.text, base64) = (text, nil)
        } else {
            (text, base64) = (nil, Data(bytes).base64EncodedString())
        }
    }
}
