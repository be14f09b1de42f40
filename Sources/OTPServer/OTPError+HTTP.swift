import HTTPTypes
import OTPCore

extension APIError {
    /// Every engine refusal → its v1 status and code, in this one place.
    init(_ error: OTPError) {
        func retry(_ seconds: Int) -> HTTPFields { [.retryAfter: String(max(1, seconds))] }
        switch error {
        case .appNotFound(let id):
            self.init(.notFound, code: "app_not_found", "no app has the id '\(id)'")
        case .invalidIdentifier:
            self.init(
                .badRequest, code: "invalid_identifier",
                "identifier must be an email address or an E.164 phone number ('+' and 8-15 digits)")
        case .invalidField(let name, let reason):
            self.init(.badRequest, code: "invalid_field", "\(name) \(reason)")
        case .countryNotAllowed:
            self.init(
                .badRequest, code: "country_not_allowed", "this app does not send SMS or calls to that country")
        case .channelNotSupported(let message):
            self.init(.badRequest, code: "channel_not_supported", message)
        case .telegramNotLinked:
            self.init(
                .badRequest, code: "channel_not_supported",
                "no Telegram chat is linked to this user (link one through GET /target)")
        case .userAlreadyExists:
            self.init(.conflict, code: "user_already_exists", "a verified user with this identifier already exists")
        case .registrationClosed:
            self.init(.forbidden, code: "registration_closed", "this app does not accept new registrations")
        case .userNotFound:
            self.init(.notFound, code: "user_not_found", "no user has this identifier")
        case .otpNotFound:
            self.init(.notFound, code: "otp_not_found", "the OTP is unknown, expired or already used")
        case .invalidOTP(let remaining):
            self.init(.unauthorized, code: "invalid_otp", "the code is wrong", fields: [("attempts_remaining", remaining)])
        case .otpExhausted(let seconds):
            self.init(
                .tooManyRequests, code: "too_many_attempts",
                "too many wrong codes for this OTP; it is dead: request a new code (possible in \(seconds) s)",
                headers: retry(seconds))
        case .tooManyFailures(let seconds):
            self.init(
                .tooManyRequests, code: "too_many_attempts",
                "too many wrong codes for this identifier; try again in \(seconds) s", headers: retry(seconds))
        case .tooManyFailuresFromIP(let seconds):
            self.init(
                .tooManyRequests, code: "too_many_attempts",
                "too many wrong codes from this address; try again in \(seconds) s", headers: retry(seconds))
        case .identifierLocked(let seconds):
            self.init(
                .tooManyRequests, code: "identifier_locked",
                "too many wrong codes in a row for this identifier; its codes are refused for \(seconds) s",
                headers: retry(seconds))
        case .tooManyCallsForApp(let seconds):
            self.init(
                .tooManyRequests, code: "rate_limited", "this app has sent as many SMS and calls as it may this hour",
                headers: retry(seconds))
        case .tooManyRefreshes(let seconds):
            self.init(
                .tooManyRequests, code: "rate_limited", "this session refreshed too often this hour", headers: retry(seconds))
        case .resendCooldown(let seconds):
            self.init(
                .tooManyRequests, code: "resend_cooldown", "a code was sent moments ago; wait \(seconds) s before asking again",
                headers: retry(seconds))
        case .tooManySends(let seconds):
            self.init(
                .tooManyRequests, code: "rate_limited", "too many codes sent to this identifier this hour", headers: retry(seconds))
        case .tooManySendsFromIP(let seconds):
            self.init(.tooManyRequests, code: "rate_limited", "too many codes requested from this address this hour", headers: retry(seconds))
        case .deliveryFailed:
            self.init(.badGateway, code: "delivery_failed", "the code could not be delivered; nothing was sent, try again")
        case .invalidRefreshToken:
            self.init(.unauthorized, code: "invalid_refresh_token", "the refresh token is unknown, expired or revoked")
        case .refreshTokenReused:
            self.init(
                .unauthorized, code: "refresh_token_reused",
                "this refresh token was already used; every token of its session is now revoked")
        case .storageFailed(let failure):
            self = failure.isTransient
                ? .serviceUnavailable
                : APIError(.internalServerError, code: "internal_error", "internal error")
        case .botCodeNotFound:
            self.init(.notFound, code: "code_not_found", "no live code from the Telegram bot has this value")
        case .invalidPassword(let reason):
            self.init(.badRequest, code: "invalid_password", reason)
        case .invalidCredentials:
            self.init(.unauthorized, code: "invalid_credentials", "the identifier or the password is wrong")
        case .overloaded:
            self.init(
                .serviceUnavailable, code: "service_unavailable", "too many passwords are being checked right now; try again shortly",
                headers: retry(1))
        case .invalidAccessToken(let message):
            self.init(
                .unauthorized, code: "invalid_token", message,
                headers: [.wwwAuthenticate: #"Bearer error="invalid_token""#])
        }
    }
}
