import Delivery
import RedisClient

extension Configuration {
    /// Secrets that start with this are development placeholders: refused in production mode.
    public static let insecurePrefix = "insecure-"

    /// The longest duration any `*_seconds` key takes: 10 years. Every duration is at most this,
    /// so no `* 1000` (milliseconds) or `now + ttl` can overflow.
    public static let maxDurationSeconds = 10 * 365 * 86_400
    /// `server.max_body_bytes` at most 16 MiB.
    public static let maxBodyBytesLimit = 16 << 20
    /// Every count or per-hour limit is at most this: the Lua window arithmetic (limit × an hour
    /// in ms, 3.6e15) stays exact in a double (below 2^53), and no counter can overflow.
    public static let maxCount = 1_000_000_000
    /// A secret that authenticates what otpd receives (a webhook's or a callback's) is at least
    /// this long in production mode.
    public static let minReceiverSecretLength = 16

    /// Checks everything that types alone cannot. Throws the first problem, naming its key;
    /// returns warnings (development secrets, the `log` gateway) for the log.
    @discardableResult
    public func validate() throws(ConfigurationError) -> [String] {
        var check = ConfigurationCheck(mode: mode)
        try check.require(
            ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(logLevel), "log_level",
            "must be one of trace, debug, info, notice, warning, error, critical")
        try check.server(server)
        try check.redis(redis)
        try check.secret(security.pepper, "security.pepper", minBytes: 16)
        try check.milliseconds(delivery.timeoutMilliseconds, "delivery.timeout_ms")
        try check.require((0...10).contains(delivery.retries), "delivery.retries", "must be 0-10")
        for channel in DeliveryChannel.allCases {
            if let gateway = delivery.gateway(for: channel) { try check.gateway(gateway, for: channel) }
        }
        if let telegramGateway = delivery.telegramGateway { try check.telegramGateway(telegramGateway) }
        var ids = Set<String>()
        for (i, app) in apps.enumerated() {
            try check.app(app, key: "apps[\(i)]", delivery: delivery, ids: &ids)
        }
        try check.surfaces(surfaces, appIDs: ids)
        if let reset = surfaces.passwordReset, let app = apps.first(where: { $0.id == reset.app }) {
            try check.require(
                app.channels.contains(.email), "surfaces.password_reset.app",
                "app '\(reset.app)' must enable the email channel: reset codes are sent by email")
        }
        return check.warnings
    }
}

/// The checks of `Configuration.validate()`, one section each, and the warnings they collect.
struct ConfigurationCheck {
    let mode: Configuration.Mode
    var warnings: [String] = []

    func require(_ condition: Bool, _ key: String, _ message: String) throws(ConfigurationError) {
        if !condition { throw ConfigurationError(key: key, message) }
    }

    /// A duration in seconds: 1 s to 10 years (0 too when `zero` means "none").
    func seconds(_ value: Int, _ key: String, zero: Bool = false) throws(ConfigurationError) {
        let range = (zero ? 0 : 1)...Configuration.maxDurationSeconds
        try require(
            range.contains(value), key,
            "must be \(range.lowerBound)-\(range.upperBound) seconds (at most 10 years), got \(value)")
    }

    /// A timeout in milliseconds: 1 ms to 1 hour.
    func milliseconds(_ value: Int, _ key: String) throws(ConfigurationError) {
        try require((1...3_600_000).contains(value), key, "must be 1-3600000 milliseconds (at most 1 hour), got \(value)")
    }

    /// A count or limit: 1 to `Configuration.maxCount`, or the smaller `max`.
    func count(_ value: Int, _ key: String, max: Int = Configuration.maxCount) throws(ConfigurationError) {
        try require((1...max).contains(value), key, "must be 1-\(max), got \(value)")
    }

    /// A secret that authenticates what otpd receives: at least 16 characters in production.
    func receiverSecret(_ value: String, _ key: String) throws(ConfigurationError) {
        let minimum = Configuration.minReceiverSecretLength
        try require(
            mode != .production || value.count >= minimum, key,
            "must be at least \(minimum) characters long in production (a short secret can be guessed)")
    }

    mutating func placeholder(_ value: String, _ key: String) throws(ConfigurationError) {
        guard value.hasPrefix(Configuration.insecurePrefix) else { return }
        try require(mode == .development, key, "is a development placeholder; refused unless mode is development")
        warnings.append("\(key) is a development placeholder: never use this configuration in production")
    }

