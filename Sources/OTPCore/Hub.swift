import OTPCrypto

/// The hub services: a browser holds a WebSocket bound to its session cookie, and asks for a
/// code (`otp.send`), proves it knows it without spending it (`otp.verify`), then spends it to
/// set a password and sign in (`otp.set_password`).
///
/// The codes are ordinary OTPs of purpose `hub` (one live per user, replaced by a new send),
/// under the same quotas, attempt counting and lockout as every other code. The secrets the
/// hub hands out are never stored: `otp.send`'s secret becomes the OTP's id through an HMAC,
/// and `otp.verify`'s is kept as a SHA-256 hash inside the OTP (its "proof").
extension OTPEngine {
    /// A binding lives this long unless the open socket renews it.
    public static let hubSocketTTLSeconds = 60
    /// How often an open socket renews its binding.
    public static let hubSocketRenewSeconds = 20

    // MARK: sessions and sockets

    /// A new session id for the hub's cookie: 256 bits, 43 base64url characters.
    public static func newHubSession() -> String { Base64URL.encode(SecureRandom.bytes(32)) }

    /// Whether `value` has the shape of a session id; anything else a client sends is ignored.
    public static func isHubSession(_ value: String) -> Bool {
        value.utf8.count == 43 && value.utf8.allSatisfy(isBase64URL)
    }

    /// A new socket id: 128 bits, 22 base64url characters.
    public static func newSocketID() -> String { Base64URL.encode(SecureRandom.bytes(16)) }

    /// Whether `value` has the shape of a socket id (so no client string becomes a Redis key).
    public static func isSocketID(_ value: String) -> Bool {
        value.utf8.count == 22 && value.utf8.allSatisfy(isBase64URL)
    }

    /// Binds an open socket to a session, or renews the binding (every `hubSocketRenewSeconds`
    /// while the socket is open). False when the socket id is bound to another session.
    public func bindHubSocket(appID: String, socketID: String, session: String) async throws(OTPError) -> Bool {
        let app = try app(appID)
        guard Self.isSocketID(socketID), Self.isHubSession(session) else { return false }
        let binding = try await store.bindSocket(
            app: app.id, socketID: socketID, sessionHash: Self.tokenHash(session), ttlSeconds: Self.hubSocketTTLSeconds)
        return binding == .bound
    }

    /// Whether `socketID` is open and bound to `session`; false for ids of the wrong shape.
    public func isHubSocketBound(appID: String, socketID: String, session: String) async throws(OTPError) -> Bool {
        let app = try app(appID)
        guard Self.isSocketID(socketID), Self.isHubSession(session) else { return false }
        return try await store.isSocketBound(app: app.id, socketID: socketID, sessionHash: Self.tokenHash(session))
    }

    /// Ends the binding of a socket that closed.
    public func closeHubSocket(appID: String, socketID: String, session: String) async {
        guard let app = apps[appID], Self.isSocketID(socketID), Self.isHubSession(session) else { return }
        await store.closeSocket(app: app.id, socketID: socketID, sessionHash: Self.tokenHash(session))
    }

    // MARK: otp.send

    /// What kind of code `otp.send` delivers.
    public enum HubCodeMethod: Sendable {
        /// Digits, as many as the app's `otp.length`.
        case numeric
        /// 8 characters of an alphabet without look-alikes (no 0/O, 1/I/L).
        case unambiguous
    }

    public struct HubSendResult: Sendable {
        /// Names this code to `otp.verify`; only its HMAC (as the OTP's id) is stored.
        public var secret: String
        public var userID: String
        public var email: String
        public var sent: Bool
    }

    /// Sends a code to an email, creating the user when the app's registration is open (like
    /// project verify). Unknown user on a closed app: `userNotFound`.
    public func hubSend(appID: String, email raw: String, method: HubCodeMethod, clientIP: String?) async throws(OTPError) -> HubSendResult {
        let app = try app(appID)
        guard let identifier = Identifier(raw), identifier.field == "email" else { throw .invalidIdentifier }
        let code: String
        switch method {
        case .numeric: code = SecureRandom.code(length: app.config.otp.length, alphabet: Array("0123456789"))
        case .unambiguous: code = SecureRandom.code(length: 8, alphabet: Self.unambiguousAlphabet)
        }
        let secret = Base64URL.encode(SecureRandom.bytes(32))
        let result = try await send(
            SendRequest(identifier: raw, channel: "email", clientIP: clientIP), identifier: identifier, app: app,
            mode: .signIn, purpose: .hub, suffix: hubSuffix(app: app.id, secret: secret), code: code)
        return HubSendResult(
            secret: secret, userID: userID(app: app.id, identifier: identifier), email: identifier.value, sent: result.delivered)
    }

