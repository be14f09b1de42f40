import RedisClient

// Passwords: a reset code with the new hash, a password sign-in (begin, finish), a rehash.

extension OTPStore {
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
        try await run(Scripts.resetPassword, reset)
    }

    enum PasswordAttempt: Sendable, Hashable {
        /// One hourly failure is taken; verify against this hash (nil: the identifier has none).
        case proceed(storedHash: String?)
        case identifierLocked(retryAfter: Int)
        /// Too many failures this hour.
        case locked(retryAfter: Int)
    }

    func beginPasswordAttempt(app: String, userID: String, failuresPerHour: Int) async throws(OTPError) -> PasswordAttempt {
        try await run(Scripts.passwordBegin, (app, userID, failuresPerHour))
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
        try await run(Scripts.passwordFinish, verdict)
    }

    /// Stores `new` in place of `old` unless the password changed meanwhile. Best effort.
    func rehashPassword(app: String, userID: String, old: String, new: String) async {
        _ = try? await run(Scripts.rehashPassword, (app, userID, old, new))
    }
}

extension Scripts {
    static let resetPassword = StoreScript<OTPStore.PasswordReset, OTPStore.PasswordResetOutcome>(
        "resetPassword", lua: PackageResources.resetPassword_lua,
        keys: [
            "otp_key": { r, k in k.otp(r.app, r.userID, purpose: .reset) },
            "own_quota_key": { r, k in k.quota(r.app, r.userID) },
            "user_key": { r, k in k.user(r.app, r.userID) },
        ],
        arguments: [
            "code_hash": { r, _ in RedisArgument(bytes: r.codeHash) },
            "max_attempts": { r, _ in RedisArgument(r.limits.maxAttempts) },
            "failures_per_hour": { r, _ in RedisArgument(r.limits.failuresPerHour) },
            "sends_per_hour": { r, _ in RedisArgument(r.limits.sendsPerHour) },
            "max_in_a_row": { r, _ in RedisArgument(r.limits.maxConsecutiveFailures) },
            "lockout_ms": { r, _ in RedisArgument(r.limits.lockoutSeconds * 1000) },
            // '' to judge the code only
            "password_hash": { r, _ in RedisArgument(r.passwordHash ?? "") },
        ]
    ) { reply throws(OTPError) in
        switch reply.status {
        case "ok": return .accepted
        default: return .refused(try reply.codeRefusal())
        }
    }

    static let passwordBegin = StoreScript<(app: String, userID: String, failuresPerHour: Int), OTPStore.PasswordAttempt>(
        "passwordBegin", lua: PackageResources.passwordBegin_lua,
        keys: [
            "user_key": { b, k in k.user(b.app, b.userID) },
            "failures_key": { b, k in k.passwordFailures(b.app, b.userID) },
        ],
        arguments: [
            "failures_per_hour": { b, _ in RedisArgument(b.failuresPerHour) }
        ]
    ) { reply throws(OTPError) in
        switch reply.status {
        case "ok":
            let hash = try reply.string(1)
            return .proceed(storedHash: hash.isEmpty ? nil : hash)
        case "identifier_locked": return .identifierLocked(retryAfter: try reply.int(1))
        case "locked": return .locked(retryAfter: try reply.int(1))
        default: throw reply.unexpected()
        }
    }

    static let passwordFinish = StoreScript<OTPStore.PasswordVerdict, OTPStore.PasswordSignInOutcome>(
        "passwordFinish", lua: PackageResources.passwordFinish_lua,
        keys: [
            "user_key": { v, k in k.user(v.app, v.userID) },
            "failures_key": { v, k in k.passwordFailures(v.app, v.userID) },
            "token_key": { v, k in k.refreshToken(v.app, v.userID, hash: v.refreshTokenHash) },
            "family_key": { v, k in k.familyPrefix(v.app, v.userID) + v.familyID },
        ],
        arguments: [
            "verdict": { v, _ in RedisArgument(v.outcome.rawValue) },
            "verified_hash": { v, _ in RedisArgument(v.verifiedHash) },
            "max_in_a_row": { v, _ in RedisArgument(v.maxConsecutiveFailures) },
            "lockout_ms": { v, _ in RedisArgument(v.lockoutSeconds * 1000) },
            "refresh_ttl_s": { v, _ in RedisArgument(v.refreshTTLSeconds) },
            "session_max_s": { v, _ in RedisArgument(v.sessionMaxSeconds) },
            "family_id": { v, _ in RedisArgument(v.familyID) },
            "user_id": { v, _ in RedisArgument(v.userID) },
        ]
    ) { reply throws(OTPError) in
        switch reply.status {
        case "ok": return .signedIn(try reply.user(), refreshTTL: try reply.int(1))
        case "wrong": return .wrong(lockedNow: try reply.int(1) == 1)
        case "identifier_locked": return .identifierLocked(retryAfter: try reply.int(1))
        case "cancelled": return .cancelled
        default: throw reply.unexpected()
        }
    }

    static let rehashPassword = StoreScript<(app: String, userID: String, old: String, new: String), Void>(
        "rehashPassword", lua: PackageResources.rehashPassword_lua, prelude: false,
        keys: [
            "user_key": { r, k in k.user(r.app, r.userID) }
        ],
        arguments: [
            "old_hash": { r, _ in RedisArgument(r.old) },
            "new_hash": { r, _ in RedisArgument(r.new) },
        ]
    ) { _ in }
}
