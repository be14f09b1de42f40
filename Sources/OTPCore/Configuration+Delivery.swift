public import Delivery

/// `delivery`: the gateway of each channel, the Telegram Gateway, and what every gateway shares.
extension Configuration {
    // MARK: delivery

    public struct Delivery: Sendable, Decodable {
        /// The gateway of each channel, under `delivery.<channel>`: the keys come from the
        /// channel table (`DeliveryChannel`), so a new channel needs no key of its own here.
        public var gateways: [DeliveryChannel: Gateway] = [:]
        /// Telegram's Gateway API: the telegram channel to phone numbers with no linked chat.
        public var telegramGateway: TelegramGateway?
        public var timeoutMilliseconds = 5000
        public var retries = 2

        public var sms: Gateway? { gateways[.sms] }
        public var telegram: Gateway? { gateways[.telegram] }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case retries
            case telegramGateway = "telegram_gateway"
            case timeoutMilliseconds = "timeout_ms"
        }

        init() {}

        public init(from decoder: any Decoder) throws {
            let channelKeys = DeliveryChannel.allCases.map(\.rawValue)
            try decoder.rejectUnknownKeys(known: channelKeys + CodingKeys.allCases.map(\.stringValue))
            let gateways = try decoder.container(keyedBy: AnyCodingKey.self)
            for channel in DeliveryChannel.allCases {
                self.gateways[channel] = try gateways.decodeIfPresent(Gateway.self, forKey: AnyCodingKey(stringValue: channel.rawValue))
            }
            let c = try decoder.container(keyedBy: CodingKeys.self)
            telegramGateway = try c.decodeIfPresent(TelegramGateway.self, forKey: .telegramGateway)
            timeoutMilliseconds = try c.value(.timeoutMilliseconds, default: timeoutMilliseconds)
            retries = try c.value(.retries, default: retries)
        }

