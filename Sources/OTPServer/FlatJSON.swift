/// A request body made of string fields, which `decodeJSON` reads without `JSONDecoder` when the
/// body is plain: one JSON object whose values are all strings of printable ASCII without
/// escapes, each key once (`FlatJSON.fields`). Anything else — another value type, an escape,
/// a non-ASCII byte, a repeated key, a missing required field — goes through `JSONDecoder`,
/// which gives the same values for a plain body and the exact error for any other.
protocol FlatJSONBody: Decodable {
    /// The body from its fields (unknown keys ignored, as `JSONDecoder` ignores them); nil when
    /// a required one is missing.
    init?(fields: FlatJSON)
}

/// The fields of a plain, flat JSON object: key → value, both as written.
///
/// Parsing costs time linear in the body's size: each key is looked up once in a hash table
/// (Swift's hashing is seeded per process, so keys chosen to collide cannot be precomputed),
/// never compared with every key before it.
struct FlatJSON {
    private var fields: [ArraySlice<UInt8>: ArraySlice<UInt8>] = [:]
    /// How many key lookups parsing made, each O(1) (tests: the cost must grow linearly with
    /// the body, not with the square of its keys).
    private(set) var keyComparisons = 0

    subscript(_ key: StaticString) -> String? {
        let wanted = UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount)
        return fields[ArraySlice(wanted)].map { String(decoding: $0, as: UTF8.self) }
    }

    /// Parses `bytes`; nil unless they are one plain flat object (see `FlatJSONBody`).
    init?(_ bytes: [UInt8]) {
        var index = bytes.startIndex
        func skipWhitespace() {
            while index < bytes.endIndex, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09 {
                index += 1
            }
        }
        /// A string without escapes or bytes outside printable ASCII, after its opening quote.
        func string() -> ArraySlice<UInt8>? {
            guard index < bytes.endIndex, bytes[index] == UInt8(ascii: "\"") else { return nil }
            index += 1
            let start = index
            while index < bytes.endIndex {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    index += 1
                    return bytes[start..<(index - 1)]
                }
                guard byte >= 0x20, byte < 0x7F, byte != UInt8(ascii: "\\") else { return nil }
                index += 1
            }
            return nil
        }
        skipWhitespace()
        guard index < bytes.endIndex, bytes[index] == UInt8(ascii: "{") else { return nil }
        index += 1
        skipWhitespace()
        if index < bytes.endIndex, bytes[index] == UInt8(ascii: "}") {
            index += 1
        } else {
            while true {
                skipWhitespace()
                guard let key = string() else { return nil }
                skipWhitespace()
                guard index < bytes.endIndex, bytes[index] == UInt8(ascii: ":") else { return nil }
                index += 1
                skipWhitespace()
                guard let value = string() else { return nil }
                keyComparisons += 1
                guard fields.updateValue(value, forKey: key) == nil else { return nil }
                skipWhitespace()
                guard index < bytes.endIndex else { return nil }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                guard bytes[index] == UInt8(ascii: "}") else { return nil }
                index += 1
                break
            }
        }
        skipWhitespace()
        guard index == bytes.endIndex else { return nil }
    }
}
