/// What a channel is, as data: every guard reads these traits instead of naming channels, so
/// a new channel is a row in `DeliveryChannel.traits` (the compiler asks for it) plus its
/// provider — and a paid one is guarded because its row says paid.
public struct ChannelTraits: Sendable, Hashable {
    /// The kinds of identifier a channel can reach by itself.
    public enum Reach: Sendable, Hashable {
        case email, phone
    }

    /// The identifiers it reaches by itself.
    public var reaches: Set<Reach>
    /// It also reaches any user with a chat linked to it (the Telegram bot's `/target` link).
    public var reachesLinkedChat: Bool
    /// Each message costs money (SMS pumping): the app's `allowed_country_codes` and
    /// `sms_and_calls_per_app_per_hour` apply to it.
    public var isPaid: Bool
    /// Its path on the channel API (`POST /<path>`, `GET /<path>/check`); nil: not exposed there.
    public var channelAPIPath: String?
    /// Its message template: the key under an app's `templates.<language>` and the text used
    /// when the app sets none (`{code}`, `{app_name}`, `{ttl_minutes}` are filled in).
    public var template: Template
    /// A subject line's template, for a channel whose messages have one (email).
    public var subjectTemplate: Template?

    public struct Template: Sendable, Hashable {
        public var key: String
        public var defaultText: String
    }
}

extension DeliveryChannel {
    /// The channel table: one row per channel, built once (guards read it on every send).
    public var traits: ChannelTraits {
        switch self {
        case .email: Self.emailTraits
        case .sms: Self.smsTraits
        case .call: Self.callTraits
        case .telegram: Self.telegramTraits
        case .whatsapp: Self.whatsappTraits
        }
    }

    private static let emailTraits = ChannelTraits(
        reaches: [.email], reachesLinkedChat: false, isPaid: false, channelAPIPath: "email",
        template: .init(key: "email_text", defaultText: "Your code is {code}. It expires in {ttl_minutes} minutes."),
        subjectTemplate: .init(key: "email_subject", defaultText: "Your {app_name} code"))

    private static let smsTraits = ChannelTraits(
        reaches: [.phone], reachesLinkedChat: false, isPaid: true, channelAPIPath: "sms",
        template: .init(key: "sms", defaultText: "{code} is your {app_name} code"))

    private static let callTraits = ChannelTraits(
        reaches: [.phone], reachesLinkedChat: false, isPaid: true, channelAPIPath: "call",
        template: .init(key: "call", defaultText: "Your {app_name} code is {code}"))

    // A phone number through the Telegram Gateway (when configured), or a linked chat.
    private static let telegramTraits = ChannelTraits(
        reaches: [.phone], reachesLinkedChat: true, isPaid: false, channelAPIPath: "telegram",
        template: .init(key: "telegram", defaultText: "{code} is your {app_name} code"))

    // Meta's approved authentication template writes the text around the code: the app's
    // template is the text of the log gateway and of a webhook only.
    private static let whatsappTraits = ChannelTraits(
        reaches: [.phone], reachesLinkedChat: false, isPaid: true, channelAPIPath: "whatsapp",
        template: .init(key: "whatsapp", defaultText: "{code} is your {app_name} code"))

    /// Every template key of the table, subjects included.
    public static var templateKeys: [String] {
        allCases.flatMap { [$0.traits.subjectTemplate?.key, $0.traits.template.key].compactMap { $0 } }
    }

    /// The channels, as the error that names them lists them: "email, sms, call, telegram or whatsapp".
    public static var spelledOut: String {
        let names = allCases.map(\.rawValue)
        return names.dropLast().joined(separator: ", ") + " or " + names.last!
    }
}
