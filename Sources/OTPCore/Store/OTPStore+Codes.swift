import Delivery
import RedisClient

// Sign-in codes: send one, take back a send that was not delivered, activate, check.

extension OTPStore {
    /// How a send treats the identifier's user.
    enum SendMode: String, Sendable {
        /// Creates the user (unverified until activation); refused for an active user.
        case register
        /// The user must exist.
        case login
        /// Like login, but an unknown identifier gets a decoy OTP that never activates.
        case loginConcealed = "login_conceal"
        /// Creates the user (unverified) when there is none, else sends to the existing one.
        case upsert
    }

    /// A code about to be sent, with the quotas that guard it and the user a register creates.
    struct NewOTP: Sendable {
        var app: String
        var userID: String
        var purpose: Purpose
        /// The otp_id after `userID.`.
        var suffix: String
        var codeHash: [UInt8]
        var channel: DeliveryChannel
        var mode: SendMode
        var identifier: Identifier
        var firstName: String
        var lastName: String
        var ttlSeconds: Int
        var cooldownSeconds: Int
        var sendsPerHour: Int
        /// The hashed `Idempotency-Key`, if the client sent one.
        var idempotencyKey: String?
        /// The telegram channel may go ahead without a linked chat (a phone number, and the
        /// Telegram Gateway configured).
        var telegramGatewayAllowed = false

        var otpID: String { "\(userID).\(suffix)" }
    }

    enum SendOutcome: Sendable, Hashable {
        case created(otpID: String, userCreated: Bool, telegramChat: String?)
        /// A concealed unknown user: an OTP that never activates, and nothing to deliver.
        case decoy(otpID: String)
        /// The same `Idempotency-Key` was answered before: its otp_id, nothing sent again.
        case replayed(otpID: String, userCreated: Bool)
        case userExists
        case userNotFound
        case telegramNotLinked
        /// Too many wrong codes in a row: the identifier's codes are refused until the lockout ends.
        case locked(retryAfter: Int)
        case cooldown(retryAfter: Int)
        case rateLimited(retryAfter: Int)
    }

    func send(_ otp: NewOTP) async throws(OTPError) -> SendOutcome {
        try await run(Scripts.send, otp)
    }

    /// How long an unverified user lives after it is created: a day, or as long as its code
    /// if that is longer. An activation (or a password reset) makes it permanent.
    static func unverifiedUserTTLSeconds(otpTTLSeconds: Int) -> Int { max(86_400, otpTTLSeconds) }

    /// Undoes a send whose code could not be delivered: deletes that OTP, forgets the
    /// idempotency record, and deletes a user the send created; gives back the send and the
    /// cooldown unless `keepQuota` (the gateway was reached: the send counts). Best effort: a
    /// failure leaves an OTP nobody knows.
    func cancelSend(_ otp: NewOTP, userCreated: Bool, keepQuota: Bool) async {
        _ = try? await run(Scripts.cancelSend, (otp, userCreated, keepQuota))
    }

    /// A code presented for an OTP, and what a right code starts: a refresh-token family.
    struct Activation: Sendable {
        var app: String
        var userID: String
        var purpose: Purpose
        var suffix: String
        var codeHash: [UInt8]
        var limits: CodeLimits
        var refreshTokenHash: String
        var familyID: String
        var refreshTTLSeconds: Int
        var sessionMaxSeconds: Int
        /// The hub's `set_password`: the hash of the secret `otp.verify` answered, which the OTP
        /// must hold, and the password hash stored on success.
        var proofHash: String? = nil
        var passwordHash: String? = nil
    }

    /// The app's limits a script that judges a code applies (the Lua helper `judge_code`).
    struct CodeLimits: Sendable, Hashable {
        var maxAttempts: Int
        var failuresPerHour: Int
        /// For the Retry-After of a dead OTP: when may a new code be sent.
        var sendsPerHour: Int
        var maxConsecutiveFailures: Int
        var lockoutSeconds: Int
    }

