import HTTPTypes
import OTPCore

extension APIError {
    /// Every engine refusal → its v1 status and code, in this one place.
    init(_ error: OTPError) {
        func retry(_ seconds: Int) -> HTTPFields { [.retryAfter: String(max(1, seconds))] }
        switch error {
        case .appNotFound(let id):
            self.init(.notFound, code: "app_not_found", "no app has the id '\(id)'")
        case .appDisabled(let id):
            self.init(.forbidden, code: "app_disabled", "the app '\(id)' is disabled")
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

extension SurfaceError {
    /// Project verify: the v1 status and code of each failure (the codes are the same snake_case
    /// words), except that a wrong, expired or missing code is 401 `invalid_otp`, an unknown
    /// `projectId` is 404 `project_not_found`, a disabled one 403 `project_disabled`, and a new
    /// identifier on a project with closed registration is 403 `registration_closed`.
    static func projectVerify(_ error: APIError, _ cause: OTPError?) -> SurfaceError {
        var mapped = SurfaceError(
            shape: .projectVerify, status: error.status, code: error.code, message: error.message, headers: error.headers)
        switch cause {
        case .otpNotFound?:
            (mapped.status, mapped.code, mapped.message) = (.unauthorized, "invalid_otp", "the code is wrong or expired")
        case .appNotFound(let id)?:
            (mapped.code, mapped.message) = ("project_not_found", "no project has the id '\(id)'")
        case .appDisabled(let id)?:
            (mapped.code, mapped.message) = ("project_disabled", "the project '\(id)' is disabled")
        case .userNotFound?:
            // send on a project whose registration is closed, for an identifier it does not know
            (mapped.status, mapped.code, mapped.message) = (
                .forbidden, "registration_closed", "this project does not accept new users"
            )
        default: break
        }
        return mapped
    }

    /// The hub routes, each of which names a wrong code its own way (`wrong-code` for
    /// otp.verify, `wrong-otp` for otp.set_password).
    enum HubRoute: Sendable {
        case send, verify, setPassword
    }

    /// The hub: 400 `invalid-request` (a field, with the v1 message naming it), 404 `no-user`,
    /// 401 `wrong-code`/`wrong-otp`, 415 `unsupported_media_type` (a body not sent as JSON), 429 `too-many-attempts` or `rate-limited` (with
    /// Retry-After), 503 `INTERNAL_ERROR` (Redis unreachable, with Retry-After) and 500
    /// `INTERNAL_ERROR` for everything else (a failed delivery included).
    static func hub(_ error: APIError, _ cause: OTPError?, route: HubRoute) -> SurfaceError {
        func make(_ status: HTTPResponse.Status, _ code: String, _ message: String) -> SurfaceError {
            SurfaceError(shape: .hub, status: status, code: code, message: message, headers: error.headers)
        }
        switch cause {
        case .userNotFound?: return make(.notFound, "no-user", "no user has this email")
        case .otpNotFound?, .invalidOTP?:
            return make(.unauthorized, route == .setPassword ? "wrong-otp" : "wrong-code", "the code or secret is wrong or expired")
        case .otpExhausted?, .tooManyFailures?, .tooManyFailuresFromIP?, .identifierLocked?:
            return make(.tooManyRequests, "too-many-attempts", error.message)
        case .deliveryFailed?: return make(.internalServerError, "INTERNAL_ERROR", "the code could not be delivered")
        case .appDisabled?: return make(.forbidden, "disabled", "the hub's app is disabled")
        default: break
        }
        switch error.status.code {
        case 400, 413: return make(error.status, "invalid-request", error.message)
        case 415: return make(error.status, error.code, error.message)
        case 429: return make(.tooManyRequests, "rate-limited", error.message)
        case 503: return make(.serviceUnavailable, "INTERNAL_ERROR", error.message)
        default: return make(.internalServerError, "INTERNAL_ERROR", "internal error")
        }
    }
}
