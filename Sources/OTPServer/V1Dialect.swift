import Hummingbird
import HTTPTypes
import Logging
import OTPCore

/// v1's dialect, `{"code": "snake_case", "error": "message", …}` (`APIError`): the answer of
/// every route that belongs to no surface with a dialect of its own (v1, the channel API,
/// Telegram, operations), and the words the other dialects start from.
struct V1Dialect: Dialect {
    /// Every engine refusal → its v1 status and code, in this one place.
    func failure(_ error: OTPError, logger: Logger) -> APIError {
        func retry(_ seconds: Int) -> HTTPFields { [.retryAfter: String(max(1, seconds))] }
        switch error {
        case .appNotFound(let id):
            return APIError(.notFound, code: "app_not_found", "no app has the id '\(id)'")
        case .appDisabled(let id):
            return APIError(.forbidden, code: "app_disabled", "the app '\(id)' is disabled")
        case .invalidIdentifier:
            return APIError(
                .badRequest, code: "invalid_identifier",
                "identifier must be an email address or an E.164 phone number ('+' and 8-15 digits)")
        case .invalidField(let name, let reason):
            return APIError(.badRequest, code: "invalid_field", "\(name) \(reason)")
        case .countryNotAllowed:
            return APIError(
                .badRequest, code: "country_not_allowed", "this app does not send SMS or calls to that country")
        case .channelNotSupported(let message):
            return APIError(.badRequest, code: "channel_not_supported", message)
        case .telegramNotLinked:
            return APIError(
                .badRequest, code: "channel_not_supported",
                "no Telegram chat is linked to this user (link one through GET /target)")
        case .userAlreadyExists:
            return APIError(.conflict, code: "user_already_exists", "a verified user with this identifier already exists")
        case .registrationClosed:
            return APIError(.forbidden, code: "registration_closed", "this app does not accept new registrations")
        case .userNotFound:
            return APIError(.notFound, code: "user_not_found", "no user has this identifier")
        case .otpNotFound:
            return APIError(.notFound, code: "otp_not_found", "the OTP is unknown, expired or already used")
        case .invalidOTP(let remaining):
            return APIError(.unauthorized, code: "invalid_otp", "the code is wrong", fields: [("attempts_remaining", remaining)])
        case .otpExhausted(let seconds):
            return APIError(
                .tooManyRequests, code: "too_many_attempts",
                "too many wrong codes for this OTP; it is dead: request a new code (possible in \(seconds) s)",
                headers: retry(seconds))
        case .tooManyFailures(let seconds):
            return APIError(
                .tooManyRequests, code: "too_many_attempts",
                "too many wrong codes for this identifier; try again in \(seconds) s", headers: retry(seconds))
        case .tooManyFailuresFromIP(let seconds):
            return APIError(
                .tooManyRequests, code: "too_many_attempts",
                "too many wrong codes from this address; try again in \(seconds) s", headers: retry(seconds))
        case .identifierLocked(let seconds):
            return APIError(
                .tooManyRequests, code: "identifier_locked",
                "too many wrong codes in a row for this identifier; its codes are refused for \(seconds) s",
                headers: retry(seconds))
        case .tooManyCallsForApp(let seconds):
            return APIError(
                .tooManyRequests, code: "rate_limited", "this app has sent as many SMS and calls as it may this hour",
                headers: retry(seconds))
        case .tooManyRefreshes(let seconds):
            return APIError(
                .tooManyRequests, code: "rate_limited", "this session refreshed too often this hour", headers: retry(seconds))
        case .resendCooldown(let seconds):
            return APIError(
                .tooManyRequests, code: "resend_cooldown", "a code was sent moments ago; wait \(seconds) s before asking again",
                headers: retry(seconds))
        case .tooManySends(let seconds):
            return APIError(
                .tooManyRequests, code: "rate_limited", "too many codes sent to this identifier this hour", headers: retry(seconds))
        case .tooManySendsFromIP(let seconds):
            return APIError(.tooManyRequests, code: "rate_limited", "too many codes requested from this address this hour", headers: retry(seconds))
        case .deliveryFailed:
            return APIError(.badGateway, code: "delivery_failed", "the code could not be delivered; nothing was sent, try again")
        case .invalidRefreshToken:
            return APIError(.unauthorized, code: "invalid_refresh_token", "the refresh token is unknown, expired or revoked")
        case .refreshTokenReused:
            return APIError(
                .unauthorized, code: "refresh_token_reused",
                "this refresh token was already used; every token of its session is now revoked")
        case .storageFailed(let failure):
            return failure.isTransient
                ? .serviceUnavailable
                : APIError(.internalServerError, code: "internal_error", "internal error")
        case .botCodeNotFound:
            return APIError(.notFound, code: "code_not_found", "no live code from the Telegram bot has this value")
        case .invalidPassword(let reason):
            return APIError(.badRequest, code: "invalid_password", reason)
        case .invalidCredentials:
            return APIError(.unauthorized, code: "invalid_credentials", "the identifier or the password is wrong")
        case .overloaded:
            return APIError(
                .serviceUnavailable, code: "service_unavailable", "too many passwords are being checked right now; try again shortly",
                headers: retry(1))
        case .invalidAccessToken(let message):
            return APIError(
                .unauthorized, code: "invalid_token", message,
                headers: [.wwwAuthenticate: #"Bearer error="invalid_token""#])
        }
    }

    func failure(_ refusal: APIError) -> APIError { refusal }
}

extension APIError {
    /// A framework error (no route, a method not allowed, a body too large) in v1's words.
    init(_ error: HTTPError, request: Request) {
        switch error.status {
        case .notFound:
            self.init(.notFound, code: "not_found", "no route for \(request.method) \(request.uri.path)")
        case .methodNotAllowed:
            self.init(.methodNotAllowed, code: "method_not_allowed", "\(request.method) is not allowed on \(request.uri.path)")
        case .contentTooLarge:
            self.init(.contentTooLarge, code: "payload_too_large", error.body ?? "request body too large")
        case .badRequest:
            self.init(.badRequest, code: "invalid_request", error.body ?? "bad request")
        default:
            let code = String(error.status.reasonPhrase.lowercased().map { $0 == " " ? "_" : $0 })
            self.init(error.status, code: code, error.body ?? error.status.reasonPhrase)
        }
        headers = error.headers
    }
}
