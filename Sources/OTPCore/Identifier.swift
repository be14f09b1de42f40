public import Delivery
import Foundation

/// A normalized user identifier: an email address or an E.164 phone number.
public enum Identifier: Sendable, Hashable, CustomStringConvertible {
    case email(String)
    case phone(String)

    /// Parses and normalizes. Emails are trimmed, NFKC-normalised and lower-cased, must have
    /// exactly one `@`, respect RFC 5321 lengths (local part ≤ 64, domain ≤ 255, whole ≤ 254)
    /// and hold no whitespace, control, format or invisible character anywhere. Phones are `+`
    /// and 8–15 digits, with spaces, dashes, dots and parentheses accepted between the digits
    /// and removed (`allowBareDigits`: the digits without `+`, as the channel API accepts).
    /// Nil for anything else.
    public init?(_ raw: String, allowBareDigits: Bool = false) {
        let trimmed = raw.trimmingASCIIWhitespace()
        if trimmed.contains("@") || trimmed.contains("＠") {
            guard let email = Self.email(trimmed) else { return nil }
            self = .email(email)
            return
        }
        guard let phone = Self.phone(trimmed, allowBareDigits: allowBareDigits) else { return nil }
        self = .phone(phone)
    }

    static func email(_ text: String) -> String? {
        let email = text.precomposedStringWithCompatibilityMapping.lowercased()
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty,
            parts[0].utf8.count <= 64, parts[1].utf8.count <= 255, email.utf8.count <= 254,
            email.unicodeScalars.allSatisfy(isVisible),
            !parts[1].hasPrefix("."), !parts[1].hasSuffix("."), !parts[1].contains(".."),
            !parts[0].hasPrefix("."), !parts[0].hasSuffix(".")
        else { return nil }
        return email
    }

    /// A character a person can see and type: no whitespace, control, format (zero-width,
    /// bidirectional overrides, soft hyphen), private-use, unassigned or default-ignorable one.
    static func isVisible(_ scalar: Unicode.Scalar) -> Bool {
        let properties = scalar.properties
        switch properties.generalCategory {
        case .control, .format, .spaceSeparator, .lineSeparator, .paragraphSeparator, .privateUse, .unassigned, .surrogate:
            return false
        default:
            return !properties.isDefaultIgnorableCodePoint && !properties.isWhitespace
        }
    }

    static func phone(_ text: String, allowBareDigits: Bool) -> String? {
        var rest = Substring(text)
        if rest.hasPrefix("+") {
            rest = rest.dropFirst()
        } else if !allowBareDigits {
            return nil
        }
        guard let first = rest.first, first.isASCII, first.isNumber, let last = rest.last, last.isASCII, last.isNumber else {
            return nil
        }
        let digits = rest.filter { !" -.()".contains($0) }
        guard (8...15).contains(digits.count), digits.allSatisfy({ $0.isASCII && $0.isNumber }), digits.first != "0" else {
            return nil
        }
        return "+" + digits
    }

    public var value: String {
        switch self {
        case .email(let value), .phone(let value): return value
        }
    }

    /// The user field that holds it.
    public var field: String {
        switch self {
        case .email: return "email"
        case .phone: return "phone"
        }
    }

    public var defaultChannel: DeliveryChannel {
        switch self {
        case .email: return .email
        case .phone: return .sms
        }
    }

    /// Whether `channel` can reach this identifier: by its kind, or through a linked chat (the
    /// channel table says which; whether a chat is linked is the send script's to answer).
    public func canUse(_ channel: DeliveryChannel) -> Bool {
        let traits = channel.traits
        return traits.reachesLinkedChat || traits.reaches.contains(reach)
    }

    /// The kind of identifier, as the channel table names it.
    public var reach: ChannelTraits.Reach {
        switch self {
        case .email: return .email
        case .phone: return .phone
        }
    }

    public var description: String { value }
}

extension StringProtocol {
    /// Without leading and trailing spaces, tabs, CR and LF.
    public func trimmingASCIIWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[start...end])
    }
}
