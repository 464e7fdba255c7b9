import Foundation

/// Writes the `--json` outputs: an `Encodable` value as one line of compact JSON, its keys in the
/// order the value encodes them (a synthesized `Encodable`: the order of its `CodingKeys` cases,
/// or of its properties when it declares none).
///
/// Why not Foundation's `JSONEncoder`: it keeps an object's keys in a dictionary, so without
/// `.sortedKeys` their order changes from one run to the next, and with it `"seq"` would no
/// longer come first. The order of the fields is part of what scripts and tests read (`read
/// --json` starts with `{"seq":`, `prove --consistency` with `{"from":`), so it is kept. Strings
/// are escaped as RFC 8259 requires and no more (`/` stays as is); numbers are written as Swift
/// prints them, or as ``FixedDecimal`` says.
struct OrderedJSONEncoder {
    func encode<T: Encodable>(_ value: T) throws -> String {
        let root = JSONNode()
        try root.store(value, codingPath: [])
        var text = ""
        root.write(to: &text)
        return text
    }
}

/// A number written with exactly `digits` digits after the point (`%.<digits>f`), where the
/// output has always shown a fixed precision (timings, rates).
struct FixedDecimal: Encodable, JSONScalar {
    let value: Double
    let digits: Int

    init(_ value: Double, digits: Int) {
        self.value = value
        self.digits = digits
    }

    var jsonLiteral: String { String(format: "%.\(digits)f", value) }

