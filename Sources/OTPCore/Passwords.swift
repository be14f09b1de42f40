import OTPCrypto

/// Passwords: the policy, password reset by emailed code, and sign-in with a password.
///
/// Passwords are stored only as scrypt hashes (`PasswordHasher`, in the user hash's field
/// `pw`), computed on the hasher's own threads, never on an event loop.
public struct Passwords: Sendable {
    let engine: OTPEngine

    public init(engine: OTPEngine) { self.engine = engine }

    /// A password is hashed from at most this many bytes (UTF-8): it bounds the work a request
    /// can ask for, and no person types more.
    public static let maxPasswordBytes = 1024

    /// The app's policy for a new password: at least `password.min_length` characters, at
    /// most `maxPasswordBytes` bytes. Throws `invalidPassword` saying which.
    public func checkNewPassword(_ password: String, appID: String) throws(OTPError) {
        try checkNewPassword(password, app: engine.app(appID))
    }

    func checkNewPassword(_ password: String, app: AppPolicy) throws(OTPError) {
        let minimum = app.config.password.minLength
        guard password.count >= minimum else {
            throw .invalidPassword("the password must be at least \(minimum) characters long")
        }
        guard password.utf8.count <= Self.maxPasswordBytes else {
            throw .invalidPassword("the password must be at most \(Self.maxPasswordBytes) bytes long")
        }
    }

    /// The stored form of a password (scrypt), computed off the event loop.
    public func hash(_ password: String) async throws(OTPError) -> String {
        do {
            return try await engine.passwordHasher.hash(password)
        } catch {
            throw .overloaded
        }
    }

    /// The user id of an email address, or `invalidField(email)` for anything else.
    func emailUser(_ email: String, app: AppPolicy) throws(OTPError) -> String {
        guard let identifier = Identifier(email), case .email = identifier else {
            throw .invalidField(name: "email", reason: "must be an email address")
        }
        return engine.userID(app: app.id, identifier: identifier)
    }

    // MARK: password reset

    /// Emails a reset code to an existing user of the app (`POST /auth/otp` `create`): the
    /// send path of a v1 login, with the app's quotas (shared with v1), under a purpose of its
    /// own, so the code signs nobody in and a sign-in code resets no password. An unknown
    /// address is `userNotFound`, unless the app sets `conceal_unknown_users`.
    public func sendReset(appID: String, email: String, clientIP: String?) async throws(OTPError) -> OTPEngine.SendResult {
        _ = try emailUser(email, app: engine.app(appID))
        return try await engine.send(
            OTPEngine.SendRequest(identifier: email, channel: "email", clientIP: clientIP), appID: appID, mode: .passwordReset)
    }

    /// Checks a reset code and stores the new password (`validate`). The password must meet
    /// the policy first (a refusal spends no attempt). The code is judged before anything is
    /// hashed, and scrypt runs only for a code Redis accepted: a wrong, spent or missing code
    /// costs no hashing. Wrong codes count like activations (attempts, failures per identifier
    /// and per client IP, the lockout), and so does any check of a code whose attempts are
    /// spent (it is dead). A right code is consumed in the same script that stores the hash (it
    /// cannot be used twice), makes an unverified user active and ends every session of the
    /// user that started before.
    public func reset(
        appID: String, email: String, code: String, newPassword: String, clientIP: String? = nil
    ) async throws(OTPError) {
        try await engine.judging(appID: appID) { () async throws(OTPError) in
            let app = try engine.app(appID)
            let userID = try emailUser(email, app: app)
            try checkNewPassword(newPassword, app: app)
            var reset = OTPStore.PasswordReset(
                app: app.id, userID: userID,
                codeHash: engine.codeHash(app: app.id, otpID: engine.resetCodeContext(userID: userID), code: app.normalize(code: code)),
                limits: app.codeLimits, passwordHash: nil)
            let outcome = try await engine.withReservations(
                engine.failureCounter(app: app, clientIP: clientIP), app: app,
                giveBack: { (outcome: OTPStore.PasswordResetOutcome) in outcome.keepsClientUnit ? .none : .all }
            ) { () async throws(OTPError) in
                let judged = try await engine.store.resetPassword(reset)
                guard judged == .accepted else { return judged }
                reset.passwordHash = try await hash(newPassword)
                return try await engine.store.resetPassword(reset)
            }
            if case .refused(let refusal) = outcome {
                throw engine.error(for: refusal, app: app, userID: userID, clientIP: clientIP)
            }
        }
    }

