/// Strict decoding for the configuration: an unknown key is an error that names it, so a typo
/// (`ttl_second:`) stops startup instead of silently falling back to a default.
struct AnyCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue }
    init(intValue: Int) {
        self.stringValue = String(intValue)
        self.intValue = intValue
    }
}

extension Decoder {
    /// Throws when the mapping at this level holds a key that `Keys` does not list.
    func rejectUnknownKeys<Keys: CodingKey & CaseIterable>(_: Keys.Type) throws {
        try rejectUnknownKeys(known: Keys.allCases.map(\.stringValue))
    }

    /// The same, for keys that are data (the channel table's), not a `CodingKey` enum.
    func rejectUnknownKeys(known keys: [String]) throws {
        let container = try self.container(keyedBy: AnyCodingKey.self)
        let known = Set(keys)
        for key in container.allKeys where !known.contains(key.stringValue) {
            let expected = keys.joined(separator: ", ")
            throw DecodingError.dataCorrupted(
                .init(codingPath: codingPath + [key], debugDescription: "unknown key (expected one of: \(expected))"))
        }
    }
}

extension KeyedDecodingContainer {
    func value<T: Decodable>(_ key: Key, default value: @autoclosure () -> T) throws -> T {
        try decodeIfPresent(T.self, forKey: key) ?? value()
    }

    /// A string that must be present (else `keyNotFound`: "is required") and not empty, as a
    /// `${VAR:-}` left unset would make it.
    func nonEmptyString(_ key: Key) throws -> String {
        let value = try decode(String.self, forKey: key)
        guard !value.isEmpty else {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: self, debugDescription: "is empty (set it, or the environment variable it names)")
        }
        return value
    }
}

/// A configuration problem, with the dotted path of the key it concerns.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public var key: String
    public var message: String

    public init(key: String, _ message: String) {
        self.key = key
        self.message = message
    }

    public var description: String { key.isEmpty ? message : "\(key): \(message)" }

    /// Turns a decoding failure into a message naming the key, such as
    /// `apps[0].otp.length: expected an integer`.
    public init(_ error: DecodingError) {
        switch error {
        case .keyNotFound(let key, let context):
            self.init(key: DecodingPath.describe(context.codingPath + [key]), "is required")
        case .typeMismatch(let type, let context):
            self.init(key: DecodingPath.describe(context.codingPath), "expected \(DecodingPath.describe(type))")
        case .valueNotFound(let type, let context):
            self.init(key: DecodingPath.describe(context.codingPath), "expected \(DecodingPath.describe(type)), found nothing")
        case .dataCorrupted(let context):
            self.init(key: DecodingPath.describe(context.codingPath), context.debugDescription)
        @unknown default:
            self.init(key: "", "\(error)")
        }
    }
}

/// How decoding errors name where they happened and what was expected — one wording for the
/// configuration file and for request bodies.
public enum DecodingPath {
    /// `apps[0].otp.length`
    public static func describe(_ codingPath: [any CodingKey]) -> String {
        var text = ""
        for key in codingPath {
            if let index = key.intValue { text += "[\(index)]" } else {
                text += text.isEmpty ? key.stringValue : ".\(key.stringValue)"
            }
        }
        return text
    }

    /// "a string", "an integer", …
    public static func describe(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type, is Int64.Type, is UInt16.Type: return "an integer"
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        case is Double.Type: return "a number"
        default: return "\(type)".hasPrefix("Array") ? "a list" : "an object"
        }
    }
}

/// A section of the configuration whose every key may be left out: its defaults are what
/// `init()` sets, and `keys` says which key fills which property, in one line each. Decoding
/// is strict (an unknown key is an error naming the keys there are) and needs no hand-written
/// decoder: a new key is one line in `keys`.
protocol DefaultedSection: Decodable {
    init()
    static var keys: [SectionKey<Self>] { get }
}

/// One key of a `DefaultedSection`: its name in the file and the property it fills.
struct SectionKey<Section> {
    let name: String
    let read: (inout Section, KeyedDecodingContainer<AnyCodingKey>) throws -> Void

    init<Value: Decodable>(_ name: String, _ property: WritableKeyPath<Section, Value>) {
        self.name = name
        read = { section, container in
            if let value = try container.decodeIfPresent(Value.self, forKey: AnyCodingKey(stringValue: name)) {
                section[keyPath: property] = value
            }
        }
    }
}

extension DefaultedSection {
    /// The defaults, then each key the file gives; a key `keys` does not list is an error.
    init(decoding decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(known: Self.keys.map(\.name))
        let container = try decoder.container(keyedBy: AnyCodingKey.self)
        self.init()
        for key in Self.keys { try key.read(&self, container) }
    }
}
