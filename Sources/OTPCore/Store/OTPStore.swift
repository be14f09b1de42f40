import Delivery
import RedisClient

/// The data model under the engine: each Lua script behind one function with named, typed
/// arguments and an enum outcome. Nothing outside this file builds a KEYS or ARGV list or
/// reads a reply string, and `RedisError` stops here: the engine sees `OTPError.storageFailed`.
struct OTPStore: Sendable {
    let redis: RedisClient
    let keys: KeySpace
    /// Where scripts take the time from: nil in production (Redis's `TIME`, one clock for every
    /// replica). Only tests set it (`@testable`), to move through hours without waiting.
    let clock: (@Sendable () -> Int64)?

    init(redis: RedisClient, keyPrefix: String, clock: (@Sendable () -> Int64)? = nil) {
        self.redis = redis
        self.keys = KeySpace(prefix: keyPrefix)
        self.clock = clock
    }

    // MARK: send

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
        let unverifiedTTL = Self.unverifiedUserTTLSeconds(otpTTLSeconds: otp.ttlSeconds) * 1000
        let reply = try await run(
            Scripts.send, "send",
            keys: [
                keys.user(otp.app, otp.userID), keys.otp(otp.app, otp.userID, purpose: otp.purpose),
                keys.quota(otp.app, otp.userID), keys.idempotency(otp.app, otp.userID, key: otp.idempotencyKey ?? "-"),
            ],
            arguments: [
                RedisArgument(otp.mode.rawValue), RedisArgument(otp.suffix), RedisArgument(bytes: otp.codeHash),
                RedisArgument(otp.channel.rawValue), RedisArgument(otp.ttlSeconds * 1000),
                RedisArgument(otp.cooldownSeconds * 1000), RedisArgument(otp.sendsPerHour),
                otp.idempotencyKey == nil ? "0" : "1", RedisArgument(otp.userID),
                RedisArgument(otp.identifier.field), RedisArgument(otp.identifier.value), RedisArgument(otp.firstName),
                RedisArgument(otp.lastName), RedisArgument(unverifiedTTL), otp.telegramGatewayAllowed ? "1" : "0",
            ])
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

    /// How long an unverified user lives after it is created: a day, or as long as its code
    /// if that is longer. An activation (or a password reset) makes it permanent.
    static func unverifiedUserTTLSeconds(otpTTLSeconds: Int) -> Int { max(86_400, otpTTLSeconds) }

    /// Undoes a send whose code could not be delivered: deletes that OTP, forgets the
    /// idempotency record, and deletes a user the send created; gives back the send and the
    /// cooldown unless `keepQuota` (the gateway was reached: the send counts). Best effort: a
    /// failure leaves an OTP nobody knows.
    func cancelSend(_ otp: NewOTP, userCreated: Bool, keepQuota: Bool) async {
        _ = try? await run(
            Scripts.cancelSend, "cancelSend",
            keys: [
                keys.otp(otp.app, otp.userID, purpose: otp.purpose), keys.quota(otp.app, otp.userID),
                keys.idempotency(otp.app, otp.userID, key: otp.idempotencyKey ?? "-"), keys.user(otp.app, otp.userID),
            ],
            arguments: [RedisArgument(otp.suffix), userCreated ? "1" : "0", keepQuota ? "1" : "0"])
    }

    // MARK: hourly counters

    /// A counter with a hash tag of its own, so it is a script of its own beside the action it
    /// guards: taken first, given back when the action did not happen.
    enum HourlyCounter: Sendable, Hashable {
        /// Codes requested from one client (an IPv4 address or an IPv6 /64).
        case clientSends(app: String, client: String)
        /// Wrong codes from one client, across all users.
        case clientFailures(app: String, client: String)
        /// SMS and calls of one app (the SMS-pumping ceiling).
        case appCalls(app: String)
    }

    enum CounterOutcome: Sendable, Hashable {
        case taken
        case overLimit(retryAfter: Int)
    }