    // MARK: sign-in with a password

    /// Signs in with a password (`POST /v1/apps/{app}/login/password`). A wrong password, an
    /// unknown identifier and an identifier without a password all answer `invalidCredentials`
    /// after the same work (the latter two verify against a dummy hash), and all count as a
    /// failure: `failed_passwords_per_identifier_per_hour` (taken before the verification, so
    /// concurrent guesses never exceed it), per client IP per hour, and in a row (a lockout of
    /// password sign-in). None of them touches the identifier's code failures or its code
    /// lockout: someone guessing a user's password cannot stop that user's code sign-in. A right password
    /// whose stored hash is below the current scrypt parameters is hashed again and stored.
    public func signIn(
        appID: String, identifier raw: String, password: String, clientIP: String? = nil
    ) async throws(OTPError) -> AuthResult {
        let app = try engine.app(appID)
        guard let identifier = Identifier(raw) else { throw .invalidIdentifier }
        // Longer than any password the policy lets anyone set: it cannot match.
        guard password.utf8.count <= Self.maxPasswordBytes else { throw .invalidCredentials }
        let userID = engine.userID(app: app.id, identifier: identifier)
        let limits = app.config.limits
        let tokens = app.config.tokens
        let refreshToken = OTPEngine.newRefreshToken(userID: userID)
        var stored: String?
        // A wrong password keeps the client's unit; every other answer gives it back.
        let outcome = try await engine.withReservations(
            engine.failureCounter(app: app, clientIP: clientIP), app: app,
            giveBack: { (outcome: OTPStore.PasswordSignInOutcome) in if case .wrong = outcome { .none } else { .all } }
        ) { () async throws(OTPError) in
            let attempt = try await engine.store.beginPasswordAttempt(
                app: app.id, userID: userID, failuresPerHour: limits.failedPasswordsPerIdentifierPerHour)
            switch attempt {
            case .proceed(let hash): stored = hash
            case .identifierLocked(let seconds): throw .identifierLocked(retryAfter: seconds)
            case .locked(let seconds): throw .tooManyFailures(retryAfter: seconds)
            }
            let verdict: OTPStore.PasswordVerdict.Outcome
            do {
                verdict = try await engine.passwordHasher.verify(password, against: stored) ? .right : .wrong
            } catch {
                verdict = .cancel
            }
            return try await engine.store.finishPasswordAttempt(
                OTPStore.PasswordVerdict(
                    app: app.id, userID: userID, outcome: verdict, verifiedHash: stored ?? "",
                    maxConsecutiveFailures: limits.maxConsecutiveFailures, lockoutSeconds: limits.lockoutSeconds,
                    refreshTokenHash: OTPEngine.tokenHash(refreshToken), familyID: Base64URL.encode(SecureRandom.bytes(12)),
                    refreshTTLSeconds: tokens.refreshTTLSeconds, sessionMaxSeconds: tokens.sessionMaxSeconds))
        }
        switch outcome {
        case .signedIn(let user, let ttl):
            // Parameters raised since this hash was made: store a stronger one (once per user).
            if let stored, engine.passwordHasher.needsRehash(stored),
                let stronger = try? await engine.passwordHasher.hash(password)
            {
                await engine.store.rehashPassword(app: app.id, userID: userID, old: stored, new: stronger)
            }
            return engine.authResult(app: app, user: user, refreshToken: refreshToken, refreshTTL: ttl, amr: ["pwd"])
        case .wrong(let lockedNow):
            if lockedNow { engine.record(.identifierLocked, app: app, userID: userID, clientIP: clientIP) }
            throw .invalidCredentials
        case .identifierLocked(let seconds): throw .identifierLocked(retryAfter: seconds)
        case .cancelled: throw .overloaded
        }
    }
}
