/// Every way an OTP operation can be refused or fail, in domain terms. The HTTP layer maps
/// each to a status and code in one place; nothing below the engine (Redis, gateways) leaks
/// through it.
public enum OTPError: Error, Sendable, Hashable {
    case appNotFound(String)
    /// The app exists but is switched off (`enabled: false`).
    case appDisabled(String)
    case invalidIdentifier
    /// A request field out of bounds (a name over 100 characters, a control character): its name.
    case invalidField(name: String, reason: String)
    /// SMS and calls of this app may not reach the number's country.
    case countryNotAllowed
    case channelNotSupported(String)
    case telegramNotLinked
    case userAlreadyExists
    case registrationClosed
    case userNotFound
    /// Unknown, expired or used.
    case otpNotFound
    case invalidOTP(attemptsRemaining: Int)
    /// The OTP's attempts are used up: it is dead; a new code may be sent after `retryAfter` s.
    case otpExhausted(retryAfter: Int)
    /// The identifier failed too often this hour; codes are refused for `retryAfter` s.
    case tooManyFailures(retryAfter: Int)
    /// Too many wrong codes from this client this hour, across users.
    case tooManyFailuresFromIP(retryAfter: Int)
    /// Too many wrong codes in a row for this identifier: locked for `retryAfter` s.
    case identifierLocked(retryAfter: Int)
    case resendCooldown(retryAfter: Int)
    case tooManySends(retryAfter: Int)
    case tooManySendsFromIP(retryAfter: Int)
    /// The app's hourly budget of SMS and calls is spent.
    case tooManyCallsForApp(retryAfter: Int)
    /// The session rotated its refresh token too often this hour.
    case tooManyRefreshes(retryAfter: Int)
    case deliveryFailed
    case invalidRefreshToken
    case refreshTokenReused
    case invalidAccessToken(String)
    /// No live Telegram bot code has this value (unknown, expired or already used).
    case botCodeNotFound
    /// A new password outside the app's policy (too short, too long): why.
    case invalidPassword(String)
    /// A password sign-in with a wrong password, or for an identifier without one.
    case invalidCredentials
    /// Too much password hashing queued: retry shortly (503).
    case overloaded
    /// The store (Redis) could not be asked, or failed.
    case storageFailed(StorageFailure)
}

/// Why the store could not answer. `kind` is a small fixed set (a metric label).
public struct StorageFailure: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// No connection could be made, or it closed before the reply.
        case unavailable
        /// No reply within `redis.timeout_ms`.
        case timeout
        /// The process is shutting down.
        case shutdown
        /// Redis answered with an error, or with a reply the store did not expect.
        case failed
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// Redis could not be reached in time: retrying shortly may succeed (503, not 500).
    public var isTransient: Bool { kind != .failed }

    public var description: String { "\(kind.rawValue): \(message)" }
}
