import OTPCrypto
import RedisClient

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A user as the API shows it. Times are Unix seconds.
public struct User: Sendable, Hashable {
    public var id: String
    public var email: String?
    public var phone: String?
    public var firstName: String
    public var lastName: String
    public var createdAt: Int
    public var lastLoginAt: Int?
    public var status: String

    /// From the script reply `id, email, phone, first_name, last_name, created_at, last_login_at, status`.
    init?(_ fields: ArraySlice<RESPValue>) {
        let values = Array(fields)
        guard values.count == 8, let id = values[0].string else { return nil }
        func text(_ i: Int) -> String? { values[i].isNull ? nil : values[i].string }
        self.id = id
        email = text(1).flatMap { $0.isEmpty ? nil : $0 }
        phone = text(2).flatMap { $0.isEmpty ? nil : $0 }
        firstName = text(3) ?? ""
        lastName = text(4) ?? ""
        createdAt = values[5].int ?? 0
        lastLoginAt = values[6].int
        status = text(7) ?? "active"
    }
}

/// What a successful sign-in or refresh answers.
public struct AuthResult: Sendable, Hashable {
    public var authToken: String
    public var redirectURL: String
    public var refreshToken: String
    /// Unix seconds.
    public var refreshTokenExpiration: Int
    public var accessTokenTTL: Int
    public var user: User
}

extension OTPEngine {
    static func now() -> Int { Int(time(nil)) }

    /// Parses `<user id>.<purpose><random>`; nil for anything else (answered as not found).
    static func parseOTPID(_ otpID: String) -> (userID: String, purpose: Purpose)? {
        let parts = otpID.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, isUserID(parts[0]), parts[1].utf8.count == 23,
            let purpose = parts[1].first.flatMap({ Purpose(rawValue: String($0)) }),
            parts[1].utf8.allSatisfy(isBase64URL)
        else { return nil }
        return (String(parts[0]), purpose)
    }

    /// Parses `<user id>.<43 base64url characters>`.
    static func parseRefreshToken(_ token: String) -> String? {
        let parts = token.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, isUserID(parts[0]), parts[1].utf8.count == 43, parts[1].utf8.allSatisfy(isBase64URL) else {
            return nil
        }
        return String(parts[0])
    }

    static func isBase64URL(_ byte: UInt8) -> Bool {
        (48...57).contains(byte) || (65...90).contains(byte) || (97...122).contains(byte) || byte == 45 || byte == 95
    }

