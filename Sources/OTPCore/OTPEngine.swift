public import Delivery
public import Logging
import OTPCrypto
public import RedisClient

/// The engine every API surface shares: sends codes, checks them, issues and rotates tokens.
///
/// It knows nothing of HTTP. Each state change is one Lua script (`Scripts`), so any number of
/// replicas can race on one user and still see exactly-once semantics. Errors are `OTPError`
/// (a refusal) or `RedisError` (Redis could not be asked).
public final class OTPEngine: Sendable {
    public let apps: [String: AppPolicy]
    let redis: RedisClient
    let keys: KeySpace
    let pepper: [UInt8]
    let providers: [Configuration.Channel: any DeliveryProvider]
    let logger: Logger
    /// Told of every message handed to a gateway (for metrics): channel, provider, delivered, duration.
    let onDelivery: @Sendable (String, String, Bool, Duration) -> Void

    public init(
        configuration: Configuration, redis: RedisClient,
        providers: [Configuration.Channel: any DeliveryProvider], logger: Logger,
        onDelivery: @escaping @Sendable (String, String, Bool, Duration) -> Void = { _, _, _, _ in }
    ) {
        self.onDelivery = onDelivery
        self.apps = Dictionary(configuration.apps.map { ($0.id, AppPolicy($0)) }, uniquingKeysWith: { a, _ in a })
        self.redis = redis
        self.keys = KeySpace(prefix: configuration.redis.keyPrefix)
        self.pepper = Array(configuration.security.pepper.utf8)
        self.providers = providers
        self.logger = logger
    }

    public func app(_ id: String) throws(OTPError) -> AppPolicy {
        guard let app = apps[id] else { throw .appNotFound(id) }
        return app
    }

    /// Loads every script into Redis ahead of the first request.
    public func loadScripts() async throws(RedisError) {
        try await redis.load(Scripts.all)
    }

    // MARK: identity

    /// The user id of an identifier in an app: 24 hex of HMAC(pepper, app ‖ identifier).
    /// Deterministic, so one identifier is one user per app by construction, with no index.
    public func userID(app: String, identifier: Identifier) -> String {
        let mac = Digest.hmacSHA256(key: pepper, message: Array("otpd-user\u{0}\(app)\u{0}\(identifier.value)".utf8))
        return Digest.hex(mac.prefix(12))
    }

    /// HMAC(pepper, context ‖ code): what Redis holds instead of the code.
    func codeHash(app: String, otpID: String, code: String) -> [UInt8] {
        Digest.hmacSHA256(key: pepper, message: Array("otpd-code\u{0}\(app)\u{0}\(otpID)\u{0}\(code)".utf8))
    }

    // MARK: send

    public enum SendMode: String, Sendable {
        /// v1 register: creates the user (unverified until activation); 409 for an active user.
        case register
        /// v1 login: the user must exist (or, with conceal_unknown_users, a decoy is made).
        case login
    }

    public struct SendRequest: Sendable {
        public var identifier: String
        public var channel: String?
        public var language: String?
        public var firstName: String?
        public var lastName: String?
        public var clientIP: String?
        public var idempotencyKey: String?
        public var purpose: Purpose

        public init(
            identifier: String, channel: String? = nil, language: String? = nil, firstName: String? = nil,
            lastName: String? = nil, clientIP: String? = nil, idempotencyKey: String? = nil, purpose: Purpose = .auth
        ) {
            self.identifier = identifier
            self.channel = channel
            self.language = language
            self.firstName = firstName
            self.lastName = lastName
            self.clientIP = clientIP
            self.idempotencyKey = idempotencyKey
            self.purpose = purpose
        }
    }

    public struct SendResult: Sendable, Hashable {
        public var otpID: String
        public var userCreated: Bool
        public var channel: Configuration.Channel
        /// False when an idempotent retry or a concealed unknown user sent nothing.
        public var delivered: Bool
    }