    static let unambiguousAlphabet = Array("23456789ABCDEFGHJKMNPQRSTUVWXYZ")

    /// The OTP id (after the user id) that `otp.send`'s secret names: `h` and 128 bits of HMAC.
    func hubSuffix(app: String, secret: String) -> String {
        let mac = Digest.hmacSHA256(key: pepper, message: Array("otpd-hub-secret\u{0}\(app)\u{0}\(secret)".utf8))
        return Purpose.hub.rawValue + Base64URL.encode(mac.prefix(16))
    }

    /// Hub codes are typed by people: trimmed and upper-cased (digits are unchanged).
    static func normalizeHubCode(_ code: String) -> String { code.trimmingASCIIWhitespace().uppercased() }

    // MARK: otp.verify

    public struct HubVerification: Sendable {
        /// For `otp.set_password`, with the same code; stored only as a hash.
        public var secret: String
        public var userID: String
        /// Unix seconds: when the code (and so this secret) expires.
        public var expiresAt: Int
    }

    /// Checks the code of the email's hub OTP without spending it. A wrong code counts as in
    /// `activate` (attempts, hourly failures, failures in a row, the client's failures). A
    /// secret that names no live OTP of this email: `otpNotFound`.
    public func hubVerify(
        appID: String, email raw: String, code: String, secret: String, clientIP: String?
    ) async throws(OTPError) -> HubVerification {
        let app = try app(appID)
        guard let identifier = Identifier(raw), identifier.field == "email" else { throw .invalidIdentifier }
        let userID = userID(app: app.id, identifier: identifier)
        let suffix = hubSuffix(app: app.id, secret: secret)
        let proof = Base64URL.encode(SecureRandom.bytes(32))
        let taken = try await reserve(failureCounter(app: app, clientIP: clientIP), app: app)
        let outcome: OTPStore.CheckOutcome
        do {
            outcome = try await store.check(
                OTPStore.Check(
                    app: app.id, userID: userID, purpose: .hub, suffix: suffix,
                    codeHash: codeHash(app: app.id, otpID: "\(userID).\(suffix)", code: Self.normalizeHubCode(code)),
                    limits: app.codeLimits, proofHash: Self.tokenHash(proof)))
        } catch {
            await release(taken)
            throw error
        }
        switch outcome {
        case .verified(let milliseconds):
            await release(taken)
            return HubVerification(secret: proof, userID: userID, expiresAt: milliseconds / 1000)
        case .noUser:
            await release(taken)
            throw .userNotFound
        case .refused(let refusal):
            if !refusal.isWrongCode { await release(taken) }
            throw error(for: refusal, app: app, userID: userID, clientIP: clientIP)
        }
    }

    // MARK: otp.set_password

    /// Spends the code `otp.verify` accepted (with the secret it answered), stores the
    /// password's hash in the user and signs in. The password must meet the app's
    /// `password.min_length`. Unknown user: `userNotFound`; a wrong code or secret, or no live
    /// code: `otpNotFound` or `invalidOTP` (a wrong code counts as in `activate`).
    public func hubSetPassword(
        appID: String, userID: String, code: String, secret: String, password: String, clientIP: String?
    ) async throws(OTPError) -> AuthResult {
        let app = try app(appID)
        guard Self.isUserID(Substring(userID)) else { throw .userNotFound }
        try checkNewPassword(password, app: app)
        guard let live = try await store.liveOTP(app: app.id, userID: userID, purpose: .hub) else {
            throw try await store.user(app: app.id, userID: userID) == nil ? .userNotFound : .otpNotFound
        }
        // A secret otp.verify did not answer costs no scrypt (the script checks it again, atomically).
        let proofHash = Self.tokenHash(secret)
        guard let stored = live.proofHash, Digest.constantTimeEquals(Array(stored.utf8), Array(proofHash.utf8)) else {
            throw .otpNotFound
        }
        let passwordHash = try await hashPassword(password)
        return try await activate(
            app: app, userID: userID, purpose: .hub, suffix: live.suffix, code: Self.normalizeHubCode(code), clientIP: clientIP,
            proofHash: proofHash, passwordHash: passwordHash)
    }
}