    func take(_ counter: HourlyCounter, limit: Int) async throws(OTPError) -> CounterOutcome {
        try Self.counterOutcome(await run(Scripts.hourlyCounter, "hourlyCounter", keys: [key(counter)], arguments: [RedisArgument(limit)]))
    }

    /// Takes several counters at once, each on its own (one round trip on a single server; one
    /// after the other in a cluster): what each answered, in order. The caller gives back
    /// those taken when another refused.
    func take(_ counters: [(counter: HourlyCounter, limit: Int)]) async -> [Result<CounterOutcome, OTPError>] {
        let now = clockArgument()
        let replies = await redis.evalScripts(
            counters.map {
                RedisScriptCall(Scripts.hourlyCounter, keys: [RedisArgument(key($0.counter))], arguments: [now, RedisArgument($0.limit)])
            })
        return replies.map { result in
            switch result {
            case .success(let value):
                do throws(OTPError) {
                    return .success(try Self.counterOutcome(ScriptReply(script: "hourlyCounter", value: value)))
                } catch {
                    return .failure(error)
                }
            case .failure(let error):
                return .failure(.storageFailed(StorageFailure(error)))
            }
        }
    }

    private static func counterOutcome(_ reply: ScriptReply) throws(OTPError) -> CounterOutcome {
        switch reply.status {
        case "ok": return .taken
        case "rate": return .overLimit(retryAfter: try reply.int(1))
        default: throw reply.unexpected()
        }
    }

    /// Gives back what `take` took, and waits for Redis to have done it. Best effort.
    func giveBack(_ counter: HourlyCounter) async {
        _ = try? await run(Scripts.giveBack, "giveBack", keys: [key(counter)], arguments: [])
    }

    /// Gives back what `take` took without waiting for the reply: written at once on the
    /// connection of the caller's event loop, after the commands the caller sent on it before.
    /// Until Redis runs it the counter holds one more unit than it should, as it did while the
    /// action ran: a concurrent take may be refused for it, never granted beyond the limit.
    /// Best effort. False when it could not be sent that way (cluster mode, no open
    /// connection): the caller then awaits `giveBack`.
    @discardableResult
    func giveBackWithoutWaiting(_ counter: HourlyCounter) -> Bool {
        redis.evalScriptWithoutWaiting(RedisScriptCall(Scripts.giveBack, keys: [RedisArgument(key(counter))], arguments: [clockArgument()]))
    }

    private func key(_ counter: HourlyCounter) -> String {
        switch counter {
        case .clientSends(let app, let client): return keys.ipSends(app, subject: client)
        case .clientFailures(let app, let client): return keys.ipFailures(app, subject: client)
        case .appCalls(let app): return keys.appCalls(app)
        }
    }

    /// Lifts an identifier's lockout; true when it was locked.
    func unlock(app: String, userID: String) async throws(OTPError) -> Bool {
        let reply = try await run(
            Scripts.unlock, "unlock",
            keys: [keys.user(app, userID), keys.quota(app, userID), keys.passwordFailures(app, userID)], arguments: [])
        return reply.value.int == 1
    }

