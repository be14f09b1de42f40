public import Delivery
public import Logging
public import OTPCrypto
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
    /// Telegram's Gateway API: the telegram channel to phone numbers with no linked chat.
    let telegramGateway: (any DeliveryProvider)?
    /// Seconds a code the Telegram bot hands out stays valid.
    let botCodeLifetime: Int
    /// Codes one chat gets from the bot per hour.
    let botCodesPerChatPerHour: Int
    /// Wrong checks a channel-API code survives.
    let channelAPIMaxAttempts: Int
    let logger: Logger
    /// Told of every message handed to a gateway (for metrics): channel, provider, delivered, duration.
    let onDelivery: @Sendable (String, String, Bool, Duration) -> Void
    /// Told of every security event (for metrics), after it is logged.
    let onSecurityEvent: @Sendable (SecurityEvent) -> Void
    /// Told of every code sent and every code judged (for metrics).
    let onOutcome: @Sendable (EngineOutcome) -> Void
    let deliveryTimings = DeliveryTimings()
    /// scrypt on threads of its own (at most one hash per core at once, a bounded queue).
    public let passwordHasher: PasswordHasher

    public convenience init(
        configuration: Configuration, redis: RedisClient,
        providers: [DeliveryChannel: any DeliveryProvider], logger: Logger,
        onDelivery: @escaping @Sendable (String, String, Bool, Duration) -> Void = { _, _, _, _ in },
        onSecurityEvent: @escaping @Sendable (SecurityEvent) -> Void = { _ in },
        onOutcome: @escaping @Sendable (EngineOutcome) -> Void = { _ in }
    ) {
        self.init(
            configuration: configuration, store: OTPStore(redis: redis, keyPrefix: configuration.redis.keyPrefix),
            providers: providers, logger: logger, onDelivery: onDelivery, onSecurityEvent: onSecurityEvent,
            onOutcome: onOutcome)
    }

    /// `store`'s clock (tests of the engine set one) is the engine's too: tokens' `iat` and
    /// `exp` and the hub's socket leases read it.
    init(
        configuration: Configuration, store: OTPStore, providers: [DeliveryChannel: any DeliveryProvider],
        logger: Logger, onDelivery: @escaping @Sendable (String, String, Bool, Duration) -> Void = { _, _, _, _ in },
        onSecurityEvent: @escaping @Sendable (SecurityEvent) -> Void = { _ in },
        onOutcome: @escaping @Sendable (EngineOutcome) -> Void = { _ in }
    ) {
        self.apps = Dictionary(configuration.apps.map { ($0.id, AppPolicy($0)) }, uniquingKeysWith: { a, _ in a })
        self.store = store
        self.pepper = Array(configuration.security.pepper.utf8)
        self.providers = providers
        let policy = GatewayPolicy(
            timeoutMilliseconds: configuration.delivery.timeoutMilliseconds, retries: configuration.delivery.retries)
        self.telegramGateway = configuration.delivery.telegramGateway.map {
            TelegramGatewayProvider(
                baseURL: $0.baseURL, token: $0.token, callbackURL: $0.callbackURL, senderUsername: $0.senderUsername,
                policy: policy)
        }
        if case .telegram(let bot) = configuration.delivery.telegram {
            self.botCodeLifetime = bot.codeLifetime ?? 300
            self.botCodesPerChatPerHour = bot.codesPerChatPerHour
        } else {
            self.botCodeLifetime = 300
            self.botCodesPerChatPerHour = 10
        }
        self.channelAPIMaxAttempts = configuration.surfaces.channelAPI?.maxAttempts ?? 5
        self.logger = logger
        self.onDelivery = onDelivery
        self.onSecurityEvent = onSecurityEvent
        self.onOutcome = onOutcome
        self.passwordHasher = PasswordHasher()
    }

    /// The app `id` names, if it exists and is enabled.
    public func app(_ id: String) throws(OTPError) -> AppPolicy {
        guard let app = apps[id] else { throw .appNotFound(id) }
        guard app.config.enabled else { throw .appDisabled(id) }
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

    /// What a reset code's hash is bound to: the app, the user and the purpose. The reset API
    /// names no OTP id (the client sends the email and the code), and a user has one live reset
    /// code at most, so the code's context needs none.
    func resetCodeContext(userID: String) -> String { "\(userID).\(Purpose.reset.rawValue)" }

    // MARK: send

    public enum SendMode: Sendable {
        /// v1 register: creates the user (unverified until activation); 409 for an active user.
        case register
        /// v1 login: the user must exist (or, with conceal_unknown_users, a decoy is made).
        case login
        /// A password-reset code (`POST /auth/otp`): like login, under the purpose `reset`.
        case passwordReset
        /// Project verify and the hub: like register for a new identifier when the app's
        /// registration is open (an unverified user is created), otherwise like login; an
        /// existing user, verified or not, gets a code.
        case signIn
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
            (self.identifier, self.channel, self.language, self.firstName, self.lastName, self.clientIP, self.idempotencyKey)
                = (identifier, channel, language, firstName, lastName, clientIP, idempotencyKey)
        }
    }

    public struct SendResult: Sendable, Hashable {
        public var otpID: String
        public var channel: DeliveryChannel
        /// False when an idempotent retry or a concealed unknown user sent nothing.
        public var delivered: Bool
    }

    /// Sends a new code: checks the identifier, the channel and the app's rules, takes the
    /// client's (and, for SMS and calls, the app's) hourly quota, creates the OTP under the
    /// identifier's quotas, and delivers it. A send refused by a quota leaves the identifier's
    /// earlier code, cooldown and quotas as they were; a refusal of the identifier still spends
    /// the client's quota (probing is metered); a failed delivery leaves no usable code, and
    /// gives the quotas back only when no gateway was reached (a gateway that answered, even
    /// to refuse the number, billed the call).
    public func send(_ request: SendRequest, appID: String, mode: SendMode) async throws(OTPError) -> SendResult {
        let app = try app(appID)
        guard let identifier = Identifier(request.identifier) else { throw .invalidIdentifier }
        let code = SecureRandom.code(length: app.config.otp.length, alphabet: app.alphabet)
        let purpose: Purpose = mode == .passwordReset ? .reset : .auth
        let suffix = "\(purpose.rawValue)\(Base64URL.encode(SecureRandom.bytes(16)))"
        return try await send(request, identifier: identifier, app: app, mode: mode, purpose: purpose, suffix: suffix, code: code)
    }

    /// The send every surface shares; `suffix` is the otp_id after the user id (its first
    /// character the purpose), `code` the code to deliver.
    func send(
        _ request: SendRequest, identifier: Identifier, app: AppPolicy, mode: SendMode, purpose: Purpose, suffix: String,
        code: String
    ) async throws(OTPError) -> SendResult {
        let channel = try resolveChannel(request.channel, identifier: identifier, app: app)
        try checkNames(request)
        if mode == .register, app.config.registration != .open { throw .registrationClosed }
        let otp = newOTP(
            request, identifier: identifier, channel: channel, app: app, mode: storeMode(mode, app: app), purpose: purpose,
            suffix: suffix, code: code)
        let sent = try await withReservations(
            sendCounters(channel: channel, app: app, clientIP: request.clientIP), app: app, giveBack: Self.giveBack
        ) { () async throws(OTPError) -> Sent in
            let outcome = try await store.send(otp)
            guard case .created(let otpID, let userCreated, let chat) = outcome else { return .answered(outcome) }
            do throws(Undelivered) {
                let carrier = try await deliver(code: code, of: otp, chat: chat, language: request.language, app: app)
                return .delivered(SendResult(otpID: otpID, channel: carrier, delivered: true))
            } catch {
                // No usable code is left either way; the quotas follow `giveBack`.
                await store.cancelSend(otp, userCreated: userCreated, keepQuota: error.gatewayReached)
                return .undelivered(error)
            }
        }
        switch sent {
        case .delivered(let result):
            onOutcome(.codeSent(app: app.id, channel: result.channel))
            return result
        case .undelivered(let failure):
            throw failure.error
        case .answered(.decoy(let otpID)):
            record(.concealedLogin, app: app, userID: otp.userID, clientIP: request.clientIP)
            // As long as a real delivery on this channel takes, so timing tells nothing.
            try? await Task.sleep(for: deliveryTimings.typical(channel))
            onOutcome(.codeSent(app: app.id, channel: channel))
            return SendResult(otpID: otpID, channel: channel, delivered: true)
        case .answered(.replayed(let otpID, _)):
            return SendResult(otpID: otpID, channel: channel, delivered: false)
        case .answered(let refusal):
            throw Self.refusal(refusal)
        }
    }

    /// What a send came to, for its quotas.
    enum Sent {
        case delivered(SendResult)
        case undelivered(Undelivered)
        /// The send script answered without creating a code to deliver (a decoy, a replay, a refusal).
        case answered(OTPStore.SendOutcome)
    }

    /// The quotas a send gives back. A delivered code, and a concealed unknown user's decoy
    /// (answered as a real send), spend them all. A gateway that was reached billed the call
    /// (and a provider that refuses a number flags the account that keeps trying), so a failed
    /// delivery gives them back only when no gateway was reached. A replayed send and a
    /// refusal of the identifier keep the client's quota (probing is metered) and give the
    /// others back.
    static func giveBack(_ sent: Sent) -> GiveBack {
        switch sent {
        case .delivered, .answered(.decoy): return .none
        case .undelivered(let failure): return failure.gatewayReached ? .none : .all
        case .answered: return .allButClient
        }
    }

    static func refusal(_ outcome: OTPStore.SendOutcome) -> OTPError {
        switch outcome {
        case .userExists: return .userAlreadyExists
        case .userNotFound: return .userNotFound
        case .telegramNotLinked: return .telegramNotLinked
        case .locked(let seconds): return .identifierLocked(retryAfter: seconds)
        case .cooldown(let seconds): return .resendCooldown(retryAfter: seconds)
        case .rateLimited(let seconds): return .tooManySends(retryAfter: seconds)
        case .created, .decoy, .replayed: return .deliveryFailed
        }
    }

    /// Names are at most 100 characters and hold no control characters.
    func checkNames(_ request: SendRequest) throws(OTPError) {
        for (field, value) in [("first_name", request.firstName), ("last_name", request.lastName)] {
            guard let value else { continue }
            guard value.count <= 100 else { throw .invalidField(name: field, reason: "is longer than 100 characters") }
            guard !value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw .invalidField(name: field, reason: "holds a control character")
            }
        }
    }

    /// How the store treats the user for a send in `mode`.
    func storeMode(_ mode: SendMode, app: AppPolicy) -> OTPStore.SendMode {
        switch mode {
        case .register: return .register
        case .signIn where app.config.registration == .open: return .upsert
        case .login, .signIn, .passwordReset: return app.config.concealUnknownUsers ? .loginConcealed : .login
        }
    }

    func newOTP(
        _ request: SendRequest, identifier: Identifier, channel: DeliveryChannel, app: AppPolicy,
        mode: OTPStore.SendMode, purpose: Purpose, suffix: String, code: String
    ) -> OTPStore.NewOTP {
        let userID = userID(app: app.id, identifier: identifier)
        let context = purpose == .reset ? resetCodeContext(userID: userID) : "\(userID).\(suffix)"
        return OTPStore.NewOTP(
            app: app.id, userID: userID, purpose: purpose, suffix: suffix,
            codeHash: codeHash(app: app.id, otpID: context, code: code), channel: channel,
            mode: mode,
            identifier: identifier, firstName: request.firstName ?? "", lastName: request.lastName ?? "",
            ttlSeconds: app.config.otp.ttlSeconds, cooldownSeconds: app.config.otp.resendCooldownSeconds,
            sendsPerHour: app.config.limits.sendsPerIdentifierPerHour,
            idempotencyKey: request.idempotencyKey.map { Digest.hex(Digest.sha256(Array($0.utf8)).prefix(16)) },
            telegramGatewayAllowed: channel == .telegram && identifier.field == "phone" && telegramGateway != nil)
    }

    /// Why a code was not delivered, and whether a gateway was reached on the way (then the
    /// send's quotas stay spent: see `DeliveryError.gatewayReached`).
    struct Undelivered: Error {
        var error: OTPError
        var gatewayReached: Bool
    }

    /// Hands the code to its gateway and returns the channel that carried it, or throws.
    ///
    /// The telegram channel goes to the linked chat through the bot; with no chat (a phone
    /// number) it goes through the Telegram Gateway. When a gateway refuses the recipient
    /// (the Telegram Gateway or WhatsApp: the number is not on it) and the app names a
    /// fallback for the channel (`fallback: {telegram: sms, whatsapp: sms}`), the same code
    /// goes by SMS — under the same rules as any SMS (allowed countries, the app's hourly SMS
    /// and calls).
    /// `appName`, when given, replaces the app's name in the message (Twilio Verify's
    /// `CustomFriendlyName`).
    func deliver(
        code: String, of otp: OTPStore.NewOTP, chat: String?, language: String?, app: AppPolicy, appName: String? = nil
    ) async throws(Undelivered) -> DeliveryChannel {
        let (subject, text) = app.message(channel: otp.channel, language: language, code: code, appName: appName)
        let message = OutboundMessage(
            channel: otp.channel, to: chat ?? otp.identifier.value, subject: subject, text: text, reference: otp.otpID,
            code: code, ttlSeconds: otp.ttlSeconds, language: language ?? app.config.defaultLanguage)
        let provider = otp.channel == .telegram && chat == nil ? telegramGateway ?? providers[.telegram] : providers[otp.channel]
        let fallback: DeliveryChannel
        do {
            try await hand(message, to: provider, app: app.id)
            return otp.channel
        } catch let refusal {
            guard refusal.recipientRefused, let configured = app.config.fallback[otp.channel] else {
                throw Undelivered(error: .deliveryFailed, gatewayReached: refusal.gatewayReached)
            }
            fallback = configured
        }
        // The gateway was reached (it refused the number): from here on the quotas stay spent.
        let second = OutboundMessage(
            channel: fallback, to: otp.identifier.value,
            text: app.message(channel: fallback, language: language, code: code, appName: appName).text, reference: otp.otpID)
        guard (try? resolveChannel(fallback.rawValue, identifier: otp.identifier, app: app, enabledOnly: false)) != nil
        else { throw Undelivered(error: .deliveryFailed, gatewayReached: true) }
        let failure: DeliveryError?
        do throws(OTPError) {
            failure = try await withReservations(
                sendCounters(channel: fallback, app: app, clientIP: nil), app: app,
                giveBack: { (failure: DeliveryError?) in failure?.gatewayReached == false ? .all : .none }
            ) { () async throws(OTPError) -> DeliveryError? in
                do throws(DeliveryError) {
                    try await hand(second, to: providers[fallback], app: app.id)
                    return nil
                } catch {
                    return error
                }
            }
        } catch {
            throw Undelivered(error: error, gatewayReached: true)
        }
        guard failure == nil else { throw Undelivered(error: .deliveryFailed, gatewayReached: true) }
        return fallback
    }

    /// One message to one gateway, timed and counted; a failure is logged (never the text).
    func hand(_ message: OutboundMessage, to provider: (any DeliveryProvider)?, app: String) async throws(DeliveryError) {
        let start = ContinuousClock.now
        do throws(DeliveryError) {
            guard let provider else {
                throw DeliveryError(provider: "none", reason: "no gateway for channel \(message.channel.rawValue)")
            }
            try await provider.deliver(message)
            let duration = ContinuousClock.now - start
            deliveryTimings.record(duration, channel: message.channel)
            onDelivery(message.channel.rawValue, provider.name, true, duration)
        } catch {
            onDelivery(message.channel.rawValue, provider?.name ?? "none", false, ContinuousClock.now - start)
            logger.warning(
                "delivery failed", metadata: ["app": "\(app)", "channel": "\(message.channel.rawValue)", "error": "\(error)"])
            throw error
        }
    }

    func resolveChannel(
        _ requested: String?, identifier: Identifier, app: AppPolicy, enabledOnly: Bool = true
    ) throws(OTPError) -> DeliveryChannel {
        let channel: DeliveryChannel
        if let requested {
            guard let parsed = DeliveryChannel(rawValue: requested) else {
                throw .channelNotSupported("unknown channel '\(requested)'; use \(DeliveryChannel.spelledOut)")
            }
            channel = parsed
        } else {
            channel = identifier.defaultChannel
        }
        guard !enabledOnly || app.config.channels.contains(channel) else {
            throw .channelNotSupported("app '\(app.id)' does not enable the \(channel.rawValue) channel")
        }
        guard identifier.canUse(channel) else {
            throw .channelNotSupported("the \(channel.rawValue) channel cannot reach a\(identifier.field == "email" ? "n email address" : " phone number")")
        }
        // SMS pumping: messages to countries the app does not serve cost money and reach nobody.
        let countries = app.config.limits.allowedCountryCodes
        if channel.traits.isPaid, !countries.isEmpty,
            !countries.contains(where: { identifier.value.dropFirst().hasPrefix($0) })
        {
            throw .countryNotAllowed
        }
        return channel
    }
}