    public func send(_ request: SendRequest, appID: String, mode: SendMode) async throws -> SendResult {
        let app = try app(appID)
        guard let identifier = Identifier(request.identifier) else { throw OTPError.invalidIdentifier }
        let channel = try resolveChannel(request.channel, identifier: identifier, app: app)
        let scriptMode: String
        switch mode {
        case .register:
            guard app.config.registration == .open else { throw OTPError.registrationClosed }
            scriptMode = "register"
        case .login:
            scriptMode = app.config.concealUnknownUsers ? "login_conceal" : "login"
        }
        let userID = userID(app: app.id, identifier: identifier)

        let otpSuffix = "\(request.purpose.rawValue)\(Base64URL.encode(SecureRandom.bytes(16)))"
        let otpID = "\(userID).\(otpSuffix)"
        let code = SecureRandom.code(length: app.config.otp.length, alphabet: app.alphabet)
        let idempotencyKey = request.idempotencyKey.map { Digest.hex(Digest.sha256(Array($0.utf8)).prefix(16)) }
        let otpKey = keys.otp(app.id, userID, purpose: request.purpose)
        let quotaKey = keys.quota(app.id, userID)
        let userKey = keys.user(app.id, userID)
        let idempotencyRecord = keys.idempotency(app.id, userID, key: idempotencyKey ?? "-")
        /// Undoes a send that created an OTP: delivery failed, or the client IP was over its quota.
        @Sendable func undo(created: Bool) async {
            _ = try? await redis.evalScript(
                Scripts.cancelSend,
                keys: [RedisArgument(otpKey), RedisArgument(quotaKey), RedisArgument(idempotencyRecord), RedisArgument(userKey)],
                arguments: [RedisArgument(otpSuffix), created ? "1" : "0"])
        }

        // The client IP's quota has a hash tag of its own, so it is a script of its own. It runs
        // alongside the send script (both leave in one write on the same connection) and is
        // reconciled after: the rare send that loses on the IP quota is undone.
        async let ipVerdict = takeIPQuota(app: app, ip: request.clientIP)
        let sent: Result<RESPValue, RedisError>
        do {
            sent = .success(
                try await redis.evalScript(
                    Scripts.send,
                    keys: [RedisArgument(userKey), RedisArgument(otpKey), RedisArgument(quotaKey), RedisArgument(idempotencyRecord)],
                    arguments: [
                        RedisArgument(scriptMode), RedisArgument(otpSuffix),
                        RedisArgument(bytes: codeHash(app: app.id, otpID: otpID, code: code)),
                        RedisArgument(channel.rawValue), RedisArgument(app.config.otp.ttlSeconds * 1000),
                        RedisArgument(app.config.otp.resendCooldownSeconds * 1000),
                        RedisArgument(app.config.limits.sendsPerIdentifierPerHour), idempotencyKey == nil ? "0" : "1",
                        RedisArgument(userID), RedisArgument(identifier.field), RedisArgument(identifier.value),
                        RedisArgument(request.firstName ?? ""), RedisArgument(request.lastName ?? ""),
                        RedisArgument(max(86400, app.config.otp.ttlSeconds)),
                    ]))
        } catch {
            sent = .failure(error)
        }
        let ip = await ipVerdict
        let reply: RESPValue
        switch (sent, ip) {
        case (.failure(let error), _):
            if case .taken = ip { await giveBackIPQuota(app: app, ip: request.clientIP) }
            throw error
        case (.success(let value), .taken), (.success(let value), .notCounted):
            reply = value
        case (.success(let value), .overQuota), (.success(let value), .failed):
            let fields = value.array ?? []
            if let status = fields.first?.string, status == "ok" || status == "decoy" {
                await undo(created: fields.count > 2 && fields[2].int == 1)
            }
            if case .overQuota(let retryAfter) = ip { throw OTPError.tooManySendsFromIP(retryAfter: retryAfter) }
            if case .failed(let error) = ip { throw error }
            reply = value
        }
        let fields = reply.array ?? []
        let status = fields.first?.string ?? ""
        let refusal: OTPError?
        switch status {
        case "ok", "decoy", "idem": refusal = nil
        case "exists": refusal = .userAlreadyExists
        case "no_user": refusal = .userNotFound
        case "blocked": refusal = .userBlocked
        case "tg_unlinked": refusal = .telegramNotLinked
        case "cooldown": refusal = .resendCooldown(retryAfter: fields.count > 1 ? fields[1].int ?? 1 : 1)
        case "rate": refusal = .tooManySends(retryAfter: fields.count > 1 ? fields[1].int ?? 1 : 1)
        default: throw RedisError(.protocolError, "unexpected reply from the send script: \(status)")
        }
        if let refusal {
            await giveBackIPQuota(app: app, ip: request.clientIP)
            throw refusal
        }
        let storedID = fields.count > 1 ? fields[1].string ?? otpID : otpID
        let created = fields.count > 2 && fields[2].int == 1
        guard status == "ok" else {
            return SendResult(otpID: storedID, userCreated: created, channel: channel, delivered: false)
        }

        let recipient = channel == .telegram ? (fields.count > 3 ? fields[3].string ?? "" : "") : identifier.value
        let (subject, text) = app.message(channel: channel, language: request.language, code: code)
        let provider = providers[channel]
        let start = ContinuousClock.now
        do {
            guard let provider else {
                throw DeliveryError(provider: "none", reason: "no gateway for channel \(channel.rawValue)")
            }
            try await provider.deliver(
                OutboundMessage(
                    channel: OutboundMessage.Channel(rawValue: channel.rawValue)!, to: recipient, subject: subject, text: text,
                    reference: otpID))
            onDelivery(channel.rawValue, provider.name, true, ContinuousClock.now - start)
        } catch {
            onDelivery(channel.rawValue, provider?.name ?? "none", false, ContinuousClock.now - start)
            logger.warning("delivery failed", metadata: ["app": "\(app.id)", "channel": "\(channel.rawValue)", "error": "\(error)"])
            // Leave no usable OTP behind, and give back the quota the send took.
            await undo(created: created)
            await giveBackIPQuota(app: app, ip: request.clientIP)
            throw OTPError.deliveryFailed
        }
        return SendResult(otpID: otpID, userCreated: created, channel: channel, delivered: true)
    }