    // MARK: activate

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
        let (app, user) = (activation.app, activation.userID)
        let reply = try await run(
            Scripts.activate, "activate",
            keys: [
                keys.otp(app, user, purpose: activation.purpose), keys.quota(app, user), keys.user(app, user),
                keys.refreshToken(app, user, hash: activation.refreshTokenHash),
                keys.familyPrefix(app, user) + activation.familyID,
            ],
            arguments: [
                RedisArgument(activation.suffix), RedisArgument(bytes: activation.codeHash),
                RedisArgument(activation.limits.failuresPerHour), RedisArgument(activation.refreshTTLSeconds),
                RedisArgument(activation.familyID), RedisArgument(user), RedisArgument(activation.limits.maxAttempts),
                RedisArgument(activation.limits.sendsPerHour), RedisArgument(activation.limits.maxConsecutiveFailures),
                RedisArgument(activation.limits.lockoutSeconds * 1000), RedisArgument(activation.sessionMaxSeconds),
                RedisArgument(activation.proofHash ?? ""), RedisArgument(activation.passwordHash ?? ""),
            ])
        switch reply.status {
        case "ok": return .activated(try reply.user(), refreshTTL: try reply.int(1))
        default: return .refused(try reply.codeRefusal())
        }
    }

    // MARK: passwords

    /// A password-reset code presented with the hash of the new password; without a hash, the
    /// code is only judged (a wrong one counts, a right one is kept), so the caller hashes only
    /// for a code Redis accepts.
    struct PasswordReset: Sendable {
        var app: String
        var userID: String
        var codeHash: [UInt8]
        var limits: CodeLimits
        var passwordHash: String?
    }

    enum PasswordResetOutcome: Sendable, Hashable {
        /// The code was right: consumed and the new hash stored, or (judged only) kept.
        case accepted
        case refused(CodeRefusal)
    }

    func resetPassword(_ reset: PasswordReset) async throws(OTPError) -> PasswordResetOutcome {
        let (app, user) = (reset.app, reset.userID)
        let reply = try await run(
            Scripts.resetPassword, "resetPassword",
            keys: [keys.otp(app, user, purpose: .reset), keys.quota(app, user), keys.user(app, user)],
            arguments: [
                RedisArgument(bytes: reset.codeHash), RedisArgument(reset.limits.failuresPerHour),
                RedisArgument(reset.limits.maxAttempts), RedisArgument(reset.limits.sendsPerHour),
                RedisArgument(reset.limits.maxConsecutiveFailures), RedisArgument(reset.limits.lockoutSeconds * 1000),
                RedisArgument(reset.passwordHash ?? ""),
            ])
        switch reply.status {
        case "ok": return .accepted
        default: return .refused(try reply.codeRefusal())
        }
    }

    enum PasswordAttempt: Sendable, Hashable {
        /// One hourly failure is taken; verify against this hash (nil: the identifier has none).
        case proceed(storedHash: String?)
        case identifierLocked(retryAfter: Int)
        /// Too many failures this hour.
        case locked(retryAfter: Int)
    }

    func beginPasswordAttempt(app: String, userID: String, failuresPerHour: Int) async throws(OTPError) -> PasswordAttempt {
        let reply = try await run(
            Scripts.passwordBegin, "passwordBegin", keys: [keys.user(app, userID), keys.passwordFailures(app, userID)],
            arguments: [RedisArgument(failuresPerHour)])
        switch reply.status {
        case "ok":
            let hash = try reply.string(1)
            return .proceed(storedHash: hash.isEmpty ? nil : hash)
        case "identifier_locked": return .identifierLocked(retryAfter: try reply.int(1))
        case "locked": return .locked(retryAfter: try reply.int(1))
        default: throw reply.unexpected()
        }
    }

    /// The verdict on a password, and the session a right one starts.
    struct PasswordVerdict: Sendable {
        var app: String
        var userID: String
        enum Outcome: String, Sendable {
            case right, wrong
            /// Nothing was verified (the hashing queue was full).
            case cancel
        }
        var outcome: Outcome
        /// The hash the password was verified against ('' for none).
        var verifiedHash: String
        var maxConsecutiveFailures: Int
        var lockoutSeconds: Int
        var refreshTokenHash: String
        var familyID: String
        var refreshTTLSeconds: Int
        var sessionMaxSeconds: Int
    }

    enum PasswordSignInOutcome: Sendable, Hashable {
        case signedIn(User, refreshTTL: Int)
        case wrong(lockedNow: Bool)
        case identifierLocked(retryAfter: Int)
        case cancelled
    }

    func finishPasswordAttempt(_ verdict: PasswordVerdict) async throws(OTPError) -> PasswordSignInOutcome {
        let (app, user) = (verdict.app, verdict.userID)
        let reply = try await run(
            Scripts.passwordFinish, "passwordFinish",
            keys: [
                keys.user(app, user), keys.passwordFailures(app, user),
                keys.refreshToken(app, user, hash: verdict.refreshTokenHash),
                keys.familyPrefix(app, user) + verdict.familyID,
            ],
            arguments: [
                RedisArgument(verdict.outcome.rawValue), RedisArgument(verdict.verifiedHash), RedisArgument(verdict.maxConsecutiveFailures),
                RedisArgument(verdict.lockoutSeconds * 1000), RedisArgument(verdict.refreshTTLSeconds),
                RedisArgument(verdict.familyID), RedisArgument(user), RedisArgument(verdict.sessionMaxSeconds),
            ])
        switch reply.status {
        case "ok": return .signedIn(try reply.user(), refreshTTL: try reply.int(1))
        case "wrong": return .wrong(lockedNow: try reply.int(1) == 1)
        case "identifier_locked": return .identifierLocked(retryAfter: try reply.int(1))
        case "cancelled": return .cancelled
        default: throw reply.unexpected()
        }
    }

    /// Stores `new` in place of `old` unless the password changed meanwhile. Best effort.
    func rehashPassword(app: String, userID: String, old: String, new: String) async {
        _ = try? await run(
            Scripts.rehashPassword, "rehashPassword", keys: [keys.user(app, userID)],
            arguments: [RedisArgument(old), RedisArgument(new)])
    }

    // MARK: import

    /// A user of an export, as a registration would have created it.
    struct ImportedUser: Sendable {
        var app: String
        var userID: String
        var identifier: Identifier
        /// A phone number kept beside an email identifier.
        var phone: String?
        var firstName: String
        var lastName: String
        var active: Bool
        var createdAt: Int
        var unverifiedTTLSeconds: Int
    }

    /// Creates the user unless it exists; true when it was created.
    func importUser(_ user: ImportedUser) async throws(OTPError) -> Bool {
        let reply = try await run(
            Scripts.importUser, "importUser",
            keys: [keys.user(user.app, user.userID)]
                + [Purpose.auth, .reset, .hub].map { keys.otp(user.app, user.userID, purpose: $0) },
            arguments: [
                RedisArgument(user.userID), RedisArgument(user.identifier.field), RedisArgument(user.identifier.value),
                RedisArgument(user.phone ?? ""), RedisArgument(user.firstName), RedisArgument(user.lastName),
                user.active ? "active" : "unverified", RedisArgument(user.createdAt),
                RedisArgument(user.unverifiedTTLSeconds * 1000),
            ])
        switch reply.value.int {
        case 1: return true
        case 0: return false
        default: throw reply.unexpected()
        }
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
        let (app, user) = (check.app, check.userID)
        let reply = try await run(
            Scripts.check, "check",
            keys: [keys.otp(app, user, purpose: check.purpose), keys.quota(app, user), keys.user(app, user)],
            arguments: [
                RedisArgument(check.suffix), RedisArgument(bytes: check.codeHash),
                RedisArgument(check.limits.failuresPerHour), RedisArgument(check.limits.maxAttempts),
                RedisArgument(check.limits.sendsPerHour), RedisArgument(check.limits.maxConsecutiveFailures),
                RedisArgument(check.limits.lockoutSeconds * 1000), RedisArgument(check.proofHash),
                RedisArgument(check.concealUnknownUser ? "1" : "0"), RedisArgument(check.requiredProofHash ?? ""),
            ])
        switch reply.status {
        case "ok": return .verified(expiresAtMilliseconds: try reply.int(1))
        case "no_user": return .noUser
        default: return .refused(try reply.codeRefusal())
        }
    }

    // MARK: hub sockets

    enum SocketBinding: Sendable, Hashable {
        case bound
        /// The socket id is bound to another session.
        case taken
    }

    /// Binds (or renews the binding of) an open hub socket to a session's hash for `ttlSeconds`.
    func bindSocket(app: String, socketID: String, sessionHash: String, ttlSeconds: Int) async throws(OTPError) -> SocketBinding {
        let reply = try await run(
            Scripts.bindSocket, "bindSocket", keys: [keys.hubSocket(app, socketID: socketID)],
            arguments: [RedisArgument(sessionHash), RedisArgument(ttlSeconds * 1000)])
        return reply.value.int == 1 ? .bound : .taken
    }

    /// Whether the socket is open (bound) and bound to this session.
    func isSocketBound(app: String, socketID: String, sessionHash: String) async throws(OTPError) -> Bool {
        let reply = try await run(
            Scripts.checkSocket, "checkSocket", keys: [keys.hubSocket(app, socketID: socketID)],
            arguments: [RedisArgument(sessionHash)])
        return reply.value.int == 1
    }

    /// Ends a socket's binding (it closed). Best effort: the binding expires anyway.
    func closeSocket(app: String, socketID: String, sessionHash: String) async {
        _ = try? await run(
            Scripts.closeSocket, "closeSocket", keys: [keys.hubSocket(app, socketID: socketID)],
            arguments: [RedisArgument(sessionHash)])
    }

    enum SocketLease: Sendable, Hashable {
        case acquire, renew, release
    }

    /// Takes, renews or gives back an open socket's place among its client's (`subject`'s) at
    /// most `cap` sockets. nil when done; the seconds until a place frees when all are taken.
    func hubSocketLease(
        app: String, subject: String, member: String, leaseSeconds: Int, cap: Int, _ action: SocketLease
    ) async throws(OTPError) -> Int? {
        let reply = try await run(
            Scripts.hubSocketLease, "hubSocketLease", keys: [keys.hubSockets(app, subject: subject)],
            arguments: [
                RedisArgument(member), RedisArgument(leaseSeconds * 1000), RedisArgument(cap), RedisArgument("\(action)"),
            ])
        return reply.status == "full" ? try reply.int(1) : nil
    }

    // MARK: refresh tokens

    enum RefreshOutcome: Sendable, Hashable {
        /// The child token is stored (or, for a retry within the reuse interval, still unused);
        /// it lives `ttl` seconds.
        case rotated(User, ttl: Int)
        /// Unknown, expired, revoked, or its session is over.
        case invalid
        /// Presented after it was rotated: its family is now revoked.
        case reused
        /// The session rotated too often this hour.
        case rateLimited(retryAfter: Int)
    }

    /// A refresh token presented for rotation, with the session's rules.
    struct Rotation: Sendable {
        var app: String
        var userID: String
        var presentedHash: String
        /// The child the presented token rotates to (derived from it: a retry names it again).
        var childHash: String
        var ttlSeconds: Int
        var sessionMaxSeconds: Int
        var reuseIntervalSeconds: Int
        var refreshesPerHour: Int
    }

    func rotateRefreshToken(_ rotation: Rotation) async throws(OTPError) -> RefreshOutcome {
        let (app, user) = (rotation.app, rotation.userID)
        let reply = try await run(
            Scripts.refresh, "refresh",
            keys: [
                keys.refreshToken(app, user, hash: rotation.presentedHash),
                keys.refreshToken(app, user, hash: rotation.childHash), keys.user(app, user),
            ],
            arguments: [
                RedisArgument(keys.familyPrefix(app, user)), RedisArgument(rotation.ttlSeconds),
                RedisArgument(rotation.sessionMaxSeconds), RedisArgument(rotation.reuseIntervalSeconds * 1000),
                RedisArgument(rotation.refreshesPerHour),
            ])
        switch reply.status {
        case "ok": return .rotated(try reply.user(), ttl: try reply.int(1))
        case "invalid": return .invalid
        case "reused": return .reused
        case "rate": return .rateLimited(retryAfter: try reply.int(1))
        default: throw reply.unexpected()
        }
    }

    /// Revokes the family of a refresh token; an unknown token is no error.
    func revokeRefreshTokenFamily(app: String, userID: String, tokenHash: String) async throws(OTPError) {
        _ = try await run(
            Scripts.revoke, "revoke", keys: [keys.refreshToken(app, userID, hash: tokenHash)],
            arguments: [RedisArgument(keys.familyPrefix(app, userID))])
    }

    // MARK: channel API

    /// A caller's code for one destination of one channel (the channel API).
    struct ChannelCode: Sendable {
        var channel: DeliveryChannel
        /// A hash of the destination (phone, email or chat id), never the destination itself.
        var destination: String
        /// Tells this code from a later one for the same destination (for `cancelChannelCode`).
        var id: String
        var codeHash: [UInt8]
        var lifetimeSeconds: Int
    }

    func createChannelCode(_ code: ChannelCode) async throws(OTPError) {
        _ = try await run(
            Scripts.channelCreate, "channelCreate", keys: [keys.channelCode(code.channel, destination: code.destination)],
            arguments: [RedisArgument(code.id), RedisArgument(bytes: code.codeHash), RedisArgument(code.lifetimeSeconds * 1000)])
    }

    /// Deletes a code whose message was not delivered. Best effort.
    func cancelChannelCode(_ code: ChannelCode) async {
        _ = try? await run(
            Scripts.channelCancel, "channelCancel", keys: [keys.channelCode(code.channel, destination: code.destination)],
            arguments: [RedisArgument(code.id)])
    }

    enum ChannelCheckOutcome: Sendable, Hashable {
        case valid
        case invalid(attemptsRemaining: Int)
        case notFound
    }

    func checkChannelCode(
        channel: DeliveryChannel, destination: String, codeHash: [UInt8], maxAttempts: Int
    ) async throws(OTPError) -> ChannelCheckOutcome {
        let reply = try await run(
            Scripts.channelCheck, "channelCheck", keys: [keys.channelCode(channel, destination: destination)],
            arguments: [RedisArgument(bytes: codeHash), RedisArgument(maxAttempts)])
        switch reply.status {
        case "ok": return .valid
        case "invalid": return .invalid(attemptsRemaining: try reply.int(1))
        case "not_found": return .notFound
        default: throw reply.unexpected()
        }
    }

    // MARK: Telegram bot

    enum BotCodeOutcome: Sendable, Hashable {
        case stored
        /// The update was handled before (Telegram redelivers until it sees a 200).
        case duplicate
        /// A live code has the same hash: draw another code.
        case taken
        /// The chat had its codes for this hour: nothing stored (the update is marked seen).
        case limited
    }

    func storeBotCode(
        updateID: Int64, codeHash: String, chatID: Int64, lifetimeSeconds: Int, codesPerChatPerHour: Int
    ) async throws(OTPError) -> BotCodeOutcome {
        let reply = try await run(
            Scripts.botCode, "botCode",
            keys: [keys.botUpdate(updateID), keys.botCode(hash: codeHash), keys.botChat(chatID)],
            arguments: [RedisArgument(String(chatID)), RedisArgument(lifetimeSeconds), RedisArgument(codesPerChatPerHour)])
        switch reply.status {
        case "ok": return .stored
        case "duplicate": return .duplicate
        case "taken": return .taken
        case "limited": return .limited
        default: throw reply.unexpected()
        }
    }

    /// Remembers a Telegram Gateway delivery report for 600 s (its signature is good for 300 s
    /// either side of its timestamp); false when it was seen already (a replay).
    func firstSighting(ofGatewayReport hash: String) async throws(OTPError) -> Bool {
        let reply = try await storage {
            try await redis.send(["SET", RedisArgument(keys.gatewayReport(hash: hash)), "1", "NX", "EX", "600"])
        }
        return reply.string == "OK"
    }

    /// The chat a bot code was handed to, consumed (GETDEL: once only), or nil.
    func takeBotCode(hash: String) async throws(OTPError) -> String? {
        let reply = try await storage { try await redis.send(["GETDEL", RedisArgument(keys.botCode(hash: hash))]) }
        return reply.string
    }

    /// Links a chat to a user; false when the user does not exist.
    func linkChat(app: String, userID: String, chatID: String) async throws(OTPError) -> Bool {
        let reply = try await run(Scripts.linkChat, "linkChat", keys: [keys.user(app, userID)], arguments: [RedisArgument(chatID)])
        return reply.value.int == 1
    }

    // MARK: users

    /// The user record, or nil when there is none.
    func user(app: String, userID: String) async throws(OTPError) -> User? {
        let command = ["HMGET", RedisArgument(keys.user(app, userID))] + Scripts.userFields.map { RedisArgument($0) }
        let reply = try await storage { try await redis.send(command) }
        guard let fields = reply.array, fields.first?.isNull == false else { return nil }
        return try User(fields[...])
    }

    // MARK: operations

    /// Whether Redis answers a PING within its timeout.
    func ping() async throws(OTPError) {
        _ = try await storage { try await redis.send("PING") }
    }

    /// Loads every script ahead of the first request (EVALSHA falls back to loading anyway).
    func loadScripts() async throws(OTPError) {
        try await storage { try await redis.load(Scripts.all) }
    }

    // MARK: running commands

    /// Runs a script with the clock as its `ARGV[1]`.
    private func run(
        _ script: RedisScript, _ name: String, keys: [String], arguments: [RedisArgument]
    ) async throws(OTPError) -> ScriptReply {
        let now = clockArgument()
        let value = try await storage {
            try await redis.evalScript(script, keys: keys.map { RedisArgument($0) }, arguments: [now] + arguments)
        }
        return ScriptReply(script: name, value: value)
    }

    /// `ARGV[1]` of every script: empty (Redis's own clock) unless a test set `clock`.
    private func clockArgument() -> RedisArgument {
        clock.map { RedisArgument(Int($0())) } ?? ""
    }

    /// The one place a `RedisError` becomes the engine's `storageFailed`.
    private func storage<T: Sendable>(_ body: () async throws -> T) async throws(OTPError) -> T {
        do {
            return try await body()
        } catch let error as RedisError {
            throw OTPError.storageFailed(StorageFailure(error))
        } catch {
            throw OTPError.storageFailed(StorageFailure(.failed, "\(error)"))
        }
    }
}

