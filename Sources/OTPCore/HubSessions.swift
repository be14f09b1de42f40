import OTPCrypto

/// The hub services: a browser holds a WebSocket bound to its session cookie, and asks for a
/// code (`otp.send`), proves it knows it without spending it (`otp.verify`), then spends it to
/// set a password and sign in (`otp.set_password`).
///
/// The codes are ordinary OTPs of purpose `hub` (one live per user, replaced by a new send),
/// under the same quotas, attempt counting and lockout as every other code. The secrets the
/// hub hands out are never stored: `otp.send`'s secret becomes the OTP's id through an HMAC,
/// and `otp.verify`'s is kept as a SHA-256 hash inside the OTP (its "proof").
public struct HubSessions: Sendable {
    let engine: OTPEngine
    let passwords: Passwords

    public init(engine: OTPEngine) {
        self.engine = engine
        self.passwords = Passwords(engine: engine)
    }

    /// A binding lives this long unless the open socket renews it.
    public static let socketTTLSeconds = 60
    /// How often an open socket renews its binding.
    public static let socketRenewSeconds = 20

    // MARK: sessions and sockets

    /// A new session id for the hub's cookie: 256 bits, 43 base64url characters.
    public static func newSession() -> String { Base64URL.encode(SecureRandom.bytes(32)) }

    /// Whether `value` has the shape of a session id; anything else a client sends is ignored.
    public static func isSession(_ value: String) -> Bool {
        value.utf8.count == 43 && value.utf8.allSatisfy(OTPEngine.isBase64URL)
    }

    /// A new socket id: 128 bits, 22 base64url characters.
    public static func newSocketID() -> String { Base64URL.encode(SecureRandom.bytes(16)) }

    /// Whether `value` has the shape of a socket id (so no client string becomes a Redis key).
    public static func isSocketID(_ value: String) -> Bool {
        value.utf8.count == 22 && value.utf8.allSatisfy(OTPEngine.isBase64URL)
    }

    /// Binds an open socket to a session, or renews the binding (every `socketRenewSeconds`
    /// while the socket is open). False when the socket id is bound to another session.
    public func bindSocket(appID: String, socketID: String, session: String) async throws(OTPError) -> Bool {
        let app = try engine.app(appID)
        guard Self.isSocketID(socketID), Self.isSession(session) else { return false }
        let binding = try await engine.store.bindSocket(
            app: app.id, socketID: socketID, sessionHash: OTPEngine.tokenHash(session), ttlSeconds: Self.socketTTLSeconds)
        return binding == .bound
    }

    /// Whether `socketID` is open and bound to `session`; false for ids of the wrong shape.
    public func isSocketBound(appID: String, socketID: String, session: String) async throws(OTPError) -> Bool {
        let app = try engine.app(appID)
        guard Self.isSocketID(socketID), Self.isSession(session) else { return false }
        return try await engine.store.isSocketBound(app: app.id, socketID: socketID, sessionHash: OTPEngine.tokenHash(session))
    }

    /// Ends the binding of a socket that closed.
    public func closeSocket(appID: String, socketID: String, session: String) async {
        guard let app = engine.apps[appID], Self.isSocketID(socketID), Self.isSession(session) else { return }
        await engine.store.closeSocket(app: app.id, socketID: socketID, sessionHash: OTPEngine.tokenHash(session))
    }

    // MARK: the client's open sockets

    /// An open socket's place among its client IP's (`surfaces.hub.sockets_per_ip`, shared by
    /// every replica through Redis): what `openSocket` took, to renew and give back.
    public struct SocketLease: Sendable {
        let app: String
        let subject: String
        let member: String
        let cap: Int
    }

    public enum SocketOpening: Sendable {
        case opened(SocketLease)
        /// The client holds `sockets_per_ip` open sockets; one is gone within this many seconds.
        case full(retryAfter: Int)
    }

    /// Takes a place for a new socket of `clientIP` (an IPv6 /64 counts as one client), which
    /// will live at most `maxSeconds`; a place not renewed within `socketTTLSeconds` (its
    /// replica died) is free again.
    public func openSocket(
        appID: String, socketID: String, clientIP: String, maxSeconds: Int, cap: Int
    ) async throws(OTPError) -> SocketOpening {
        let app = try engine.app(appID)
        let lease = SocketLease(
            app: app.id, subject: NetworkRange.quotaSubject(of: clientIP),
            member: "\((engine.now() + maxSeconds) * 1000):\(socketID)", cap: cap)
        if let wait = try await engine.store.hubSocketLease(
            app: lease.app, subject: lease.subject, member: lease.member, leaseSeconds: Self.socketTTLSeconds,
            cap: cap, .acquire)
        {
            return .full(retryAfter: wait)
        }
        return .opened(lease)
    }

