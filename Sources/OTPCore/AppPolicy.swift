import Delivery
import OTPCrypto

/// One app of the configuration, with what the engine derives from it once.
public struct AppPolicy: Sendable {
    public let config: Configuration.App
    let alphabet: [Character]
    /// kid → secret
    let verificationKeys: [String: [UInt8]]
    let signingKey: (kid: String, secret: [UInt8])

    public var id: String { config.id }

    init(_ app: Configuration.App) {
        self.config = app
        switch app.otp.alphabet {
        case .digits: alphabet = Array("0123456789")
        case .alphanumeric: alphabet = Array("23456789ABCDEFGHJKMNPQRSTUVWXYZ")
        }
        verificationKeys = Dictionary(app.tokens.keys.map { ($0.kid, Array($0.secret.utf8)) }, uniquingKeysWith: { a, _ in a })
        signingKey = (app.tokens.activeKid, verificationKeys[app.tokens.activeKid] ?? [])
    }

    /// Codes as typed by a person: trimmed, and upper-cased for the alphanumeric alphabet.
    func normalize(code: String) -> String {
        let trimmed = code.trimmingASCIIWhitespace()
        return config.otp.alphabet == .alphanumeric ? trimmed.uppercased() : trimmed
    }

    /// Renders the message for `channel` in `language` (falling back to the app's default).
    func message(channel: DeliveryChannel, language: String?, code: String) -> (subject: String?, text: String) {
        let templates =
            language.flatMap { config.templates[$0.lowercased()] ?? config.templates[String($0.lowercased().prefix(2))] }
            ?? config.templates[config.defaultLanguage] ?? Configuration.Templates()
        let minutes = max(1, (config.otp.ttlSeconds + 59) / 60)
        func fill(_ template: String) -> String {
            template.replacing("{code}", with: code).replacing("{app_name}", with: config.name)
                .replacing("{ttl_minutes}", with: String(minutes))
        }
        switch channel {
        case .email: return (fill(templates.emailSubject), fill(templates.emailText))
        case .sms: return (nil, fill(templates.sms))
        case .call: return (nil, fill(templates.call))
        case .telegram: return (nil, fill(templates.telegram))
        }
    }
}
