import OTPCrypto

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension OTPEngine {
    /// Unix seconds: the store's test clock when a test set one, else the system's.
    func now() -> Int { store.clock.map { Int($0() / 1000) } ?? Int(time(nil)) }

    /// Parses `<user id>.<purpose><random>`; nil for anything else (answered as not found).
    static func parseOTPID(_ otpID: String) -> (userID: String, purpose: Purpose)? {
        guard let (userID, rest) = splitUserID(otpID), rest.utf8.count == 23, let first = rest.utf8.first,
            let purpose = Purpose(rawValue: String(UnicodeScalar(first))), rest.utf8.allSatisfy(isBase64URL)
        else { return nil }
        return (String(userID), purpose)
    }

    /// Parses `<user id>.<43 base64url characters>`.
    static func parseRefreshToken(_ token: String) -> String? {
        guard let (userID, rest) = splitUserID(token), rest.utf8.count == 43, rest.utf8.allSatisfy(isBase64URL) else {
            return nil
        }
        return String(userID)
    }

    /// `<user id>.<rest>` split at its first dot, the user id checked; by bytes (splitting the
    /// string by characters was 0.7% of an activation).
    static func splitUserID(_ text: String) -> (userID: Substring, rest: Substring)? {
        guard let dot = text.utf8.firstIndex(of: UInt8(ascii: ".")) else { return nil }
        let userID = text[..<dot]
        guard isUserID(userID) else { return nil }
        return (userID, text[text.utf8.index(after: dot)...])
    }

    static func isBase64URL(_ byte: UInt8) -> Bool {
        (48...57).contains(byte) || (65...90).contains(byte) || (97...122).contains(byte) || byte == 45 || byte == 95
    }

    static func isUserID(_ text: Substring) -> Bool {
        text.utf8.count == 24 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    static func tokenHash(_ token: String) -> String {
        Digest.hex(Digest.sha256(Array(token.utf8)).prefix(16))
    }

    /// A new refresh token for `userID`: 256 random bits, base64url.
    static func newRefreshToken(userID: String) -> String {
        "\(userID).\(Base64URL.encode(SecureRandom.bytes(32)))"
    }

    // MARK: activate

    /// Checks a code; on success signs the user in (and activates a new user). A client gets
    /// `failed_attempts_per_ip_per_hour` wrong codes across users: one is taken before the code
    /// is checked and given back unless the code was wrong or dead (its attempts spent), so
    /// racing guesses never exceed it and a dead code is no free oracle.
    public func activate(appID: String, otpID: String, code: String, clientIP: String? = nil) async throws(OTPError) -> AuthResult {
        try await judging(appID: appID) { () async throws(OTPError) in
            let app = try app(appID)
            guard let (userID, purpose) = Self.parseOTPID(otpID), purpose == .auth else { throw .otpNotFound }
            return try await activate(
                app: app, userID: userID, purpose: purpose, suffix: String(otpID.dropFirst(userID.count + 1)),
                code: app.normalize(code: code), clientIP: clientIP)
        }
    }

    /// Project verify: checks the code of the identifier's live sign-in OTP (the one its last
    /// send created), exactly as `activate` with that OTP's id would. No live OTP: `otpNotFound`.
    public func activate(appID: String, identifier raw: String, code: String, clientIP: String? = nil) async throws(OTPError) -> AuthResult {
        try await judging(appID: appID) { () async throws(OTPError) in
            let app = try app(appID)
            guard let identifier = Identifier(raw) else { throw .invalidIdentifier }
            let userID = userID(app: app.id, identifier: identifier)
            guard let suffix = try await store.liveOTP(app: app.id, userID: userID, purpose: .auth)?.suffix else {
                throw .otpNotFound
            }
            // Replaced between the look-up and the check: the script answers not found.
            return try await activate(
                app: app, userID: userID, purpose: .auth, suffix: suffix, code: app.normalize(code: code), clientIP: clientIP)
        }
    }

    /// The activation every surface shares. `code` is normalised already; `proofHash` and
    /// `passwordHash` are the hub's `set_password` (see `OTPStore.Activation`).
    func activate(
        app: AppPolicy, userID: String, purpose: Purpose, suffix: String, code: String, clientIP: String?,
        proofHash: String? = nil, passwordHash: String? = nil
    ) async throws(OTPError) -> AuthResult {
        let refreshToken = Self.newRefreshToken(userID: userID)
        // A wrong code, or a check of a spent (dead) code, keeps the client's unit. Any other
        // answer gives it back, without waiting: the reply does not depend on it, and the
        // give-back goes out on this event loop's connection right behind the activation.
        let outcome = try await withReservations(
            failureCounter(app: app, clientIP: clientIP), app: app, waitForGiveBack: false,
            giveBack: { (outcome: OTPStore.ActivateOutcome) in outcome.keepsClientUnit ? .none : .all }
        ) { () async throws(OTPError) in
            try await store.activate(
                OTPStore.Activation(
                    app: app.id, userID: userID, purpose: purpose, suffix: suffix,
                    codeHash: codeHash(app: app.id, otpID: "\(userID).\(suffix)", code: code), limits: app.codeLimits,
                    refreshTokenHash: Self.tokenHash(refreshToken), familyID: Base64URL.encode(SecureRandom.bytes(12)),
                    refreshTTLSeconds: app.config.tokens.refreshTTLSeconds,
                    sessionMaxSeconds: app.config.tokens.sessionMaxSeconds, proofHash: proofHash,
                    passwordHash: passwordHash))
        }
        switch outcome {
        case .activated(let user, let ttl):
            return authResult(app: app, user: user, refreshToken: refreshToken, refreshTTL: ttl)
        case .refused(let refusal):
            throw error(for: refusal, app: app, userID: userID, clientIP: clientIP)
        }
    }

    /// The error of a code a script refused, after recording the lockout a wrong one caused.
    func error(for refusal: OTPStore.CodeRefusal, app: AppPolicy, userID: String, clientIP: String?) -> OTPError {
        switch refusal {
        case .notFound: return .otpNotFound
        case .invalid(let remaining, let lockedNow):
            if lockedNow { record(.identifierLocked, app: app, userID: userID, clientIP: clientIP) }
            return .invalidOTP(attemptsRemaining: remaining)
        case .exhausted(let seconds): return .otpExhausted(retryAfter: seconds)
        case .identifierLocked(let seconds): return .identifierLocked(retryAfter: seconds)
        case .locked(let seconds): return .tooManyFailures(retryAfter: seconds)
        }
    }

    /// `amr`: how the user proved itself (RFC 8176): `otp` for a code, `pwd` for a password.
    func authResult(app: AppPolicy, user: User, refreshToken: String, refreshTTL: Int, amr: [String] = ["otp"]) -> AuthResult {
        let now = now()
        let claims = JWT.Claims(
            iss: app.config.tokens.issuer, aud: app.id, sub: user.id, iat: now, exp: now + app.config.tokens.accessTTLSeconds,
            jti: Base64URL.encode(SecureRandom.bytes(16)), amr: amr)
        return AuthResult(
            authToken: app.signAccessToken(claims),
            expiresIn: app.config.tokens.accessTTLSeconds, redirectURL: app.config.redirectURL, refreshToken: refreshToken,
            refreshTokenExpiration: now + refreshTTL, user: user)
    }

    // MARK: refresh and revoke

    /// Rotates a refresh token within its session. A retry within `reuse_interval_seconds`
    /// (while the new token is unused) gets the same new token; any other reuse revokes the
    /// session. Sessions end `session_max_seconds` after sign-in and rotate at most
    /// `refreshes_per_session_per_hour` times an hour.
    public func refresh(appID: String, refreshToken: String, clientIP: String? = nil) async throws(OTPError) -> AuthResult {
        let app = try app(appID)
        guard let userID = Self.parseRefreshToken(refreshToken) else { throw .invalidRefreshToken }
        let child = childRefreshToken(of: refreshToken, userID: userID)
        let tokens = app.config.tokens
        let outcome = try await store.rotateRefreshToken(
            OTPStore.Rotation(
                app: app.id, userID: userID, presentedHash: Self.tokenHash(refreshToken), childHash: Self.tokenHash(child),
                ttlSeconds: tokens.refreshTTLSeconds, sessionMaxSeconds: tokens.sessionMaxSeconds,
                reuseIntervalSeconds: tokens.reuseIntervalSeconds,
                refreshesPerHour: app.config.limits.refreshesPerSessionPerHour))
        switch outcome {
        case .rotated(let user, let ttl): return authResult(app: app, user: user, refreshToken: child, refreshTTL: ttl)
        case .invalid: throw .invalidRefreshToken
        case .reused:
            record(.refreshTokenReused, app: app, userID: userID, clientIP: clientIP)
            throw .refreshTokenReused
        case .rateLimited(let seconds): throw .tooManyRefreshes(retryAfter: seconds)
        }
    }

    /// The token a refresh token rotates to: HMAC(pepper, parent), so a retried refresh names
    /// the same child and nothing but its hash is stored.
    func childRefreshToken(of token: String, userID: String) -> String {
        "\(userID).\(Base64URL.encode(Digest.hmacSHA256(key: pepper, message: Array("otpd-refresh\u{0}\(token)".utf8))))"
    }

    /// Revokes the whole family of a refresh token. Unknown tokens are accepted silently.
    public func revoke(appID: String, refreshToken: String) async throws(OTPError) {
        let app = try app(appID)
        guard let userID = Self.parseRefreshToken(refreshToken) else { return }
        try await store.revokeRefreshTokenFamily(app: app.id, userID: userID, tokenHash: Self.tokenHash(refreshToken))
    }

    // MARK: lockout

    /// Lifts the lockout of an identifier (`otpd user unlock`); true when it was locked.
    public func unlock(appID: String, identifier raw: String) async throws(OTPError) -> Bool {
        let app = try app(appID)
        guard let identifier = Identifier(raw) else { throw .invalidIdentifier }
        return try await store.unlock(app: app.id, userID: userID(app: app.id, identifier: identifier))
    }

    // MARK: current user

    /// The user an access token names, after verifying it for this app.
    public func currentUser(appID: String, accessToken: String) async throws(OTPError) -> User {
        let app = try app(appID)
        let claims: JWT.Claims
        do {
            claims = try app.verifyAccessToken(accessToken, now: now())
        } catch {
            throw .invalidAccessToken(Self.describe(error, algorithm: app.tokenKeys.algorithm))
        }
        guard Self.isUserID(Substring(claims.sub)) else { throw .invalidAccessToken("the token's subject is not a user id") }
        guard let user = try await store.user(app: app.id, userID: claims.sub) else {
            throw .invalidAccessToken("the user no longer exists")
        }
        return user
    }

    static func describe(_ error: JWT.VerificationError, algorithm: JWT.Algorithm = .hs256) -> String {
        switch error {
        case .malformed: return "the token is not a well-formed JWT"
        case .unsupportedAlgorithm: return "only \(algorithm.rawValue) tokens are accepted"
        case .unknownKey: return "the token's key id is not one of this app's keys"
        case .badSignature: return "the token's signature is invalid"
        case .expired: return "the token has expired"
        case .notYetValid: return "the token is not valid yet"
        case .wrongAudience: return "the token was issued for another app"
        case .wrongIssuer: return "the token has another issuer"
        }
    }
}