    mutating func secret(_ value: String, _ key: String, minBytes: Int) throws(ConfigurationError) {
        try require(!value.isEmpty, key, "is empty (set it, or the environment variable it names)")
        try require(value.utf8.count >= minBytes, key, "must be at least \(minBytes) bytes long")
        try placeholder(value, key)
    }

    func server(_ server: Configuration.Server) throws(ConfigurationError) {
        try require(!server.host.isEmpty, "server.host", "is empty")
        try require((1...65535).contains(server.port), "server.port", "must be 1-65535, got \(server.port)")
        try count(server.maxBodyBytes, "server.max_body_bytes", max: Configuration.maxBodyBytesLimit)
        try seconds(server.idleTimeoutSeconds, "server.idle_timeout_seconds")
        try count(server.maxConnections, "server.max_connections", max: 1_000_000)
        if let publicURL = server.publicURL { try self.publicURL(publicURL) }
        for (i, proxy) in server.trustedProxies.enumerated() {
            guard let range = NetworkRange(proxy) else {
                throw ConfigurationError(key: "server.trusted_proxies[\(i)]", "'\(proxy)' is not an IP address or CIDR range")
            }
            // A range of every address would trust anyone's X-Forwarded-For: every per-IP limit
            // would be one forged header away.
            try require(
                mode != .production || range.prefixLength > 0, "server.trusted_proxies[\(i)]",
                "'\(proxy)' covers every address: anyone could set their client IP; refused unless mode is development")
        }
    }

    func redis(_ redis: Configuration.Redis) throws(ConfigurationError) {
        let url: RedisConfiguration
        do {
            url = try RedisConfiguration(url: redis.url)
        } catch {
            throw ConfigurationError(key: "redis.url", error.message)
        }
        if redis.mode == .cluster {
            try require(!redis.nodes.isEmpty, "redis.nodes", "must list at least one host:port of the cluster in mode: cluster")
            for (index, node) in redis.nodes.enumerated() {
                try require(RedisNodeAddress(node) != nil, "redis.nodes[\(index)]", "'\(node)' is not host:port (port 1-65535)")
            }
            try require(
                url.database == 0, "redis.url",
                "a Redis Cluster has only database 0; in mode: cluster the URL carries only the credentials")
        }
        try milliseconds(redis.timeoutMilliseconds, "redis.timeout_ms")
        try require((1...64).contains(redis.poolSize), "redis.pool_size", "must be 1-64")
        try require(
            !redis.keyPrefix.isEmpty && !redis.keyPrefix.contains(where: { "{} ".contains($0) }), "redis.key_prefix",
            "must be non-empty and contain no braces or spaces (they would break hash tags)")
    }