    /// Renews a socket's place (with its binding); false when it was lost (Redis forgot it)
    /// and the client's places are all taken meanwhile: the socket must close.
    public func renewSocket(_ lease: SocketLease) async -> Bool {
        // A renewal Redis could not answer is retried next time (the lease outlives two misses).
        let full = try? await engine.store.hubSocketLease(
            app: lease.app, subject: lease.subject, member: lease.member, leaseSeconds: Self.socketTTLSeconds,
            cap: lease.cap, .renew)
        return full == nil
    }

    /// Gives a closed socket's place back (best effort: an unrenewed place expires anyway).
    public func releaseSocket(_ lease: SocketLease) async {
        _ = try? await engine.store.hubSocketLease(
            app: lease.app, subject: lease.subject, member: lease.member, leaseSeconds: 0, cap: lease.cap, .release)
    }

    // MARK: otp.send

    /// What kind of code `otp.send` delivers.
    public enum CodeMethod: Sendable {
        /// Digits, as many as the app's `otp.length`.
        case numeric
        /// 8 characters of an alphabet without look-alikes (no 0/O, 1/I/L).
        case unambiguous
    }

    public struct SendResult: Sendable {
        /// Names this code to `otp.verify`; only its HMAC (as the OTP's id) is stored.
        public var secret: String
        public var userID: String
        public var email: String
        public var sent: Bool
    }

    /// Sends a code to an existing user's email. The hub serves existing accounts only: an email
    /// with no user is `userNotFound` whatever the app's registration (no user is ever created),
    /// or, with `conceal_unknown_users`, a decoy answered like a real send.
    public func send(appID: String, email raw: String, method: CodeMethod, clientIP: String?) async throws(OTPError) -> SendResult {
        let app = try engine.app(appID)
        guard let identifier = Identifier(raw), identifier.field == "email" else { throw .invalidIdentifier }
        let code: String
        switch method {
        case .numeric: code = SecureRandom.code(length: app.config.otp.length, alphabet: Array("0123456789"))
        case .unambiguous: code = SecureRandom.code(length: 8, alphabet: Self.unambiguousAlphabet)
        }
        let secret = Base64URL.encode(SecureRandom.bytes(32))
        let result = try await engine.send(
            OTPEngine.SendRequest(identifier: raw, channel: "email", clientIP: clientIP), identifier: identifier, app: app,
            mode: .login, purpose: .hub, suffix: hubSuffix(app: app.id, secret: secret), code: code)
        return SendResult(
            secret: secret, userID: engine.userID(app: app.id, identifier: identifier), email: identifier.value, sent: result.delivered)
    }

    static let unambiguousAlphabet = Array("23456789ABCDEFGHJKMNPQRSTUVWXYZ")

    /// The OTP id (after the user id) that `otp.send`'s secret names: `h` and 128 bits of HMAC.
    func hubSuffix(app: String, secret: String) -> String {
        let mac = Digest.hmacSHA256(key: engine.pepper, message: Array("otpd-hub-secret\u{0}\(app)\u{0}\(secret)".utf8))
        return Purpose.hub.rawValue + Base64URL.encode(mac.prefix(16))
    }

    /// Hub codes are typed by people: trimmed and upper-cased (digits are unchanged).
    static func normalizeHubCode(_ code: String) -> String { code.trimmingASCIIWhitespace().uppercased() }

    // MARK: otp.verify

    public struct Verification: Sendable {
        /// For `otp.set_password`, with the same code; stored only as a hash.
        public var secret: String
        public var userID: String
        /// Unix seconds: when the code (and so this secret) expires.
        public var expiresAt: Int
    }

