public import Delivery
public import OTPCrypto

/// The whole of otpd's configuration, as one YAML (or JSON) file describes it.
///
/// Every key the contract gives a default for may be left out; an unknown key is an error.
/// `validate()` checks what types alone cannot (ranges, references between sections, secrets).
public struct Configuration: Sendable, Decodable {
    public enum Mode: String, Sendable, Decodable {
        /// Development secrets and the `log` gateway are accepted, with a loud warning.
        case development
        /// Development secrets and the `log` gateway are refused.
        case production
    }

    public var mode: Mode
    public var logLevel: String
    public var logFormat: LogFormat
    public var server: Server
    public var redis: Redis
    public var security: Security
    public var delivery: Delivery
    public var apps: [App]
    public var surfaces: Surfaces

    enum CodingKeys: String, CodingKey, CaseIterable {
        case mode, server, redis, security, delivery, apps, surfaces
        case logLevel = "log_level"
        case logFormat = "log_format"
    }

    /// How each log line is written: swift-log's text shape, or one JSON object per line.
    public enum LogFormat: String, Sendable, Decodable {
        case text, json
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        mode = try c.value(.mode, default: .production)
        logLevel = try c.value(.logLevel, default: "info")
        logFormat = try c.value(.logFormat, default: .text)
        server = try c.value(.server, default: Server())
        redis = try c.value(.redis, default: Redis())
        security = try c.decode(Security.self, forKey: .security)
        delivery = try c.value(.delivery, default: Delivery())
        apps = try c.value(.apps, default: [])
        surfaces = try c.value(.surfaces, default: Surfaces())
    }

    // MARK: server

    public struct Server: Sendable, Decodable {
        public var host = "127.0.0.1"
        public var port = 8080
        public var trustedProxies: [String] = ["127.0.0.1/32"]
        public var maxBodyBytes = 65536
        /// A connection idle this long, or a request (head or body) unfinished this long, is closed.
        public var idleTimeoutSeconds = 30
        /// Connections beyond this many wait to be accepted.
        public var maxConnections = 10_000
        /// otpd's URL as clients reach it (`https://auth.example.com`), for absolute URLs in
        /// answers (discovery's `jwks_uri`); unset: from the request's Host.
        public var publicURL: String?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case host, port
            case trustedProxies = "trusted_proxies"
            case maxBodyBytes = "max_body_bytes"
            case idleTimeoutSeconds = "idle_timeout_seconds"
            case maxConnections = "max_connections"
            case publicURL = "public_url"
        }

