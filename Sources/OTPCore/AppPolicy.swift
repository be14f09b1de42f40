import Delivery
public import OTPCrypto

/// One app of the configuration, with what the engine derives from it once.
public struct AppPolicy: Sendable {
    public let config: Configuration.App
    let alphabet: [Character]
    /// The app's token algorithm and keys: the active one signs, every one verifies; the JWKS.
    public let tokenKeys: JWT.KeySet
    /// language → the app's templates with `{app_name}` and `{ttl_minutes}` filled in once.
    let messages: [String: Messages]

    public var id: String { config.id }

    init(_ app: Configuration.App) {
        self.config = app
        switch app.otp.alphabet {
        case .digits: alphabet = Array("0123456789")
        case .alphanumeric: alphabet = Array("23456789ABCDEFGHJKMNPQRSTUVWXYZ")
        }
        tokenKeys = JWT.KeySet(
            algorithm: app.tokens.algorithm,
            keys: app.tokens.keys.map { key in
                (key.kid, key.privateKey.map(JWT.Key.privateKey) ?? .secret(Array((key.secret ?? "").utf8)))
            },
            activeKid: app.tokens.activeKid)
        messages = Dictionary(uniqueKeysWithValues: app.templates.map { ($0.key, Messages($0.value, app: app, language: $0.key)) })
    }

    /// An access token of this app's, signed with its active key.
    func signAccessToken(_ claims: JWT.Claims) -> String {
        JWT.sign(claims, with: tokenKeys)
    }

    /// The claims of an access token of this app's. Every reader of a token (current user, the
    /// Telegram link, …) verifies through here: the app's algorithm only (no `none`, no HS256
    /// keyed with a public key), one of its keys, its audience and issuer, unexpired.
    func verifyAccessToken(_ token: String, now: Int) throws(JWT.VerificationError) -> JWT.Claims {
        try JWT.verify(token, keys: tokenKeys, audience: id, issuer: config.tokens.issuer, now: now)
    }

    /// The limits every script that judges one of this app's codes applies.
    var codeLimits: OTPStore.CodeLimits {
        OTPStore.CodeLimits(
            maxAttempts: config.otp.maxAttempts, failuresPerHour: config.limits.failedAttemptsPerIdentifierPerHour,
            sendsPerHour: config.limits.sendsPerIdentifierPerHour,
            maxConsecutiveFailures: config.limits.maxConsecutiveFailures, lockoutSeconds: config.limits.lockoutSeconds)
    }

    /// Codes as typed by a person: trimmed, and upper-cased for the alphanumeric alphabet.
    func normalize(code: String) -> String {
        let trimmed = code.trimmingASCIIWhitespace()
        return config.otp.alphabet == .alphanumeric ? trimmed.uppercased() : trimmed
    }

    /// Renders the message for `channel` in `language` (falling back to the app's default).
    /// `appName` replaces the app's name in `{app_name}` (Twilio Verify's `CustomFriendlyName`).
    func message(channel: DeliveryChannel, language: String?, code: String, appName: String? = nil) -> (subject: String?, text: String) {
        var messages = messages(language: language)
        if let appName {
            messages = Messages(
                config.templates[messages.language] ?? Configuration.Templates(), app: config, appName: appName,
                language: messages.language)
        }
        return (messages.subjects[channel]?.render(code: code), messages.texts[channel]!.render(code: code))
    }

    /// The templates of `language` (or of its first two letters), else of the app's default.
    private func messages(language: String?) -> Messages {
        if let language {
            let lowercased = language.lowercased()
            if let found = messages[lowercased] ?? messages[String(lowercased.prefix(2))] { return found }
        }
        return messages[config.defaultLanguage]
            ?? Messages(Configuration.Templates(), app: config, language: config.defaultLanguage)
    }

    /// One language's templates, split once at load: each send only joins the parts with its code.
    struct Messages: Sendable {
        /// Every channel's message, and the subject line of those that have one.
        var texts: [DeliveryChannel: MessageTemplate] = [:]
        var subjects: [DeliveryChannel: MessageTemplate] = [:]
        /// The key of these templates under the app's `templates`.
        var language: String

        init(_ templates: Configuration.Templates, app: Configuration.App, appName: String? = nil, language: String) {
            self.language = language
            let minutes = String(max(1, (app.otp.ttlSeconds + 59) / 60))
            let name = appName ?? app.name
            func compile(_ text: String) -> MessageTemplate { MessageTemplate(text, appName: name, ttlMinutes: minutes) }
            for channel in DeliveryChannel.allCases {
                texts[channel] = compile(templates.text(for: channel))
                subjects[channel] = templates.subject(for: channel).map(compile)
            }
        }
    }
}

/// A message template as the parts between its `{code}` placeholders, with `{app_name}` and
/// then `{ttl_minutes}` already replaced in each part. The same text as replacing `{code}`,
/// `{app_name}` and `{ttl_minutes}` in that order in the whole template at each send: a code
/// (digits and capital letters) can neither hold nor complete a placeholder.
struct MessageTemplate: Sendable {
    let parts: [String]

    init(_ template: String, appName: String, ttlMinutes: String) {
        parts = template.split(separator: "{code}", omittingEmptySubsequences: false).map {
            String($0).replacing("{app_name}", with: appName).replacing("{ttl_minutes}", with: ttlMinutes)
        }
    }

    func render(code: String) -> String {
        guard parts.count > 1 else { return parts.first ?? "" }
        var text = parts[0]
        for part in parts.dropFirst() {
            text += code
            text += part
        }
        return text
    }
}
