public import Delivery
public import Logging
import OTPCrypto
public import RedisClient

/// The engine every API surface shares: sends codes, checks them, issues and rotates tokens.
///
/// It knows nothing of HTTP and nothing of Redis: the business rules live here, the data model
/// and its atomic steps in `OTPStore`. Every error it throws is an `OTPError`.
public final class OTPEngine: Sendable {
    public let apps: [String: AppPolicy]
    let store: OTPStore
    let pepper: [UInt8]
    let providers: [DeliveryChannel: any DeliveryProvider]
    let logger: Logger
    /// Told of every message handed to a gateway (for metrics): channel, provider, delivered, duration.
    let onDelivery: @Sendable (String, String, Bool, Duration) -> Void

    public convenience init(
        configuration: Configuration, redis: RedisClient,
        providers: [DeliveryChannel: any DeliveryProvider], logger: Logger,
        onDelivery: @escaping @Sendable (String, String, Bool, Duration) -> Void = { _, _, _, _ in }
    ) {
        self.init(
            configuration: configuration, store: OTPStore(redis: redis, keyPrefix: configuration.redis.keyPrefix),
            providers: providers, logger: logger, onDelivery: onDelivery)
    }

    init(
        configuration: Configuration, store: OTPStore, providers: [DeliveryChannel: any DeliveryProvider],
        logger: Logger, onDelivery: @escaping @Sendable (String, String, Bool, Duration) -> Void
    ) {
        self.apps = Dictionary(configuration.apps.map { ($0.id, AppPolicy($0)) }, uniquingKeysWith: { a, _ in a })
        self.store = store
        self.pepper = Array(configuration.security.pepper.utf8)
        self.providers = providers
        self.logger = logger
        self.onDelivery = onDelivery
    }

    public func app(_ id: String) throws(OTPError) -> AppPolicy {
        guard let app = apps[id] else { throw .appNotFound(id) }
        return app
    }

    /// Loads every script into Redis ahead of the first request.
    public func loadScripts() async throws(OTPError) {
        try await store.loadScripts()
    }