        init() {}

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            host = try c.value(.host, default: host)
            port = try c.value(.port, default: port)
            trustedProxies = try c.value(.trustedProxies, default: trustedProxies)
            maxBodyBytes = try c.value(.maxBodyBytes, default: maxBodyBytes)
            idleTimeoutSeconds = try c.value(.idleTimeoutSeconds, default: idleTimeoutSeconds)
            maxConnections = try c.value(.maxConnections, default: maxConnections)
            publicURL = try c.decodeIfPresent(String.self, forKey: .publicURL)
        }
    }

    // MARK: redis

    public struct Redis: Sendable, Decodable {
        public enum Mode: String, Sendable, Decodable { case standalone, cluster }
        public var url = "redis://127.0.0.1:6379/0"
        public var mode = Mode.standalone
        public var nodes: [String] = []
        public var timeoutMilliseconds = 500
        public var keyPrefix = "otpd"
        public var poolSize = 2

        enum CodingKeys: String, CodingKey, CaseIterable {
            case url, mode, nodes
            case timeoutMilliseconds = "timeout_ms"
            case keyPrefix = "key_prefix"
            case poolSize = "pool_size"
        }

        init() {}

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            url = try c.value(.url, default: url)
            mode = try c.value(.mode, default: mode)
            nodes = try c.value(.nodes, default: nodes)
            timeoutMilliseconds = try c.value(.timeoutMilliseconds, default: timeoutMilliseconds)
            keyPrefix = try c.value(.keyPrefix, default: keyPrefix)
            poolSize = try c.value(.poolSize, default: poolSize)
        }
    }

    // MARK: security

    public struct Security: Sendable, Decodable {
        /// The HMAC key under which codes are hashed before they reach Redis.
        public var pepper: String

        enum CodingKeys: String, CodingKey, CaseIterable { case pepper }

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            pepper = try c.decode(String.self, forKey: .pepper)
        }
    }

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

    // MARK: apps


    public struct App: Sendable, Decodable {
        public enum Registration: String, Sendable, Decodable { case open, closed }
        public var id: String
        public var name: String
        public var redirectURL: String
        public var channels: [DeliveryChannel]
        public var registration: Registration
        /// False: every route of every surface refuses the app (403), its users and data kept.
        public var enabled: Bool
        public var concealUnknownUsers: Bool
        public var defaultLanguage: String
        public var otp: OTP
        public var limits: Limits
        public var tokens: Tokens
        public var password: Password
        public var templates: [String: Templates]
        /// `{telegram: sms}`: when the Telegram Gateway refuses a number, the same code goes by SMS.
        public var fallback: [DeliveryChannel: DeliveryChannel]

        enum CodingKeys: String, CodingKey, CaseIterable {
            case id, name, channels, registration, enabled, otp, limits, tokens, password, templates, fallback
            case redirectURL = "redirect_url"
            case concealUnknownUsers = "conceal_unknown_users"
            case defaultLanguage = "default_language"
        }

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            id = try c.decode(String.self, forKey: .id)
            name = try c.value(.name, default: id)
            redirectURL = try c.value(.redirectURL, default: "/")
            channels = try c.value(.channels, default: [.email, .sms])
            registration = try c.value(.registration, default: .open)
            enabled = try c.value(.enabled, default: true)
            concealUnknownUsers = try c.value(.concealUnknownUsers, default: false)
            defaultLanguage = try c.value(.defaultLanguage, default: "en")
            otp = try c.value(.otp, default: OTP())
            limits = try c.value(.limits, default: Limits())
            tokens = try c.decode(Tokens.self, forKey: .tokens)
            password = try c.value(.password, default: Password())
            templates = try c.value(.templates, default: ["en": Templates()])
            let fallbacks = try c.value(.fallback, default: [String: DeliveryChannel]())
            fallback = [:]
            for (from, to) in fallbacks {
                guard let channel = DeliveryChannel(rawValue: from) else {
                    throw DecodingError.dataCorruptedError(
                        forKey: .fallback, in: c, debugDescription: "'\(from)' is not a channel (\(DeliveryChannel.spelledOut))")
                }
                fallback[channel] = to
            }
        }
    }

    public struct OTP: Sendable, Decodable {
        public enum Alphabet: String, Sendable, Decodable {
            /// 0-9
            case digits
            /// Upper-case letters and digits without the look-alikes 0/O, 1/I/L.
            case alphanumeric
        }
        public var length = 6
        public var alphabet = Alphabet.digits
        public var ttlSeconds = 600
        public var maxAttempts = 5
        public var resendCooldownSeconds = 30

        enum CodingKeys: String, CodingKey, CaseIterable {
            case length, alphabet
            case ttlSeconds = "ttl_seconds"
            case maxAttempts = "max_attempts"
            case resendCooldownSeconds = "resend_cooldown_seconds"
        }

        init() {}

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            length = try c.value(.length, default: length)
            alphabet = try c.value(.alphabet, default: alphabet)
            ttlSeconds = try c.value(.ttlSeconds, default: ttlSeconds)
            maxAttempts = try c.value(.maxAttempts, default: maxAttempts)
            resendCooldownSeconds = try c.value(.resendCooldownSeconds, default: resendCooldownSeconds)
        }
    }

    public struct Limits: Sendable, Decodable {
        public var sendsPerIdentifierPerHour = 5
        public var sendsPerIPPerHour = 100
        public var failedAttemptsPerIdentifierPerHour = 10
        /// Wrong codes from one client IP (an IPv6 /64) per hour, across all users.
        public var failedAttemptsPerIPPerHour = 50
        /// Wrong codes in a row for one identifier (NIST SP 800-63B §5.2.2) before a lockout.
        public var maxConsecutiveFailures = 100
        public var lockoutSeconds = 86_400
        public var refreshesPerSessionPerHour = 60
        /// Wrong passwords for one identifier per hour: a budget of its own, so password guesses
        /// never spend the identifier's code failures or its lockout (and never stop a user from
        /// signing in with a code).
        public var failedPasswordsPerIdentifierPerHour = 10
        /// Country calling codes sms and call may reach (`["1", "44"]`); empty: all.
        public var allowedCountryCodes: [String] = []
        public var smsAndCallsPerAppPerHour = 1000

        enum CodingKeys: String, CodingKey, CaseIterable {
            case sendsPerIdentifierPerHour = "sends_per_identifier_per_hour"
            case sendsPerIPPerHour = "sends_per_ip_per_hour"
            case failedAttemptsPerIdentifierPerHour = "failed_attempts_per_identifier_per_hour"
            case failedAttemptsPerIPPerHour = "failed_attempts_per_ip_per_hour"
            case maxConsecutiveFailures = "max_consecutive_failures"
            case lockoutSeconds = "lockout_seconds"
            case refreshesPerSessionPerHour = "refreshes_per_session_per_hour"
            case failedPasswordsPerIdentifierPerHour = "failed_passwords_per_identifier_per_hour"
            case allowedCountryCodes = "allowed_country_codes"
            case smsAndCallsPerAppPerHour = "sms_and_calls_per_app_per_hour"
        }

        init() {}

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            sendsPerIdentifierPerHour = try c.value(.sendsPerIdentifierPerHour, default: sendsPerIdentifierPerHour)
            sendsPerIPPerHour = try c.value(.sendsPerIPPerHour, default: sendsPerIPPerHour)
            failedAttemptsPerIdentifierPerHour = try c.value(
                .failedAttemptsPerIdentifierPerHour, default: failedAttemptsPerIdentifierPerHour)
            failedAttemptsPerIPPerHour = try c.value(.failedAttemptsPerIPPerHour, default: failedAttemptsPerIPPerHour)
            maxConsecutiveFailures = try c.value(.maxConsecutiveFailures, default: maxConsecutiveFailures)
            lockoutSeconds = try c.value(.lockoutSeconds, default: lockoutSeconds)
            refreshesPerSessionPerHour = try c.value(.refreshesPerSessionPerHour, default: refreshesPerSessionPerHour)
            failedPasswordsPerIdentifierPerHour = try c.value(
                .failedPasswordsPerIdentifierPerHour, default: failedPasswordsPerIdentifierPerHour)
            allowedCountryCodes = try c.value(.allowedCountryCodes, default: allowedCountryCodes)
            smsAndCallsPerAppPerHour = try c.value(.smsAndCallsPerAppPerHour, default: smsAndCallsPerAppPerHour)
        }
    }

    /// `keys` are `Key`s (Configuration+Tokens.swift): a secret, or a private key parsed at load.
    public struct Tokens: Sendable, Decodable {
        /// HS256 (the default), RS256, ES256 or EdDSA.
        public var algorithm: JWT.Algorithm
        public var issuer: String
        public var accessTTLSeconds: Int
        public var refreshTTLSeconds: Int
        /// A refresh token presented again within this time while its child is unused gets
        /// that child again (a retry), not a revocation.
        public var reuseIntervalSeconds: Int
        /// A session (refresh-token family) ends this long after its sign-in, however often it rotates.
        public var sessionMaxSeconds: Int
        public var activeKid: String
        public var keys: [Key]

        enum CodingKeys: String, CodingKey, CaseIterable {
            case algorithm, issuer, keys
            case accessTTLSeconds = "access_ttl_seconds"
            case refreshTTLSeconds = "refresh_ttl_seconds"
            case reuseIntervalSeconds = "reuse_interval_seconds"
            case sessionMaxSeconds = "session_max_seconds"
            case activeKid = "active_kid"
        }

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            algorithm = try c.algorithm(.algorithm)
            issuer = try c.value(.issuer, default: "otpd")
            accessTTLSeconds = try c.value(.accessTTLSeconds, default: 1800)
            refreshTTLSeconds = try c.value(.refreshTTLSeconds, default: 2_592_000)
            reuseIntervalSeconds = try c.value(.reuseIntervalSeconds, default: 10)
            sessionMaxSeconds = try c.value(.sessionMaxSeconds, default: 7_776_000)
            keys = try c.decode([Key].self, forKey: .keys)
            activeKid = try c.value(.activeKid, default: keys.first?.kid ?? "")
        }
    }

    public struct Password: Sendable, Decodable {
        public var minLength = 8
        enum CodingKeys: String, CodingKey, CaseIterable { case minLength = "min_length" }
        init() {}
        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            minLength = try c.value(.minLength, default: minLength)
        }
    }

    /// Message texts for one language; `{code}`, `{app_name}` and `{ttl_minutes}` are filled in.
    /// One language's message templates, keyed as the channel table names them (`sms`,
    /// `call`, `telegram`, `email_subject`, `email_text`, …); a key left out keeps the
    /// table's default text.
    public struct Templates: Sendable, Decodable {
        public var texts: [String: String]

        /// The template of `channel`'s message.
        public func text(for channel: DeliveryChannel) -> String {
            texts[channel.traits.template.key] ?? channel.traits.template.defaultText
        }

        /// The template of `channel`'s subject line, for a channel whose messages have one.
        public func subject(for channel: DeliveryChannel) -> String? {
            channel.traits.subjectTemplate.map { texts[$0.key] ?? $0.defaultText }
        }

        init() { texts = [:] }

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(known: DeliveryChannel.templateKeys)
            let c = try decoder.container(keyedBy: AnyCodingKey.self)
            texts = [:]
            for key in DeliveryChannel.templateKeys {
                if let text = try c.decodeIfPresent(String.self, forKey: AnyCodingKey(stringValue: key)) { texts[key] = text }
            }
        }
    }

}