    static func isUserID(_ text: Substring) -> Bool {
        text.count == 24 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    static func tokenHash(_ token: String) -> String {
        Digest.hex(Digest.sha256(Array(token.utf8)).prefix(16))
    }

    /// A new refresh token for `userID`: 256 random bits, base64url.
    static func newRefreshToken(userID: String) -> String {
        "\(userID).\(Base64URL.encode(SecureRandom.bytes(32)))"
    }

    // MARK: activate

    /// Checks a code; on success signs the user in (and activates a new user).
    public func activate(appID: String, otpID: String, code: String, purpose: Purpose = .auth) async throws -> AuthResult {
        let app = try app(appID)
        guard let (userID, idPurpose) = Self.parseOTPID(otpID), idPurpose == purpose else { throw OTPError.otpNotFound }
        let refreshToken = Self.newRefreshToken(userID: userID)
        let familyID = Base64URL.encode(SecureRandom.bytes(12))
        let reply = try await redis.evalScript(
            Scripts.activate,
            keys: [
                RedisArgument(keys.otp(app.id, userID, purpose: purpose)), RedisArgument(keys.quota(app.id, userID)),
                RedisArgument(keys.user(app.id, userID)),
                RedisArgument(keys.refreshToken(app.id, userID, hash: Self.tokenHash(refreshToken))),
                RedisArgument(keys.familyPrefix(app.id, userID) + familyID),
            ],
            arguments: [
                RedisArgument(String(otpID.dropFirst(25))),
                RedisArgument(bytes: codeHash(app: app.id, otpID: otpID, code: app.normalize(code: code))),
                RedisArgument(app.config.limits.failedAttemptsPerIdentifierPerHour),
                RedisArgument(app.config.tokens.refreshTTLSeconds), RedisArgument(familyID), RedisArgument(userID),
                RedisArgument(app.config.otp.maxAttempts),
            ])
        let fields = reply.array ?? []
        switch fields.first?.string {
        case "ok":
            guard let user = User(fields.dropFirst()) else { throw RedisError(.protocolError, "activate: bad user record") }
            return authResult(app: app, user: user, refreshToken: refreshToken)
        case "not_found": throw OTPError.otpNotFound
        case "invalid": throw OTPError.invalidOTP(attemptsRemaining: fields.count > 1 ? fields[1].int ?? 0 : 0)
        case "exhausted": throw OTPError.tooManyAttempts(retryAfter: nil)
        case "locked": throw OTPError.tooManyAttempts(retryAfter: fields.count > 1 ? fields[1].int : nil)
        case "blocked": throw OTPError.userBlocked
        default: throw RedisError(.protocolError, "unexpected reply from the activate script")
        }
    }

    func authResult(app: AppPolicy, user: User, refreshToken: String) -> AuthResult {
        let now = Self.now()
        let claims = JWT.Claims(
            iss: app.config.tokens.issuer, aud: app.id, sub: user.id, iat: now, exp: now + app.config.tokens.accessTTLSeconds,
            jti: Base64URL.encode(SecureRandom.bytes(16)), amr: ["otp"])
        return AuthResult(
            authToken: JWT.sign(claims, kid: app.signingKey.kid, secret: app.signingKey.secret),
            redirectURL: app.config.redirectURL, refreshToken: refreshToken,
            refreshTokenExpiration: now + app.config.tokens.refreshTTLSeconds,
            accessTokenTTL: app.config.tokens.accessTTLSeconds, user: user)
    }

    // MARK: refresh and revoke

    /// Rotates a refresh token. A token presented twice revokes its whole family.
    public func refresh(appID: String, refreshToken: String) async throws -> AuthResult {
        let app = try app(appID)
        guard let userID = Self.parseRefreshToken(refreshToken) else { throw OTPError.invalidRefreshToken }
        let newToken = Self.newRefreshToken(userID: userID)
        let reply = try await redis.evalScript(
            Scripts.refresh,
            keys: [
                RedisArgument(keys.refreshToken(app.id, userID, hash: Self.tokenHash(refreshToken))),
                RedisArgument(keys.refreshToken(app.id, userID, hash: Self.tokenHash(newToken))),
                RedisArgument(keys.user(app.id, userID)),
            ],
            arguments: [RedisArgument(keys.familyPrefix(app.id, userID)), RedisArgument(app.config.tokens.refreshTTLSeconds)])
        let fields = reply.array ?? []
        switch fields.first?.string {
        case "ok":
            guard let user = User(fields.dropFirst()) else { throw RedisError(.protocolError, "refresh: bad user record") }
            return authResult(app: app, user: user, refreshToken: newToken)
        case "reused": throw OTPError.refreshTokenReused
        case "blocked": throw OTPError.userBlocked
        case "invalid", "revoked": throw OTPError.invalidRefreshToken
        default: throw RedisError(.protocolError, "unexpected reply from the refresh script")
        }
    }

    /// Revokes the whole family of a refresh token. Unknown tokens are accepted silently.
    public func revoke(appID: String, refreshToken: String) async throws {
        let app = try app(appID)
        guard let userID = Self.parseRefreshToken(refreshToken) else { return }
        _ = try await redis.evalScript(
            Scripts.revoke, keys: [RedisArgument(keys.refreshToken(app.id, userID, hash: Self.tokenHash(refreshToken)))],
            arguments: [RedisArgument(keys.familyPrefix(app.id, userID))])
    }

    // MARK: current user

    /// The user an access token names, after verifying it for this app.
    public func currentUser(appID: String, accessToken: String) async throws -> User {
        let app = try app(appID)
        let claims: JWT.Claims
        do {
            claims = try JWT.verify(
                accessToken, keys: app.verificationKeys, audience: app.id, issuer: app.config.tokens.issuer, now: Self.now())
        } catch {
            throw OTPError.invalidAccessToken(Self.describe(error))
        }
        guard Self.isUserID(Substring(claims.sub)) else { throw OTPError.invalidAccessToken("the token's subject is not a user id") }
        let reply = try await redis.send(
            ["HMGET", RedisArgument(keys.user(app.id, claims.sub)), "id", "email", "phone", "first_name", "last_name",
             "created_at", "last_login_at", "status"])
        guard let fields = reply.array, let user = User(fields[...]) else {
            throw OTPError.invalidAccessToken("the user no longer exists")
        }
        return user
    }

    static func describe(_ error: JWT.VerificationError) -> String {
        switch error {
        case .malformed: return "the token is not a well-formed JWT"
        case .unsupportedAlgorithm: return "only HS256 tokens are accepted"
        case .unknownKey: return "the token's key id is not one of this app's keys"
        case .badSignature: return "the token's signature is invalid"
        case .expired: return "the token has expired"
        case .notYetValid: return "the token is not valid yet"
        case .wrongAudience: return "the token was issued for another app"
        case .wrongIssuer: return "the token has another issuer"
        }
    }
}
