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

    public struct Server: Sendable, DefaultedSection {
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

        init() {}

        public init(from decoder: any Decoder) throws { try self.init(decoding: decoder) }

        static var keys: [SectionKey<Self>] {
            [
                SectionKey("host", \.host),
                SectionKey("port", \.port),
                SectionKey("trusted_proxies", \.trustedProxies),
                SectionKey("max_body_bytes", \.maxBodyBytes),
                SectionKey("idle_timeout_seconds", \.idleTimeoutSeconds),
                SectionKey("max_connections", \.maxConnections),
                SectionKey("public_url", \.publicURL),
            ]
        }
    }

    // MARK: redis

    public struct Redis: Sendable, DefaultedSection {
        public enum Mode: String, Sendable, Decodable { case standalone, cluster }
        public var url = "redis://127.0.0.1:6379/0"
        public var mode = Mode.standalone
        public var nodes: [String] = []
        public var timeoutMilliseconds = 500
        public var keyPrefix = "otpd"
        public var poolSize = 2

        init() {}

        public init(from decoder: any Decoder) throws { try self.init(decoding: decoder) }

        static var keys: [SectionKey<Self>] {
            [
                SectionKey("url", \.url),
                SectionKey("mode", \.mode),
                SectionKey("nodes", \.nodes),
                SectionKey("timeout_ms", \.timeoutMilliseconds),
                SectionKey("key_prefix", \.keyPrefix),
                SectionKey("pool_size", \.poolSize),
            ]
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
        /// `{telegram: sms}`, `{whatsapp: sms}`: when that channel's gateway refuses a number, the
        /// same code goes by SMS.
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

    public struct OTP: Sendable, DefaultedSection {
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

        init() {}

        public init(from decoder: any Decoder) throws { try self.init(decoding: decoder) }

        static var keys: [SectionKey<Self>] {
            [
                SectionKey("length", \.length),
                SectionKey("alphabet", \.alphabet),
                SectionKey("ttl_seconds", \.ttlSeconds),
                SectionKey("max_attempts", \.maxAttempts),
                SectionKey("resend_cooldown_seconds", \.resendCooldownSeconds),
            ]
        }
    }

    public struct Limits: Sendable, DefaultedSection {
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

        init() {}

        public init(from decoder: any Decoder) throws { try self.init(decoding: decoder) }

        static var keys: [SectionKey<Self>] {
            [
                SectionKey("sends_per_identifier_per_hour", \.sendsPerIdentifierPerHour),
                SectionKey("sends_per_ip_per_hour", \.sendsPerIPPerHour),
                SectionKey("failed_attempts_per_identifier_per_hour", \.failedAttemptsPerIdentifierPerHour),
                SectionKey("failed_attempts_per_ip_per_hour", \.failedAttemptsPerIPPerHour),
                SectionKey("max_consecutive_failures", \.maxConsecutiveFailures),
                SectionKey("lockout_seconds", \.lockoutSeconds),
                SectionKey("refreshes_per_session_per_hour", \.refreshesPerSessionPerHour),
                SectionKey("failed_passwords_per_identifier_per_hour", \.failedPasswordsPerIdentifierPerHour),
                SectionKey("allowed_country_codes", \.allowedCountryCodes),
                SectionKey("sms_and_calls_per_app_per_hour", \.smsAndCallsPerAppPerHour),
            ]
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

    public struct Password: Sendable, DefaultedSection {
        public var minLength = 8

        init() {}

        public init(from decoder: any Decoder) throws { try self.init(decoding: decoder) }

        static var keys: [SectionKey<Self>] { [SectionKey("min_length", \.minLength)] }
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