    /// Why a script that judges a code (the Lua helper `judge_code`: `activate`, `check`,
    /// `resetPassword`) did not accept it.
    enum CodeRefusal: Sendable, Hashable {
        /// Unknown, expired or used.
        case notFound
        /// Wrong; `lockedNow` when this guess reached the maximum in a row and locked the identifier.
        case invalid(attemptsRemaining: Int, lockedNow: Bool)
        /// The OTP's attempts are spent; a new code may be sent in `retryAfter` s.
        case exhausted(retryAfter: Int)
        /// Too many wrong codes in a row (across OTPs): codes refused until the lockout ends.
        case identifierLocked(retryAfter: Int)
        /// Too many wrong codes this hour.
        case locked(retryAfter: Int)

        /// A wrong code, or any check of a code whose attempts are spent (a spent code is dead,
        /// and checking it again is a refused attempt): the refusals that keep the client's
        /// failure unit. The others (no such code, the identifier's own limits) give it back.
        var countsAgainstClient: Bool {
            switch self {
            case .invalid, .exhausted: return true
            case .notFound, .identifierLocked, .locked: return false
            }
        }
    }

    enum ActivateOutcome: Sendable, Hashable {
        /// Signed in; the refresh token lives `refreshTTL` seconds.
        case activated(User, refreshTTL: Int)
        case refused(CodeRefusal)
    }

    func activate(_ activation: Activation) async throws(OTPError) -> ActivateOutcome {
        try await run(Scripts.activate, activation)
    }

    /// A user's live OTP of one purpose, as a surface that names the identifier (not the otp_id)
    /// finds it before activating it.
    struct LiveOTP: Sendable, Hashable {
        /// The otp_id after `userID.`.
        var suffix: String
        /// The hub's proof (`otp.verify`'s secret, hashed), when there is one.
        var proofHash: String?
    }

    /// The live OTP of a user for a purpose, or nil when there is none (also a cheap look
    /// before costly work; the script that follows decides).
    func liveOTP(app: String, userID: String, purpose: Purpose) async throws(OTPError) -> LiveOTP? {
        let key = keys.otp(app, userID, purpose: purpose)
        let reply = try await storage { try await redis.send(["HMGET", RedisArgument(key), "i", "v"]) }
        guard let fields = reply.array, fields.count == 2, let suffix = fields[0].string else { return nil }
        return LiveOTP(suffix: suffix, proofHash: fields[1].string)
    }

    /// A code checked without consuming it, under the same guards as `Activation`.
    struct Check: Sendable {
        var app: String
        var userID: String
        var purpose: Purpose
        var suffix: String
        var codeHash: [UInt8]
        var limits: CodeLimits
        /// Stored in the OTP when the code is right, for the activation that consumes it ('':
        /// store nothing, the hub's set_password judging its code before it hashes).
        var proofHash: String
        /// When set, the OTP must hold this proof (what otp.verify stored) or it is not found.
        var requiredProofHash: String? = nil
        /// An unknown user's decoy OTP is judged like a real one (conceal_unknown_users), so
        /// no answer tells the user is missing; otherwise an unknown user is `noUser`.
        var concealUnknownUser = false
    }

    enum CheckOutcome: Sendable, Hashable {
        /// Right; the proof holds until the OTP expires (Unix ms).
        case verified(expiresAtMilliseconds: Int)
        case noUser
        case refused(CodeRefusal)
    }

    func check(_ check: Check) async throws(OTPError) -> CheckOutcome {
        try await run(Scripts.check, check)
    }
}