    mutating func gateway(_ gateway: Configuration.Gateway, for channel: DeliveryChannel) throws(ConfigurationError) {
        let key = "delivery.\(channel.rawValue)"
        let production = mode == .production
        func webURL(_ value: String, _ field: String) throws(ConfigurationError) {
            try self.webURL(value, "\(key).\(field)")
        }
        /// In production, a secret must have its provider's shape (a placeholder would not).
        func shaped(_ value: String, _ field: String, _ valid: Bool, _ shape: String) throws(ConfigurationError) {
            try require(!production || valid, "\(key).\(field)", "must be \(shape)")
        }
        func carries(_ channels: Set<DeliveryChannel>) throws(ConfigurationError) {
            try require(
                channels.contains(channel), "\(key).provider",
                "\(gateway.provider.rawValue) carries \(channels.map(\.rawValue).sorted().joined(separator: " and ")), "
                    + "not \(channel.rawValue)")
        }
        switch gateway {
        case .twilio(let twilio):
            try carries([.sms, .call])
            try webURL(twilio.baseURL, "base_url")
            try placeholder(twilio.authToken, "\(key).auth_token")
            try shaped(twilio.accountSID, "account_sid", Self.isHex(twilio.accountSID.dropFirst(2), count: 32) && twilio.accountSID.hasPrefix("AC"), "'AC' and 32 hex digits")
            try shaped(twilio.authToken, "auth_token", Self.isHex(twilio.authToken[...], count: 32), "32 hex digits")
        case .smtp(let smtp):
            try carries([.email])
            try require(
                smtp.smtpURL.hasPrefix("smtp://") || smtp.smtpURL.hasPrefix("smtps://"), "\(key).smtp_url",
                "'\(smtp.smtpURL)' must be an smtp:// or smtps:// URL")
            if let password = smtp.password { try placeholder(password, "\(key).password") }
            try require(
                smtp.tls == .required || !production, "\(key).tls",
                "'none' sends codes in plain text; refused unless mode is development")
        case .telegram(let telegram):
            try carries([.telegram])
            try webURL(telegram.apiBaseURL, "api_base_url")
            try placeholder(telegram.botToken, "\(key).bot_token")
            try shaped(telegram.botToken, "bot_token", Self.isBotToken(telegram.botToken), "a BotFather token ('123456:' and 35 characters)")
            if let webhookSecret = telegram.webhookSecret {
                try require(
                    TelegramBotAPI.isValidSecretToken(webhookSecret), "\(key).webhook_secret",
                    "must be 1-256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule for secret tokens)")
                try placeholder(webhookSecret, "\(key).webhook_secret")
                try receiverSecret(webhookSecret, "\(key).webhook_secret")
            } else {
                try require(
                    !production, "\(key).webhook_secret",
                    "is required in production: without it anyone could post updates to /telegram/webhook")
            }
            try count(telegram.codesPerChatPerHour, "\(key).codes_per_chat_per_hour", max: 1000)
            if let codeLifetime = telegram.codeLifetime {
                try require((1...86400).contains(codeLifetime), "\(key).code_lifetime", "must be 1-86400")
            }
        case .webhook(let webhook):
            try webURL(webhook.url, "url")
            try placeholder(webhook.secret, "\(key).secret")
            try shaped(webhook.secret, "secret", webhook.secret.utf8.count >= 24, "at least 24 bytes (or whsec_ and base64)")
            try receiverSecret(webhook.secret, "\(key).secret")
        case .whatsappCloud(let cloud):
            try carries([.whatsapp])
            try webURL(cloud.baseURL, "base_url")
            try require(
                !cloud.apiVersion.isEmpty && cloud.apiVersion.count <= 16
                    && cloud.apiVersion.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == ".") }),
                "\(key).api_version", "'\(cloud.apiVersion)' must be a Graph API version such as v21.0")
            try require(
                cloud.phoneNumberID.count <= 32 && cloud.phoneNumberID.allSatisfy({ $0.isASCII && $0.isNumber }),
                "\(key).phone_number_id", "must be the digits of the WhatsApp phone number's id")
            try placeholder(cloud.accessToken, "\(key).access_token")
            try require(!cloud.languages.isEmpty, "\(key).languages", "must map at least one language (en: en_US)")
            for secretKey in [("app_secret", cloud.appSecret), ("verify_token", cloud.verifyToken)] {
                guard let value = secretKey.1 else {
                    try require(
                        !production, "\(key).\(secretKey.0)",
                        "is required in production: it authenticates the status webhook (/whatsapp/webhook)")
                    continue
                }
                try placeholder(value, "\(key).\(secretKey.0)")
                try receiverSecret(value, "\(key).\(secretKey.0)")
            }
        case .log:
            try require(
                mode == .development, "\(key).provider",
                "the log provider writes codes to the log; refused unless mode is development")
            warnings.append("\(key) uses the log provider: codes are written to the log")
        }
    }

    /// An http(s) URL; https only in production.
    func webURL(_ value: String, _ key: String) throws(ConfigurationError) {
        try require(
            value.hasPrefix("http://") || value.hasPrefix("https://"), key, "'\(value)' must be an http:// or https:// URL")
        try require(
            mode != .production || value.hasPrefix("https://"), key, "'\(value)' is plain http; production mode requires https://")
    }

    mutating func telegramGateway(_ gateway: Configuration.TelegramGateway) throws(ConfigurationError) {
        let key = "delivery.telegram_gateway"
        try webURL(gateway.baseURL, "\(key).base_url")
        try placeholder(gateway.token, "\(key).token")
        // The token is also the key of the delivery reports' signatures.
        try receiverSecret(gateway.token, "\(key).token")
        if !gateway.callbackURL.isEmpty { try webURL(gateway.callbackURL, "\(key).callback_url") }
        try require(
            gateway.senderUsername.count <= 64, "\(key).sender_username", "must be at most 64 characters")
    }

    static func isHex(_ text: Substring, count: Int) -> Bool {
        text.count == count && text.allSatisfy(\.isHexDigit)
    }

    static func isBotToken(_ token: String) -> Bool {
        let parts = token.split(separator: ":", maxSplits: 1)
        return parts.count == 2 && !parts[0].isEmpty && parts[0].allSatisfy({ $0.isASCII && $0.isNumber })
            && parts[1].count >= 30 && parts[1].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") })
    }

    func limits(_ limits: Configuration.Limits, key: String) throws(ConfigurationError) {
        for (name, value) in [
            ("sends_per_identifier_per_hour", limits.sendsPerIdentifierPerHour), ("sends_per_ip_per_hour", limits.sendsPerIPPerHour),
            ("failed_attempts_per_identifier_per_hour", limits.failedAttemptsPerIdentifierPerHour),
            ("failed_attempts_per_ip_per_hour", limits.failedAttemptsPerIPPerHour),
            ("max_consecutive_failures", limits.maxConsecutiveFailures),
            ("refreshes_per_session_per_hour", limits.refreshesPerSessionPerHour),
            ("failed_passwords_per_identifier_per_hour", limits.failedPasswordsPerIdentifierPerHour),
            ("sms_and_calls_per_app_per_hour", limits.smsAndCallsPerAppPerHour),
        ] {
            try count(value, "\(key).\(name)")
        }
        try seconds(limits.lockoutSeconds, "\(key).lockout_seconds")
        for (c, code) in limits.allowedCountryCodes.enumerated() {
            try require(
                (1...3).contains(code.count) && code.allSatisfy({ $0.isASCII && $0.isNumber }) && code.first != "0",
                "\(key).allowed_country_codes[\(c)]", "'\(code)' is not a country calling code (1-3 digits, e.g. \"44\")")
        }
    }

    mutating func app(
        _ app: Configuration.App, key: String, delivery: Configuration.Delivery, ids: inout Set<String>
    ) throws(ConfigurationError) {
        try require(
            !app.id.isEmpty && app.id.count <= 64
                && app.id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }),
            "\(key).id", "'\(app.id)' must be 1-64 letters, digits, '-' or '_'")
        try require(ids.insert(app.id).inserted, "\(key).id", "'\(app.id)' is used by another app")
        try require(!app.channels.isEmpty, "\(key).channels", "must name at least one channel")
        for channel in app.channels {
            try require(
                delivery.gateway(for: channel) != nil || (channel == .telegram && delivery.telegramGateway != nil),
                "\(key).channels", "channel \(channel.rawValue) has no gateway under delivery.\(channel.rawValue)")
        }
        // The Telegram Gateway takes numeric codes of 4-8 digits only.
        if app.channels.contains(.telegram), delivery.telegramGateway != nil {
            try require(
                app.otp.alphabet == .digits && (4...8).contains(app.otp.length), "\(key).otp",
                "the telegram channel goes through the Telegram Gateway, which takes codes of 4-8 digits only")
        }
        for (from, to) in app.fallback {
            try require(
                (from == .telegram || from == .whatsapp) && to == .sms, "\(key).fallback",
                "only {telegram: sms} and {whatsapp: sms} are supported (when the gateway refuses a number, the code goes by SMS)")
            let fallbackKey = "\(key).fallback.\(from.rawValue)"
            if from == .telegram {
                try require(delivery.telegramGateway != nil, fallbackKey, "needs delivery.telegram_gateway")
            }
            try require(delivery.sms != nil, fallbackKey, "needs a gateway under delivery.sms")
            try require(app.channels.contains(from), fallbackKey, "the app does not enable \(from.rawValue)")
        }
        try require((4...12).contains(app.otp.length), "\(key).otp.length", "must be 4-12")
        try seconds(app.otp.ttlSeconds, "\(key).otp.ttl_seconds")
        try count(app.otp.maxAttempts, "\(key).otp.max_attempts", max: 1000)
        try seconds(app.otp.resendCooldownSeconds, "\(key).otp.resend_cooldown_seconds", zero: true)
        try limits(app.limits, key: "\(key).limits")
        // Short codes are guessable: NIST's bound on guesses needs fewer attempts per code.
        try require(
            app.otp.length >= 6 || app.otp.maxAttempts <= 3, "\(key).otp.max_attempts",
            "must be 3 or less for codes shorter than 6 characters (length is \(app.otp.length))")
        try seconds(app.tokens.accessTTLSeconds, "\(key).tokens.access_ttl_seconds")
        try seconds(app.tokens.refreshTTLSeconds, "\(key).tokens.refresh_ttl_seconds")
        try seconds(app.tokens.reuseIntervalSeconds, "\(key).tokens.reuse_interval_seconds", zero: true)
        try seconds(app.tokens.sessionMaxSeconds, "\(key).tokens.session_max_seconds")
        try tokenKeys(app.tokens, key: "\(key).tokens")
        // A longer minimum than the longest password accepted would refuse every password.
        try count(app.password.minLength, "\(key).password.min_length", max: Passwords.maxPasswordBytes)
        try require(
            app.templates[app.defaultLanguage] != nil, "\(key).templates",
            "has no templates for the default language '\(app.defaultLanguage)'")
        for (language, templates) in app.templates {
            // The subject becomes a mail header: a line break in it could inject headers.
            try require(
                !(templates.subject(for: .email) ?? "").contains(where: \.isNewline),
                "\(key).templates.\(language).email_subject", "must not contain a line break")
        }
    }

    mutating func surfaces(_ surfaces: Configuration.Surfaces, appIDs ids: Set<String>) throws(ConfigurationError) {
        for (name, app) in [("password_reset", surfaces.passwordReset?.app), ("hub", surfaces.hub?.app)] {
            if let app {
                try require(ids.contains(app), "surfaces.\(name).app", "no app has the id '\(app)'")
            }
        }
        if let hub = surfaces.hub {
            try require(
                (1...315_360_000).contains(hub.socketMaxSeconds), "surfaces.hub.socket_max_seconds",
                "must be between 1 and 315360000 (10 years), got \(hub.socketMaxSeconds)")
            try require(
                (1...10_000).contains(hub.socketsPerIP), "surfaces.hub.sockets_per_ip",
                "must be between 1 and 10000, got \(hub.socketsPerIP)")
        }
        if let channelAPI = surfaces.channelAPI {
            try require(!channelAPI.basicAuth.username.isEmpty, "surfaces.channel_api.basic_auth.username", "is empty")
            try secret(channelAPI.basicAuth.password, "surfaces.channel_api.basic_auth.password", minBytes: 12)
            try count(channelAPI.maxAttempts, "surfaces.channel_api.max_attempts", max: 1000)
        }
        if let verify = surfaces.twilioVerify { try twilioVerify(verify, appIDs: ids) }
    }

    /// `surfaces.twilio_verify`: Twilio's SID shapes (a Twilio SDK checks none, but a SID is
    /// echoed in every resource and names a service in every path), secrets, and apps that exist.
    mutating func twilioVerify(_ verify: Configuration.Surfaces.TwilioVerify, appIDs ids: Set<String>) throws(ConfigurationError) {
        let key = "surfaces.twilio_verify"
        try require(Self.isSID(verify.accountSID, "AC"), "\(key).account_sid", "must be 'AC' and 32 hex digits")
        try secret(verify.authToken, "\(key).auth_token", minBytes: 16)
        for (sid, secretValue) in verify.apiKeys.sorted(by: { $0.key < $1.key }) {
            try require(Self.isSID(sid, "SK"), "\(key).api_keys", "'\(sid)' must be 'SK' and 32 hex digits")
            try secret(secretValue, "\(key).api_keys.\(sid)", minBytes: 16)
        }
        try require(!verify.services.isEmpty, "\(key).services", "must map at least one service SID to an app")
        for (sid, app) in verify.services.sorted(by: { $0.key < $1.key }) {
            try require(Self.isSID(sid, "VA"), "\(key).services", "'\(sid)' must be 'VA' and 32 hex digits")
            try require(ids.contains(app), "\(key).services.\(sid)", "no app has the id '\(app)'")
        }
    }

    /// A Twilio SID: its two-letter prefix and 32 lower-case hex digits.
    static func isSID(_ sid: String, _ prefix: String) -> Bool {
        sid.hasPrefix(prefix) && isHex(sid.dropFirst(2), count: 32) && !sid.dropFirst(2).contains(where: \.isUppercase)
    }
}
