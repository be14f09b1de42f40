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
    public var server: Server
    public var redis: Redis
    public var security: Security
    public var delivery: Delivery
    public var apps: [App]
    public var surfaces: Surfaces

    enum CodingKeys: String, CodingKey, CaseIterable {
        case mode, server, redis, security, delivery, apps, surfaces
        case logLevel = "log_level"
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        mode = try c.value(.mode, default: .production)
        logLevel = try c.value(.logLevel, default: "info")
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

        enum CodingKeys: String, CodingKey, CaseIterable {
            case host, port
            case trustedProxies = "trusted_proxies"
            case maxBodyBytes = "max_body_bytes"
        }

        init() {}

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            host = try c.value(.host, default: host)
            port = try c.value(.port, default: port)
            trustedProxies = try c.value(.trustedProxies, default: trustedProxies)
            maxBodyBytes = try c.value(.maxBodyBytes, default: maxBodyBytes)
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
        public var sms: Gateway?
        public var call: Gateway?
        public var email: Gateway?
        public var telegram: Gateway?
        public var timeoutMilliseconds = 5000
        public var retries = 2

        enum CodingKeys: String, CodingKey, CaseIterable {
            case sms, call, email, telegram, retries
            case timeoutMilliseconds = "timeout_ms"
        }

        init() {}

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            sms = try c.decodeIfPresent(Gateway.self, forKey: .sms)
            call = try c.decodeIfPresent(Gateway.self, forKey: .call)
            email = try c.decodeIfPresent(Gateway.self, forKey: .email)
            telegram = try c.decodeIfPresent(Gateway.self, forKey: .telegram)
            timeoutMilliseconds = try c.value(.timeoutMilliseconds, default: timeoutMilliseconds)
            retries = try c.value(.retries, default: retries)
        }

        public func gateway(for channel: Channel) -> Gateway? {
            switch channel {
            case .sms: return sms
            case .call: return call
            case .email: return email
            case .telegram: return telegram
            }
        }
    }

    /// One channel's gateway. Which keys are required depends on `provider`.
    public struct Gateway: Sendable, Decodable {
        public enum Provider: String, Sendable, Decodable { case twilio, smtp, telegram, webhook, log }
        public var provider: Provider
        public var baseURL: String?
        public var accountSID: String?
        public var authToken: String?
        public var from: String?
        public var smtpURL: String?
        public var username: String?
        public var password: String?
        public var apiBaseURL: String?
        public var botToken: String?
        public var webhookSecret: String?
        public var codeLifetime: Int?
        public var url: String?
        public var secret: String?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case provider, from, username, password, url, secret
            case baseURL = "base_url"
            case accountSID = "account_sid"
            case authToken = "auth_token"
            case smtpURL = "smtp_url"
            case apiBaseURL = "api_base_url"
            case botToken = "bot_token"
            case webhookSecret = "webhook_secret"
            case codeLifetime = "code_lifetime"
        }

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            provider = try c.decode(Provider.self, forKey: .provider)
            baseURL = try c.decodeIfPresent(String.self, forKey: .baseURL)
            accountSID = try c.decodeIfPresent(String.self, forKey: .accountSID)
            authToken = try c.decodeIfPresent(String.self, forKey: .authToken)
            from = try c.decodeIfPresent(String.self, forKey: .from)
            smtpURL = try c.decodeIfPresent(String.self, forKey: .smtpURL)
            username = try c.decodeIfPresent(String.self, forKey: .username)
            password = try c.decodeIfPresent(String.self, forKey: .password)
            apiBaseURL = try c.decodeIfPresent(String.self, forKey: .apiBaseURL)
            botToken = try c.decodeIfPresent(String.self, forKey: .botToken)
            webhookSecret = try c.decodeIfPresent(String.self, forKey: .webhookSecret)
            codeLifetime = try c.decodeIfPresent(Int.self, forKey: .codeLifetime)
            url = try c.decodeIfPresent(String.self, forKey: .url)
            secret = try c.decodeIfPresent(String.self, forKey: .secret)
        }

        /// The keys a provider cannot work without.
        var requiredKeys: [(CodingKeys, String?)] {
            switch provider {
            case .twilio: return [(.accountSID, accountSID), (.authToken, authToken), (.from, from)]
            case .smtp: return [(.smtpURL, smtpURL), (.from, from)]
            case .telegram: return [(.botToken, botToken)]
            case .webhook: return [(.url, url), (.secret, secret)]
            case .log: return []
            }
        }
    }

    // MARK: apps

    public enum Channel: String, Sendable, Codable, CaseIterable { case email, sms, call, telegram }

    public struct App: Sendable, Decodable {
        public enum Registration: String, Sendable, Decodable { case open, closed }
        public var id: String
        public var name: String
        public var redirectURL: String
        public var channels: [Channel]
        public var registration: Registration
        public var concealUnknownUsers: Bool
        public var defaultLanguage: String
        public var otp: OTP
        public var limits: Limits
        public var tokens: Tokens
        public var password: Password
        public var templates: [String: Templates]

        enum CodingKeys: String, CodingKey, CaseIterable {
            case id, name, channels, registration, otp, limits, tokens, password, templates
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
            concealUnknownUsers = try c.value(.concealUnknownUsers, default: false)
            defaultLanguage = try c.value(.defaultLanguage, default: "en")
            otp = try c.value(.otp, default: OTP())
            limits = try c.value(.limits, default: Limits())
            tokens = try c.decode(Tokens.self, forKey: .tokens)
            password = try c.value(.password, default: Password())
            templates = try c.value(.templates, default: ["en": Templates()])
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

        enum CodingKeys: String, CodingKey, CaseIterable {
            case sendsPerIdentifierPerHour = "sends_per_identifier_per_hour"
            case sendsPerIPPerHour = "sends_per_ip_per_hour"
            case failedAttemptsPerIdentifierPerHour = "failed_attempts_per_identifier_per_hour"
        }

        init() {}

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            sendsPerIdentifierPerHour = try c.value(.sendsPerIdentifierPerHour, default: sendsPerIdentifierPerHour)
            sendsPerIPPerHour = try c.value(.sendsPerIPPerHour, default: sendsPerIPPerHour)
            failedAttemptsPerIdentifierPerHour = try c.value(
                .failedAttemptsPerIdentifierPerHour, default: failedAttemptsPerIdentifierPerHour)
        }
    }

    public struct Tokens: Sendable, Decodable {
        public struct Key: Sendable, Decodable {
            public var kid: String
            public var secret: String
            enum CodingKeys: String, CodingKey, CaseIterable { case kid, secret }
            public init(from decoder: any Decoder) throws {
                try decoder.rejectUnknownKeys(CodingKeys.self)
                let c = try decoder.container(keyedBy: CodingKeys.self)
                kid = try c.decode(String.self, forKey: .kid)
                secret = try c.decode(String.self, forKey: .secret)
            }
        }
        public var issuer: String
        public var accessTTLSeconds: Int
        public var refreshTTLSeconds: Int
        public var activeKid: String
        public var keys: [Key]

        enum CodingKeys: String, CodingKey, CaseIterable {
            case issuer, keys
            case accessTTLSeconds = "access_ttl_seconds"
            case refreshTTLSeconds = "refresh_ttl_seconds"
            case activeKid = "active_kid"
        }

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            issuer = try c.value(.issuer, default: "otpd")
            accessTTLSeconds = try c.value(.accessTTLSeconds, default: 1800)
            refreshTTLSeconds = try c.value(.refreshTTLSeconds, default: 2_592_000)
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
    public struct Templates: Sendable, Decodable {
        public var sms = "{code} is your {app_name} code"
        public var emailSubject = "Your {app_name} code"
        public var emailText = "Your code is {code}. It expires in {ttl_minutes} minutes."
        public var call = "Your {app_name} code is {code}"
        public var telegram = "{code} is your {app_name} code"

        enum CodingKeys: String, CodingKey, CaseIterable {
            case sms, call, telegram
            case emailSubject = "email_subject"
            case emailText = "email_text"
        }

        init() {}

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            sms = try c.value(.sms, default: sms)
            emailSubject = try c.value(.emailSubject, default: emailSubject)
            emailText = try c.value(.emailText, default: emailText)
            call = try c.value(.call, default: call)
            telegram = try c.value(.telegram, default: telegram)
        }
    }

    // MARK: surfaces

    public struct Surfaces: Sendable, Decodable {
        public struct AppBinding: Sendable, Decodable {
            public var app: String
            enum CodingKeys: String, CodingKey, CaseIterable { case app }
            public init(from decoder: any Decoder) throws {
                try decoder.rejectUnknownKeys(CodingKeys.self)
                app = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .app)
            }
        }
        public struct ChannelAPI: Sendable, Decodable {
            public struct BasicAuth: Sendable, Decodable {
                public var username: String
                public var password: String
                enum CodingKeys: String, CodingKey, CaseIterable { case username, password }
                public init(from decoder: any Decoder) throws {
                    try decoder.rejectUnknownKeys(CodingKeys.self)
                    let c = try decoder.container(keyedBy: CodingKeys.self)
                    username = try c.decode(String.self, forKey: .username)
                    password = try c.decode(String.self, forKey: .password)
                }
            }
            public var basicAuth: BasicAuth
            public var maxAttempts: Int
            enum CodingKeys: String, CodingKey, CaseIterable {
                case basicAuth = "basic_auth"
                case maxAttempts = "max_attempts"
            }
            public init(from decoder: any Decoder) throws {
                try decoder.rejectUnknownKeys(CodingKeys.self)
                let c = try decoder.container(keyedBy: CodingKeys.self)
                basicAuth = try c.decode(BasicAuth.self, forKey: .basicAuth)
                maxAttempts = try c.value(.maxAttempts, default: 5)
            }
        }

        public var passwordReset: AppBinding?
        public var hub: AppBinding?
        public var channelAPI: ChannelAPI?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case hub
            case passwordReset = "password_reset"
            case channelAPI = "channel_api"
        }

        init() {}

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            passwordReset = try c.decodeIfPresent(AppBinding.self, forKey: .passwordReset)
            hub = try c.decodeIfPresent(AppBinding.self, forKey: .hub)
            channelAPI = try c.decodeIfPresent(ChannelAPI.self, forKey: .channelAPI)
        }
    }
}