        public func gateway(for channel: DeliveryChannel) -> Gateway? { gateways[channel] }
    }

    /// `delivery.telegram_gateway`: codes to phone numbers through Telegram's Gateway API.
    public struct TelegramGateway: Sendable, Decodable {
        public static let defaultBaseURL = "https://gatewayapi.telegram.org"
        public var baseURL: String
        /// The Gateway API token (Bearer); also the key of its delivery reports' signatures.
        public var token: String
        /// Where Telegram posts delivery reports (`…/telegram/gateway/callback`); empty: none.
        public var callbackURL: String
        /// A verified channel to send from; empty: Telegram's own.
        public var senderUsername: String

        enum CodingKeys: String, CodingKey, CaseIterable {
            case token
            case baseURL = "base_url"
            case callbackURL = "callback_url"
            case senderUsername = "sender_username"
        }

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            baseURL = try c.value(.baseURL, default: Self.defaultBaseURL)
            token = try c.nonEmptyString(.token)
            callbackURL = try c.value(.callbackURL, default: "")
            senderUsername = try c.value(.senderUsername, default: "")
        }
    }

    /// One channel's gateway: a provider and exactly the keys that provider takes.
    ///
    /// Decoding reads `provider`, then that provider's own type with strict keys: a key of
    /// another provider is an error naming it, a missing required key is `is required`, and
    /// a required key left empty is `is empty`. Defaults live in the provider's type.
    public enum Gateway: Sendable, Decodable {
        /// SMS and voice calls through Twilio's REST API.
        case twilio(Twilio)
        /// Email through an SMTP server.
        case smtp(SMTP)
        /// The Telegram Bot API's sendMessage.
        case telegram(Telegram)
        /// Any channel, as a signed JSON POST to an endpoint of your own.
        case webhook(Webhook)
        /// WhatsApp codes through the WhatsApp Business Cloud API (an authentication template).
        case whatsappCloud(WhatsAppCloud)
        /// Development only: the message, code included, goes to the log.
        case log

        public enum Provider: String, Sendable, Decodable {
            case twilio, smtp, telegram, webhook, log
            case whatsappCloud = "whatsapp_cloud"
        }

        public var provider: Provider {
            switch self {
            case .twilio: .twilio
            case .smtp: .smtp
            case .telegram: .telegram
            case .webhook: .webhook
            case .whatsappCloud: .whatsappCloud
            case .log: .log
            }
        }

        private enum ProviderKey: String, CodingKey { case provider }
        private enum LogKeys: String, CodingKey, CaseIterable { case provider }

        public init(from decoder: any Decoder) throws {
            switch try decoder.container(keyedBy: ProviderKey.self).decode(Provider.self, forKey: .provider) {
            case .twilio: self = .twilio(try Twilio(from: decoder))
            case .smtp: self = .smtp(try SMTP(from: decoder))
            case .telegram: self = .telegram(try Telegram(from: decoder))
            case .webhook: self = .webhook(try Webhook(from: decoder))
            case .whatsappCloud: self = .whatsappCloud(try WhatsAppCloud(from: decoder))
            case .log:
                try decoder.rejectUnknownKeys(LogKeys.self)
                self = .log
            }
        }

        public struct Twilio: Sendable, Decodable {
            public static let defaultBaseURL = "https://api.twilio.com"
            public var baseURL: String
            public var accountSID: String
            public var authToken: String
            /// A Twilio number (or, for SMS, a Messaging Service's sender).
            public var from: String

            enum CodingKeys: String, CodingKey, CaseIterable {
                case provider, from
                case baseURL = "base_url"
                case accountSID = "account_sid"
                case authToken = "auth_token"
            }

            public init(from decoder: any Decoder) throws {
                try decoder.rejectUnknownKeys(CodingKeys.self)
                let c = try decoder.container(keyedBy: CodingKeys.self)
                baseURL = try c.value(.baseURL, default: Self.defaultBaseURL)
                accountSID = try c.nonEmptyString(.accountSID)
                authToken = try c.nonEmptyString(.authToken)
                from = try c.nonEmptyString(.from)
            }
        }

        public struct SMTP: Sendable, Decodable {
            /// Whether the connection must be encrypted.
            public enum TLS: String, Sendable, Decodable {
                /// `smtps://`, or STARTTLS on `smtp://`: a server that does not offer it is refused.
                case required
                /// Plain text (development only: a local test server).
                case none
            }
            /// `smtp://host:port` (STARTTLS required) or `smtps://host:port`.
            public var smtpURL: String
            public var tls: TLS
            /// The envelope sender and the `From` header.
            public var from: String
            /// Absent or empty for a relay that needs no authentication.
            public var username: String?
            public var password: String?

            enum CodingKeys: String, CodingKey, CaseIterable {
                case provider, from, username, password, tls
                case smtpURL = "smtp_url"
            }

            public init(from decoder: any Decoder) throws {
                try decoder.rejectUnknownKeys(CodingKeys.self)
                let c = try decoder.container(keyedBy: CodingKeys.self)
                smtpURL = try c.nonEmptyString(.smtpURL)
                tls = try c.value(.tls, default: .required)
                from = try c.nonEmptyString(.from)
                username = try c.decodeIfPresent(String.self, forKey: .username)
                password = try c.decodeIfPresent(String.self, forKey: .password)
            }
        }

        public struct Telegram: Sendable, Decodable {
            public static let defaultAPIBaseURL = "https://api.telegram.org"
            public var apiBaseURL: String
            public var botToken: String
            /// Telegram sends it in `X-Telegram-Bot-Api-Secret-Token` with every update to
            /// `POST /telegram/webhook` (`otpd telegram set-webhook` registers it); required in
            /// production.
            public var webhookSecret: String?
            /// Seconds a code the bot hands out stays valid (default 300).
            public var codeLifetime: Int?
            /// Codes one chat gets per hour at most (default 10); beyond it the bot stays silent.
            public var codesPerChatPerHour: Int

            enum CodingKeys: String, CodingKey, CaseIterable {
                case provider
                case apiBaseURL = "api_base_url"
                case botToken = "bot_token"
                case webhookSecret = "webhook_secret"
                case codeLifetime = "code_lifetime"
                case codesPerChatPerHour = "codes_per_chat_per_hour"
            }

            public init(from decoder: any Decoder) throws {
                try decoder.rejectUnknownKeys(CodingKeys.self)
                let c = try decoder.container(keyedBy: CodingKeys.self)
                apiBaseURL = try c.value(.apiBaseURL, default: Self.defaultAPIBaseURL)
                botToken = try c.nonEmptyString(.botToken)
                webhookSecret = try c.decodeIfPresent(String.self, forKey: .webhookSecret)
                codeLifetime = try c.decodeIfPresent(Int.self, forKey: .codeLifetime)
                codesPerChatPerHour = try c.value(.codesPerChatPerHour, default: 10)
            }
        }

        public struct Webhook: Sendable, Decodable {
            public var url: String
            /// The HMAC-SHA256 key that signs each body.
            public var secret: String

            enum CodingKeys: String, CodingKey, CaseIterable { case provider, url, secret }

            public init(from decoder: any Decoder) throws {
                try decoder.rejectUnknownKeys(CodingKeys.self)
                let c = try decoder.container(keyedBy: CodingKeys.self)
                url = try c.nonEmptyString(.url)
                secret = try c.nonEmptyString(.secret)
            }
        }

        public struct WhatsAppCloud: Sendable, Decodable {
            public static let defaultBaseURL = "https://graph.facebook.com"
            public var baseURL: String
            public var apiVersion: String
            public var phoneNumberID: String
            /// A system user's access token (Bearer).
            public var accessToken: String
            /// The approved authentication template's name.
            public var template: String
            /// An app language → the template's language code (`en: en_US`).
            public var languages: [String: String]
            /// Signs the status webhook's bodies (`X-Hub-Signature-256`); required in production.
            public var appSecret: String?
            /// Meta's subscription check of the webhook; required in production.
            public var verifyToken: String?

            enum CodingKeys: String, CodingKey, CaseIterable {
                case provider, template, languages
                case baseURL = "base_url"
                case apiVersion = "api_version"
                case phoneNumberID = "phone_number_id"
                case accessToken = "access_token"
                case appSecret = "app_secret"
                case verifyToken = "verify_token"
            }

            public init(from decoder: any Decoder) throws {
                try decoder.rejectUnknownKeys(CodingKeys.self)
                let c = try decoder.container(keyedBy: CodingKeys.self)
                baseURL = try c.value(.baseURL, default: Self.defaultBaseURL)
                apiVersion = try c.value(.apiVersion, default: "v21.0")
                phoneNumberID = try c.nonEmptyString(.phoneNumberID)
                accessToken = try c.nonEmptyString(.accessToken)
                template = try c.nonEmptyString(.template)
                languages = try c.value(.languages, default: ["en": "en_US"])
                appSecret = try c.decodeIfPresent(String.self, forKey: .appSecret)
                verifyToken = try c.decodeIfPresent(String.self, forKey: .verifyToken)
            }
        }
    }
}