    /// Throws `storageFailed` unless Redis answers within its timeout (for `/readyz`).
    public func checkStorage() async throws(OTPError) {
        try await store.ping()
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

    public enum SendMode: Sendable {
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

        public init(
            identifier: String, channel: String? = nil, language: String? = nil, firstName: String? = nil,
            lastName: String? = nil, clientIP: String? = nil, idempotencyKey: String? = nil
        ) {
            self.identifier = identifier
            self.channel = channel
            self.language = language
            self.firstName = firstName
            self.lastName = lastName
            self.clientIP = clientIP
            self.idempotencyKey = idempotencyKey
        }
    }

    public struct SendResult: Sendable, Hashable {
        public var otpID: String
        public var channel: DeliveryChannel
        /// False when an idempotent retry or a concealed unknown user sent nothing.
        public var delivered: Bool
    }

    /// Sends a new code: checks the identifier, the channel and the app's rules, creates the
    /// OTP under its quotas, and delivers it. A send that fails to deliver leaves nothing behind.
    public func send(_ request: SendRequest, appID: String, mode: SendMode) async throws(OTPError) -> SendResult {
        let app = try app(appID)
        guard let identifier = Identifier(request.identifier) else { throw .invalidIdentifier }
        let channel = try resolveChannel(request.channel, identifier: identifier, app: app)
        if mode == .register, app.config.registration != .open { throw .registrationClosed }
        let code = SecureRandom.code(length: app.config.otp.length, alphabet: app.alphabet)
        let otp = newOTP(request, identifier: identifier, channel: channel, app: app, mode: mode, code: code)

        switch try await storeGuardedByIPQuota(otp, app: app, clientIP: request.clientIP) {
        case .created(let otpID, let userCreated, let chat):
            try await deliver(
                code: code, of: otp, to: chat ?? identifier.value, language: request.language, app: app,
                userCreated: userCreated, clientIP: request.clientIP)
            return SendResult(otpID: otpID, channel: channel, delivered: true)
        case .decoy(let otpID), .replayed(let otpID, _):
            return SendResult(otpID: otpID, channel: channel, delivered: false)
        case .userExists: throw .userAlreadyExists
        case .userNotFound: throw .userNotFound
        case .telegramNotLinked: throw .telegramNotLinked
        case .cooldown(let seconds): throw .resendCooldown(retryAfter: seconds)
        case .rateLimited(let seconds): throw .tooManySends(retryAfter: seconds)
        }
    }

    func newOTP(
        _ request: SendRequest, identifier: Identifier, channel: DeliveryChannel, app: AppPolicy,
        mode: SendMode, code: String
    ) -> OTPStore.NewOTP {
        let userID = userID(app: app.id, identifier: identifier)
        let purpose = Purpose.auth
        let suffix = "\(purpose.rawValue)\(Base64URL.encode(SecureRandom.bytes(16)))"
        return OTPStore.NewOTP(
            app: app.id, userID: userID, purpose: purpose, suffix: suffix,
            codeHash: codeHash(app: app.id, otpID: "\(userID).\(suffix)", code: code), channel: channel,
            mode: mode == .register ? .register : (app.config.concealUnknownUsers ? .loginConcealed : .login),
            identifier: identifier, firstName: request.firstName ?? "", lastName: request.lastName ?? "",
            ttlSeconds: app.config.otp.ttlSeconds, cooldownSeconds: app.config.otp.resendCooldownSeconds,
            sendsPerHour: app.config.limits.sendsPerIdentifierPerHour,
            idempotencyKey: request.idempotencyKey.map { Digest.hex(Digest.sha256(Array($0.utf8)).prefix(16)) })
    }

    /// Runs the send script and the client IP's quota side by side — the IP's quota has a hash
    /// tag of its own, so it is a script of its own; both leave in one write on the same
    /// connection — and reconciles them: the rare send that loses on the IP quota is undone,
    /// and a refused send gives the IP's send back.
    func storeGuardedByIPQuota(
        _ otp: OTPStore.NewOTP, app: AppPolicy, clientIP: String?
    ) async throws(OTPError) -> OTPStore.SendOutcome {
        async let ipVerdict = takeIPQuota(app: app, ip: clientIP)
        let sent: Result<OTPStore.SendOutcome, OTPError>
        do {
            sent = .success(try await store.send(otp))
        } catch {
            sent = .failure(error)
        }
        switch (sent, await ipVerdict) {
        case (.failure(let error), .success(.taken)):
            await giveBackIPQuota(app: app, ip: clientIP)
            throw error
        case (.failure(let error), _):
            throw error
        case (.success(let outcome), .success(.taken)), (.success(let outcome), nil):
            switch outcome {
            case .created, .decoy, .replayed: break
            default: await giveBackIPQuota(app: app, ip: clientIP)
            }
            return outcome
        case (.success(let outcome), .success(.overQuota(let seconds))):
            await undo(outcome, of: otp)
            throw .tooManySendsFromIP(retryAfter: seconds)
        case (.success(let outcome), .failure(let error)):
            await undo(outcome, of: otp)
            throw error
        }
    }

    private func undo(_ outcome: OTPStore.SendOutcome, of otp: OTPStore.NewOTP) async {
        switch outcome {
        case .created(_, let userCreated, _): await store.cancelSend(otp, userCreated: userCreated)
        case .decoy: await store.cancelSend(otp, userCreated: false)
        default: break
        }
    }

    /// Hands the code to the channel's gateway. When that fails, the OTP, the user the send
    /// created and the quota it took are given back, and the client sees `deliveryFailed`.
    func deliver(
        code: String, of otp: OTPStore.NewOTP, to recipient: String, language: String?, app: AppPolicy,
        userCreated: Bool, clientIP: String?
    ) async throws(OTPError) {
        let (subject, text) = app.message(channel: otp.channel, language: language, code: code)
        let provider = providers[otp.channel]
        let start = ContinuousClock.now
        do {
            guard let provider else {
                throw DeliveryError(provider: "none", reason: "no gateway for channel \(otp.channel.rawValue)")
            }
            try await provider.deliver(
                OutboundMessage(
                    channel: otp.channel, to: recipient, subject: subject,
                    text: text, reference: otp.otpID))
            onDelivery(otp.channel.rawValue, provider.name, true, ContinuousClock.now - start)
        } catch {
            onDelivery(otp.channel.rawValue, provider?.name ?? "none", false, ContinuousClock.now - start)
            logger.warning(
                "delivery failed", metadata: ["app": "\(app.id)", "channel": "\(otp.channel.rawValue)", "error": "\(error)"])
            await store.cancelSend(otp, userCreated: userCreated)
            await giveBackIPQuota(app: app, ip: clientIP)
            throw .deliveryFailed
        }
    }

    func resolveChannel(_ requested: String?, identifier: Identifier, app: AppPolicy) throws(OTPError) -> DeliveryChannel {
        let channel: DeliveryChannel
        if let requested {
            guard let parsed = DeliveryChannel(rawValue: requested) else {
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

    /// Takes one send from the client IP's hourly quota; nil when the client IP is unknown.
    /// Never throws: the caller reconciles it with the send.
    func takeIPQuota(app: AppPolicy, ip: String?) async -> Result<OTPStore.IPQuotaOutcome, OTPError>? {
        guard let ip else { return nil }
        do {
            return .success(try await store.takeIPQuota(app: app.id, ip: ip, limit: app.config.limits.sendsPerIPPerHour))
        } catch {
            return .failure(error)
        }
    }

    func giveBackIPQuota(app: AppPolicy, ip: String?) async {
        guard let ip else { return }
        await store.giveBackIPQuota(app: app.id, ip: ip, limit: app.config.limits.sendsPerIPPerHour)
    }
}
