import Foundation

/// Bytes as JSON-ready fields: `"name":"text"` when valid UTF-8, else `"name_b64":"..."`.
func jsonBytesField(_ name: String, _ bytes: [UInt8]) -> String {
    if let text = String(validating: bytes, as: UTF8.self) {
        return "\"\(name)\":\(jsonString(text))"
    }
    return "\"\(name)_b64\":\"\(Data(bytes).base64EncodedString())\""
}

/// A JSON string literal (RFC 8259 escaping).
func jsonString(_ text: String) -> String {
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