extension Scripts {
    static let send = StoreScript<OTPStore.NewOTP, OTPStore.SendOutcome>(
        "send", lua: PackageResources.send_lua,
        keys: [
            "user_key": { o, k in k.user(o.app, o.userID) },
            "otp_key": { o, k in k.otp(o.app, o.userID, purpose: o.purpose) },
            "own_quota_key": { o, k in k.quota(o.app, o.userID) },
            // any key of the tag when the client sent no Idempotency-Key
            "idempotency_key": { o, k in k.idempotency(o.app, o.userID, key: o.idempotencyKey ?? "-") },
        ],
        arguments: [
            "mode": { o, _ in RedisArgument(o.mode.rawValue) },
            "otp_suffix": { o, _ in RedisArgument(o.suffix) },
            "code_hash": { o, _ in RedisArgument(bytes: o.codeHash) },
            "channel": { o, _ in RedisArgument(o.channel.rawValue) },
            "ttl_ms": { o, _ in RedisArgument(o.ttlSeconds * 1000) },
            "cooldown_ms": { o, _ in RedisArgument(o.cooldownSeconds * 1000) },
            "sends_per_hour": { o, _ in RedisArgument(o.sendsPerHour) },
            "idempotent": { o, _ in RedisArgument(o.idempotencyKey == nil ? "0" : "1") },
            "user_id": { o, _ in RedisArgument(o.userID) },
            "identifier_field": { o, _ in RedisArgument(o.identifier.field) },
            "identifier": { o, _ in RedisArgument(o.identifier.value) },
            "first_name": { o, _ in RedisArgument(o.firstName) },
            "last_name": { o, _ in RedisArgument(o.lastName) },
            "unverified_ttl_ms": { o, _ in
                RedisArgument(OTPStore.unverifiedUserTTLSeconds(otpTTLSeconds: o.ttlSeconds) * 1000)
            },
            "telegram_gateway_allowed": { o, _ in RedisArgument(o.telegramGatewayAllowed ? "1" : "0") },
        ]
    ) { reply throws(OTPError) in
        switch reply.status {
        case "created":
            let chat = try reply.string(3)
            return .created(otpID: try reply.string(1), userCreated: try reply.int(2) == 1, telegramChat: chat.isEmpty ? nil : chat)
        case "decoy": return .decoy(otpID: try reply.string(1))
        case "replay": return .replayed(otpID: try reply.string(1), userCreated: try reply.int(2) == 1)
        case "exists": return .userExists
        case "no_user": return .userNotFound
        case "tg_unlinked": return .telegramNotLinked
        case "locked": return .locked(retryAfter: try reply.int(1))
        case "cooldown": return .cooldown(retryAfter: try reply.int(1))
        case "rate": return .rateLimited(retryAfter: try reply.int(1))
        default: throw reply.unexpected()
        }
    }

    static let cancelSend = StoreScript<(otp: OTPStore.NewOTP, userCreated: Bool, keepQuota: Bool), Void>(
        "cancelSend", lua: PackageResources.cancelSend_lua,
        keys: [
            "otp_key": { c, k in k.otp(c.otp.app, c.otp.userID, purpose: c.otp.purpose) },
            "own_quota_key": { c, k in k.quota(c.otp.app, c.otp.userID) },
            "idempotency_key": { c, k in k.idempotency(c.otp.app, c.otp.userID, key: c.otp.idempotencyKey ?? "-") },
            "user_key": { c, k in k.user(c.otp.app, c.otp.userID) },
        ],
        arguments: [
            "otp_suffix": { c, _ in RedisArgument(c.otp.suffix) },
            "user_created": { c, _ in RedisArgument(c.userCreated ? "1" : "0") },
            "keep_quota": { c, _ in RedisArgument(c.keepQuota ? "1" : "0") },
        ]
    ) { _ in }