/// A script's reply: a status word, then positional values that only `OTPStore` reads.
private struct ScriptReply {
    let script: String
    let value: RESPValue

    var fields: [RESPValue] { value.array ?? [] }
    var status: String { fields.first?.string ?? value.int.map(String.init) ?? "" }

    func string(_ index: Int) throws(OTPError) -> String {
        guard index < fields.count, let text = fields[index].string else { throw unexpected() }
        return text
    }

    func int(_ index: Int) throws(OTPError) -> Int {
        guard index < fields.count, let number = fields[index].int else { throw unexpected() }
        return number
    }

    /// `{'ok', extra, user fields…}`
    func user() throws(OTPError) -> User {
        try User(fields.dropFirst(2))
    }

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

    func unexpected() -> OTPError {
        .storageFailed(StorageFailure(.failed, "unexpected reply from the \(script) script: \(value)"))
    }
}

extension User {
    /// From `Scripts.userFields`, in that order.
    fileprivate init(_ values: ArraySlice<RESPValue>) throws(OTPError) {
        let values = Array(values)
        guard values.count == Scripts.userFields.count, let id = values[0].string else {
            throw OTPError.storageFailed(StorageFailure(.failed, "a user record without the fields \(Scripts.userFields)"))
        }
        func text(_ i: Int) -> String? { values[i].isNull ? nil : values[i].string.flatMap { $0.isEmpty ? nil : $0 } }
        self.init(
            id: id, email: text(1), phone: text(2), firstName: text(3) ?? "", lastName: text(4) ?? "",
            createdAt: values[5].int ?? 0, lastLoginAt: values[6].int, status: text(7) ?? "active")
    }
}

extension StorageFailure {
    init(_ error: RedisError) {
        let kind: Kind
        switch error.code {
        case .timeout: kind = .timeout
        case .shutdown: kind = .shutdown
        case .server, .protocolError, .invalidURL, .crossSlot, .tooManyRedirects: kind = .failed
        default: kind = .unavailable
        }
        self.init(kind, error.message)
    }
}