    /// Checks the code of the email's hub OTP without spending it. A wrong code counts as in
    /// `activate` (attempts, hourly failures, failures in a row). A secret that names no live
    /// OTP of this email: `otpNotFound`. Every refusal spends one of the client's failures
    /// (`failed_attempts_per_ip_per_hour`): an unknown email too, which with
    /// `conceal_unknown_users` is answered exactly like a wrong code (its decoy OTP, if a send
    /// made one, is judged like a real one).
    public func verify(
        appID: String, email raw: String, code: String, secret: String, clientIP: String?
    ) async throws(OTPError) -> Verification {
        let app = try engine.app(appID)
        guard let identifier = Identifier(raw), identifier.field == "email" else { throw .invalidIdentifier }
        let userID = engine.userID(app: app.id, identifier: identifier)
        let suffix = hubSuffix(app: app.id, secret: secret)
        let proof = Base64URL.encode(SecureRandom.bytes(32))
        // A right code gives the client's unit back; any refusal keeps it (an unknown email,
        // a secret that names nothing, a locked identifier: nothing a client repeats is free).
        let outcome = try await engine.withReservations(
            engine.failureCounter(app: app, clientIP: clientIP), app: app,
            giveBack: { (outcome: OTPStore.CheckOutcome) in if case .verified = outcome { .all } else { .none } }
        ) { () async throws(OTPError) in
            try await engine.store.check(
                OTPStore.Check(
                    app: app.id, userID: userID, purpose: .hub, suffix: suffix,
                    codeHash: engine.codeHash(app: app.id, otpID: "\(userID).\(suffix)", code: Self.normalizeHubCode(code)),
                    limits: app.codeLimits, proofHash: OTPEngine.tokenHash(proof),
                    concealUnknownUser: app.config.concealUnknownUsers))
        }
        switch outcome {
        case .verified(let milliseconds):
            return Verification(secret: proof, userID: userID, expiresAt: milliseconds / 1000)
        case .noUser:
            throw .userNotFound
        case .refused(let refusal):
            throw engine.error(for: refusal, app: app, userID: userID, clientIP: clientIP)
        }
    }

    // MARK: otp.set_password

    /// Spends the code `otp.verify` accepted (with the secret it answered), stores the
    /// password's hash in the user, ends the user's earlier sessions and signs in. The password
    /// must meet the app's `password.min_length`. Unknown user: `userNotFound`; a wrong code or
    /// secret, or no live code: `otpNotFound` or `invalidOTP` (a wrong code counts as in
    /// `activate`).
    ///
    /// Redis judges the code before anything is hashed: scrypt runs only for a right code and
    /// secret, and a refused check keeps the client's failure unit, so a dead code, a wrong code
    /// or a wrong secret repeated costs the client its quota and otpd no hashing.
    public func setPassword(
        appID: String, userID: String, code: String, secret: String, password: String, clientIP: String?
    ) async throws(OTPError) -> AuthResult {
        try await engine.judging(appID: appID) { () async throws(OTPError) in
            let app = try engine.app(appID)
            guard OTPEngine.isUserID(Substring(userID)) else { throw .userNotFound }
            try passwords.checkNewPassword(password, app: app)
            let proofHash = OTPEngine.tokenHash(secret)
            let normalized = Self.normalizeHubCode(code)
            // Judged first, without consuming (activate judges again, atomically, once hashed). A
            // right code gives the client's unit back; anything else keeps it (no live code, an
            // unknown user, a wrong code or secret: nothing a client repeats is free).
            enum Judged {
                case missing(OTPError)
                case checked(OTPStore.CheckOutcome, suffix: String)
            }
            let judged = try await engine.withReservations(
                engine.failureCounter(app: app, clientIP: clientIP), app: app,
                giveBack: { (judged: Judged) in if case .checked(.verified, _) = judged { .all } else { .none } }
            ) { () async throws(OTPError) -> Judged in
                guard let live = try await engine.store.liveOTP(app: app.id, userID: userID, purpose: .hub) else {
                    return .missing(try await engine.store.user(app: app.id, userID: userID) == nil ? .userNotFound : .otpNotFound)
                }
                return .checked(
                    try await engine.store.check(
                        OTPStore.Check(
                            app: app.id, userID: userID, purpose: .hub, suffix: live.suffix,
                            codeHash: engine.codeHash(app: app.id, otpID: "\(userID).\(live.suffix)", code: normalized),
                            limits: app.codeLimits, proofHash: "", requiredProofHash: proofHash)),
                    suffix: live.suffix)
            }
            let suffix: String
            switch judged {
            case .missing(let error): throw error
            case .checked(.verified, let live): suffix = live
            case .checked(.noUser, _): throw .userNotFound
            case .checked(.refused(let refusal), _): throw engine.error(for: refusal, app: app, userID: userID, clientIP: clientIP)
            }
            let passwordHash = try await passwords.hash(password)
            return try await engine.activate(
                app: app, userID: userID, purpose: .hub, suffix: suffix, code: normalized, clientIP: clientIP,
                proofHash: proofHash, passwordHash: passwordHash)
        }
    }
}