    /// For encoders other than ``OrderedJSONEncoder``, which write the plain number.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }
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

/// A value that is written as a JSON literal of its own rather than through `encode(to:)`.
protocol JSONScalar {
    var jsonLiteral: String { get }
}

extension String: JSONScalar {
    var jsonLiteral: String { jsonString(self) }
}

extension Bool: JSONScalar {
    var jsonLiteral: String { self ? "true" : "false" }
}

extension Double: JSONScalar {
    var jsonLiteral: String { description }
}

/// Integers, in decimal.
protocol JSONInteger: JSONScalar, BinaryInteger {}

extension JSONInteger {
    var jsonLiteral: String { String(self) }
}

extension Int: JSONInteger {}
extension Int8: JSONInteger {}
extension Int16: JSONInteger {}
extension Int32: JSONInteger {}
extension Int64: JSONInteger {}
extension UInt: JSONInteger {}
extension UInt8: JSONInteger {}
extension UInt16: JSONInteger {}
extension UInt32: JSONInteger {}
extension UInt64: JSONInteger {}

/// A JSON string literal: `"`, `\` and control characters escaped (`\n`, `\r`, `\t`, else
/// `\u00XX`); everything else, `/` and non-ASCII included, as is.
private func jsonString(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20:
            let hex = String(scalar.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

/// One JSON value while it is being encoded: the containers fill it in, then it is written out.
/// A class, because a container hands out nested containers that fill in parts of it later.
private final class JSONNode {
    private enum Kind { case unset, literal, object, array }

    private var kind = Kind.unset
    private var literal = ""
    private var fields: [(key: String, node: JSONNode)] = []
    private var elements: [JSONNode] = []

    var elementCount: Int { elements.count }

    /// Stores `value`: a scalar as its literal, anything else through its own `encode(to:)`.
    /// An optional holding a scalar is cast to it; a nil one encodes `null` itself.
    func store<T: Encodable>(_ value: T, codingPath: [any CodingKey]) throws {
        if let scalar = value as? any JSONScalar {
            setLiteral(scalar.jsonLiteral)
        } else {
            try value.encode(to: NodeEncoder(node: self, codingPath: codingPath))
        }
    }

    func setLiteral(_ text: String) {
        kind = .literal
        literal = text
    }

    func becomeObject() {
        guard kind != .object else { return }
        kind = .object
        fields = []
    }

    func becomeArray() {
        guard kind != .array else { return }
        kind = .array
        elements = []
    }

    /// A new field, after those already there.
    func field(_ key: String) -> JSONNode {
        let node = JSONNode()
        fields.append((key, node))
        return node
    }

    /// A new element, after those already there.
    func element() -> JSONNode {
        let node = JSONNode()
        elements.append(node)
        return node
    }

    func write(to out: inout String) {
        switch kind {
        case .unset:
            // A value that encoded nothing: JSONEncoder writes an empty object for it too.
            out += "{}"
        case .literal:
            out += literal
        case .object:
            out += "{"
            for (index, field) in fields.enumerated() {
                if index > 0 { out += "," }
                out += jsonString(field.key) + ":"
                field.node.write(to: &out)
            }
            out += "}"
        case .array:
            out += "["
            for (index, element) in elements.enumerated() {
                if index > 0 { out += "," }
                element.write(to: &out)
            }
            out += "]"
        }
    }
}

private struct NodeEncoder: Encoder {
    let node: JSONNode
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        node.becomeObject()
        return KeyedEncodingContainer(ObjectContainer<Key>(node: node, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        node.becomeArray()
        return ArrayContainer(node: node, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        ValueContainer(node: node, codingPath: codingPath)
    }
}

/// The index of an array element, for coding paths.
private struct ElementIndex: CodingKey {
    let intValue: Int?
    var stringValue: String { intValue.map(String.init) ?? "" }
    init(_ index: Int) { intValue = index }
    init?(stringValue: String) { nil }
    init?(intValue: Int) { self.intValue = intValue }
}

// The containers store every primitive the way they store any value: `JSONNode.store` tells the
// scalars apart.

private struct ObjectContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let node: JSONNode
    let codingPath: [any CodingKey]

    mutating func encodeNil(forKey key: Key) throws { node.field(key.stringValue).setLiteral("null") }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws { try store(value, key) }
    mutating func encode(_ value: Bool, forKey key: Key) throws { try store(value, key) }
    mutating func encode(_ value: String, forKey key: Key) throws { try store(value, key) }
    mutating func encode(_ value: Double, forKey key: Key) throws { try store(value, key) }
    mutating func encode(_ value: Float, forKey key: Key) throws { try store(Double(value), key) }
    mutating func encode(_ value: Int, forKey key: Key) throws { try store(value, key) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { try store(value, key) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { try store(value, key) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { try store(value, key) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { try store(value, key) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { try store(value, key) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { try store(value, key) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { try store(value, key) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { try store(value, key) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { try store(value, key) }

    private func store<T: Encodable>(_ value: T, _ key: Key) throws {
        try node.field(key.stringValue).store(value, codingPath: codingPath + [key])
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        NodeEncoder(node: node.field(key.stringValue), codingPath: codingPath + [key]).container(keyedBy: keyType)
    }
    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        NodeEncoder(node: node.field(key.stringValue), codingPath: codingPath + [key]).unkeyedContainer()
    }
    mutating func superEncoder() -> any Encoder { NodeEncoder(node: node.field("super"), codingPath: codingPath) }
    mutating func superEncoder(forKey key: Key) -> any Encoder {
        NodeEncoder(node: node.field(key.stringValue), codingPath: codingPath + [key])
    }
}

private struct ArrayContainer: UnkeyedEncodingContainer {
    let node: JSONNode
    let codingPath: [any CodingKey]
    var count: Int { node.elementCount }

    private func nextPath() -> [any CodingKey] { codingPath + [ElementIndex(count)] }

    mutating func encodeNil() throws { node.element().setLiteral("null") }
    mutating func encode<T: Encodable>(_ value: T) throws { try append(value) }
    mutating func encode(_ value: Bool) throws { try append(value) }
    mutating func encode(_ value: String) throws { try append(value) }
    mutating func encode(_ value: Double) throws { try append(value) }
    mutating func encode(_ value: Float) throws { try append(Double(value)) }
    mutating func encode(_ value: Int) throws { try append(value) }
    mutating func encode(_ value: Int8) throws { try append(value) }
    mutating func encode(_ value: Int16) throws { try append(value) }
    mutating func encode(_ value: Int32) throws { try append(value) }
    mutating func encode(_ value: Int64) throws { try append(value) }
    mutating func encode(_ value: UInt) throws { try append(value) }
    mutating func encode(_ value: UInt8) throws { try append(value) }
    mutating func encode(_ value: UInt16) throws { try append(value) }
    mutating func encode(_ value: UInt32) throws { try append(value) }
    mutating func encode(_ value: UInt64) throws { try append(value) }

    private func append<T: Encodable>(_ value: T) throws {
        let path = nextPath()
        try node.element().store(value, codingPath: path)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let path = nextPath()
        return NodeEncoder(node: node.element(), codingPath: path).container(keyedBy: keyType)
    }
    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let path = nextPath()
        return NodeEncoder(node: node.element(), codingPath: path).unkeyedContainer()
    }
    mutating func superEncoder() -> any Encoder {
        let path = nextPath()
        return NodeEncoder(node: node.element(), codingPath: path)
    }
}

private struct ValueContainer: SingleValueEncodingContainer {
    let node: JSONNode
    let codingPath: [any CodingKey]

    mutating func encodeNil() throws { node.setLiteral("null") }
    mutating func encode<T: Encodable>(_ value: T) throws { try node.store(value, codingPath: codingPath) }
    mutating func encode(_ value: Bool) throws { try node.store(value, codingPath: codingPath) }
    mutating func encode(_ value: String) throws { try node.store(value, codingPath: codingPath) }
    mutating func encode(_ value: Double) throws { try node.store(value, codingPath: codingPath) }
    mutating func encode(_ value: Float) throws { try node.store(Double(value), codingPath: codingPath) }
    mutating func encode(_ value: Int) throws { try node.store(value, codingPath: codingPath) }
    mutating func encode(_ value: Int8) throws { try node.store(value, codingPath: codingPath) }
    mutating func encode(_ value: Int16) throws { try node.store(value, codingPath: codingPath) }
    mutating func encode(_ value: Int32) throws { try node.store(value, codingPath: codingPath) }
    mutating func encode(_ value: Int64) throws { try node.store(value, codingPath: codingPath) }
    mutating func encode(_ value: UInt) throws { try node.store(value, codingPath: codingPath) }
    mutating func encode(_ value: UInt8) throws { try node.store(value, codingPath: codingPath) }
    mutating func encode(_ value: UInt16) throws { try node.store(value, codingPath: codingPath) }
    mutating func encode(_ value: UInt32) throws { try node.store(value, codingPath: codingPath) }
    mutating func encode(_ value: UInt64) throws { try node.store(value, codingPath: codingPath) }
}
