/// Every way an OTP operation can be refused, in domain terms. The HTTP layer maps each to
/// a status and code in one place; Redis failures are not here (they surface as `RedisError`).
public enum OTPError: Error, Sendable, Hashable {
    case appNotFound(String)
    case invalidIdentifier
    case channelNotSupported(String)
    case telegramNotLinked
    case userAlreadyExists
    case registrationClosed
    case userNotFound
    case userBlocked
    /// Unknown, expired or used.
    case otpNotFound
    case invalidOTP(attemptsRemaining: Int)
    /// The OTP's attempts are used up, or the identifier failed too often this hour.
    case tooManyAttempts(retryAfter: Int?)
    case resendCooldown(retryAfter: Int)
    case tooManySends(retryAfter: Int)
    case tooManySendsFromIP(retryAfter: Int)
    case deliveryFailed
    case invalidRefreshToken
    case refreshTokenReused
    case invalidAccessToken(String)
}