    func resolveChannel(_ requested: String?, identifier: Identifier, app: AppPolicy) throws(OTPError) -> Configuration.Channel {
        let channel: Configuration.Channel
        if let requested {
            guard let parsed = Configuration.Channel(rawValue: requested) else {
                throw .channelNotSupported("unknown channel '\(requested)'; use email, sms, call or telegram")
            }
            channel = parsed
        } else {
            channel = identifier.defaultChannel
        }
        guard app.config.channels.contains(channel) else {
            throw .channelNotSupported("app '\(app.id)' does not enable the \(channel.rawValue) channel")
        }
        guard identifier.canUse(channel) else {
            throw .channelNotSupported("the \(channel.rawValue) channel cannot reach a\(identifier.field == "email" ? "n email address" : " phone number")")
        }
        return channel
    }

    enum IPVerdict: Sendable {
        case notCounted, taken, overQuota(retryAfter: Int), failed(RedisError)
    }

    /// Takes one send from the client IP's hourly quota. Never throws: the caller reconciles.
    func takeIPQuota(app: AppPolicy, ip: String?) async -> IPVerdict {
        guard let ip else { return .notCounted }
        do {
            let reply = try await redis.evalScript(
                Scripts.ipQuota, keys: [RedisArgument(keys.ipQuota(app.id, ip: ip))],
                arguments: [RedisArgument(app.config.limits.sendsPerIPPerHour), "1"])
            if let fields = reply.array, fields.first?.string == "rate" {
                return .overQuota(retryAfter: fields.count > 1 ? fields[1].int ?? 1 : 1)
            }
            return .taken
        } catch {
            return .failed(error)
        }
    }

    func giveBackIPQuota(app: AppPolicy, ip: String?) async {
        guard let ip else { return }
        _ = try? await redis.evalScript(
            Scripts.ipQuota, keys: [RedisArgument(keys.ipQuota(app.id, ip: ip))],
            arguments: [RedisArgument(app.config.limits.sendsPerIPPerHour), "-1"])
    }
}