    static let activate = StoreScript<OTPStore.Activation, OTPStore.ActivateOutcome>(
        "activate", lua: PackageResources.activate_lua,
        keys: [
            "otp_key": { a, k in k.otp(a.app, a.userID, purpose: a.purpose) },
            "own_quota_key": { a, k in k.quota(a.app, a.userID) },
            "user_key": { a, k in k.user(a.app, a.userID) },
            "token_key": { a, k in k.refreshToken(a.app, a.userID, hash: a.refreshTokenHash) },
            "family_key": { a, k in k.familyPrefix(a.app, a.userID) + a.familyID },
        ],
        arguments: [
            "otp_suffix": { a, _ in RedisArgument(a.suffix) },
            "code_hash": { a, _ in RedisArgument(bytes: a.codeHash) },
            "max_attempts": { a, _ in RedisArgument(a.limits.maxAttempts) },
            "failures_per_hour": { a, _ in RedisArgument(a.limits.failuresPerHour) },
            "sends_per_hour": { a, _ in RedisArgument(a.limits.sendsPerHour) },
            "max_in_a_row": { a, _ in RedisArgument(a.limits.maxConsecutiveFailures) },
            "lockout_ms": { a, _ in RedisArgument(a.limits.lockoutSeconds * 1000) },
            "refresh_ttl_s": { a, _ in RedisArgument(a.refreshTTLSeconds) },
            "session_max_s": { a, _ in RedisArgument(a.sessionMaxSeconds) },
            "family_id": { a, _ in RedisArgument(a.familyID) },
            "user_id": { a, _ in RedisArgument(a.userID) },
            "proof_hash": { a, _ in RedisArgument(a.proofHash ?? "") },
            "password_hash": { a, _ in RedisArgument(a.passwordHash ?? "") },
        ]
    ) { reply throws(OTPError) in
        switch reply.status {
        case "ok": return .activated(try reply.user(), refreshTTL: try reply.int(1))
        default: return .refused(try reply.codeRefusal())
        }
    }

    static let check = StoreScript<OTPStore.Check, OTPStore.CheckOutcome>(
        "check", lua: PackageResources.check_lua,
        keys: [
            "otp_key": { c, k in k.otp(c.app, c.userID, purpose: c.purpose) },
            "own_quota_key": { c, k in k.quota(c.app, c.userID) },
            "user_key": { c, k in k.user(c.app, c.userID) },
        ],
        arguments: [
            "otp_suffix": { c, _ in RedisArgument(c.suffix) },
            "code_hash": { c, _ in RedisArgument(bytes: c.codeHash) },
            "max_attempts": { c, _ in RedisArgument(c.limits.maxAttempts) },
            "failures_per_hour": { c, _ in RedisArgument(c.limits.failuresPerHour) },
            "sends_per_hour": { c, _ in RedisArgument(c.limits.sendsPerHour) },
            "max_in_a_row": { c, _ in RedisArgument(c.limits.maxConsecutiveFailures) },
            "lockout_ms": { c, _ in RedisArgument(c.limits.lockoutSeconds * 1000) },
            "proof_hash": { c, _ in RedisArgument(c.proofHash) },
            "conceal_unknown_user": { c, _ in RedisArgument(c.concealUnknownUser ? "1" : "0") },
            "required_proof_hash": { c, _ in RedisArgument(c.requiredProofHash ?? "") },
        ]
    ) { reply throws(OTPError) in
        switch reply.status {
        case "ok": return .verified(expiresAtMilliseconds: try reply.int(1))
        case "no_user": return .noUser
        default: return .refused(try reply.codeRefusal())
        }
    }
}

extension ScriptReply {
    /// A refusal of `judge_code`: `{'not_found'}`, `{'invalid', remaining, locked now}`,
    /// `{'exhausted', s}`, `{'identifier_locked', s}` or `{'locked', s}`.
    func codeRefusal() throws(OTPError) -> OTPStore.CodeRefusal {
        switch status {
        case "not_found": return .notFound
        case "invalid": return .invalid(attemptsRemaining: try int(1), lockedNow: try int(2) == 1)
        case "exhausted": return .exhausted(retryAfter: try int(1))
        case "identifier_locked": return .identifierLocked(retryAfter: try int(1))
        case "locked": return .locked(retryAfter: try int(1))
        default: throw unexpected()
        }
    }
}
