import Delivery
import Hummingbird
import HTTPTypes
import Logging
import NIOCore
import OTPCore

/// `POST /auth/otp`: password reset by emailed code, for the app `surfaces.password_reset.app`,
/// in the shape this API's clients expect: `{"success": bool, "message": "…"}` for every answer,
/// errors included. A thin adapter: decode, call the engine, encode.
struct PasswordResetController {
    let engine: OTPEngine
    /// Passwords, over the engine (a view, nothing stored).
    var passwords: Passwords { Passwords(engine: engine) }
    let appID: String
    let metrics: ServerMetrics
    let clientAddress: ClientAddress

    static let sent = "Successfully sent OTP."
    static let reset = "Successfully validated OTP and reset password."
    static let invalidCode = "Something went wrong. Could not validate OTP. Please try again."
    static let invalidAction = "Invalid action."

    func addRoutes(to router: Router<OTPRequestContext>) {
        router.group("auth/otp")
            .add(middleware: DialectMiddleware(dialect: PasswordResetDialect(), metrics: metrics))
            .post(use: handle)
    }

    /// Every field optional here: which ones are required depends on `action`.
    struct Body: Decodable {
        var action: String
        var email: String?
        var otp: String?
        var newPassword: String?
        enum CodingKeys: String, CodingKey {
            case action, email, otp
            case newPassword = "new_password"
        }
    }

    @Sendable func handle(_ request: Request, _ context: OTPRequestContext) async throws -> Response {
        let body = try await request.decodeJSON(as: Body.self, context: context)
        let clientIP = clientAddress.resolve(request, context: context)
        switch body.action {
        case "create":
            let email = try Self.require(body.email, "email")
            _ = try await passwords.sendReset(appID: appID, email: email, clientIP: clientIP)
            return ResetReply(.ok, Self.sent).response()
        case "validate":
            let email = try Self.require(body.email, "email")
            let otp = try Self.require(body.otp, "otp")
            let password = try Self.require(body.newPassword, "new_password")
            try await passwords.reset(appID: appID, email: email, code: otp, newPassword: password, clientIP: clientIP)
            return ResetReply(.ok, Self.reset).response()
        default:
            throw ResetReply(.badRequest, Self.invalidAction)
        }
    }

    static func require(_ value: String?, _ field: String) throws -> String {
        guard let value else { throw ResetReply(.badRequest, "missing required field '\(field)'") }
        return value
    }
}

/// Password reset's dialect: every answer, errors included, is `{"success": bool, "message": "…"}`.
struct PasswordResetDialect: Dialect {
    /// Every engine refusal → its status and message in this surface's shape, in this one place.
    func failure(_ error: OTPError, logger: Logger) -> ResetReply {
        func tooMany(_ seconds: Int) -> ResetReply {
            ResetReply(
                .tooManyRequests, "Too many attempts. Please try again in \(max(1, seconds)) seconds.",
                headers: [.retryAfter: String(max(1, seconds))])
        }
        switch error {
        case .invalidOTP, .otpNotFound, .otpExhausted:
            return ResetReply(.badRequest, PasswordResetController.invalidCode)
        case .invalidPassword(let reason):
            return ResetReply(.badRequest, Self.sentence(reason))
        case .invalidIdentifier:
            return ResetReply(.badRequest, "The email must be an email address.")
        case .invalidField(let name, let reason):
            return ResetReply(.badRequest, Self.sentence("\(name) \(reason)"))
        case .channelNotSupported(let message):
            return ResetReply(.badRequest, Self.sentence(message))
        case .userNotFound:
            return ResetReply(.notFound, "No account uses this email address.")
        case .resendCooldown(let seconds), .tooManySends(let seconds), .tooManySendsFromIP(let seconds),
            .tooManyCallsForApp(let seconds), .tooManyFailures(let seconds), .tooManyFailuresFromIP(let seconds),
            .identifierLocked(let seconds), .tooManyRefreshes(let seconds):
            return tooMany(seconds)
        case .deliveryFailed:
            return ResetReply(.badGateway, "Could not send the OTP. Please try again.")
        case .storageFailed(let failure):
            return failure.isTransient ? Self.unavailable : ResetReply(.internalServerError, "Internal error.")
        case .overloaded:
            return Self.unavailable
        case .appDisabled:
            return ResetReply(.forbidden, "Password reset is disabled.")
        case .appNotFound, .countryNotAllowed, .telegramNotLinked, .userAlreadyExists, .registrationClosed,
            .invalidRefreshToken, .refreshTokenReused, .invalidAccessToken, .invalidCredentials, .botCodeNotFound:
            // Not answers of a password reset: a misconfiguration at most.
            logger.error("unexpected refusal of a password reset", metadata: ["error": "\(error)"])
            return ResetReply(.internalServerError, "Internal error.")
        }
    }

    static let unavailable = ResetReply(
        .serviceUnavailable, "Service unavailable. Please try again shortly.", headers: [.retryAfter: "1"])

    /// A request refused before the engine (a bad body, 415): v1's status and message.
    func failure(_ refusal: APIError) -> ResetReply {
        ResetReply(refusal.status, refusal.message, headers: refusal.headers)
    }

    /// "the password must be…" → "The password must be…."
    static func sentence(_ text: String) -> String {
        guard let first = text.first else { return text }
        return first.uppercased() + text.dropFirst() + (text.hasSuffix(".") ? "" : ".")
    }
}

/// This surface's answer, success or error: `{"success": bool, "message": "…"}`.
struct ResetReply: HTTPResponseError, Sendable {
    var status: HTTPResponse.Status
    var message: String
    var headers: HTTPFields

    init(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.message = message
        self.headers = headers
    }

    func response() -> Response {
        var json = JSONWriter()
        json.field("success", status == .ok)
        json.field("message", message)
        var response = json.response(status: status)
        for field in headers { response.headers.append(field) }
        return response
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        response()
    }
}
