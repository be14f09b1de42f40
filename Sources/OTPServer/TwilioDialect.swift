import HTTPTypes
import Hummingbird
import Logging
import OTPCore

/// Twilio's error body: `{"code", "message", "more_info", "status"}` with Twilio's numeric
/// codes (never RFC 9457's `type`/`title`: Twilio's SDKs read these four fields).
struct TwilioFailure: HTTPResponseError {
    var status: HTTPResponse.Status
    var code: Int
    var message: String
    var headers: HTTPFields

    init(_ status: HTTPResponse.Status, _ code: Int, _ message: String, headers: HTTPFields = [:]) {
        (self.status, self.code, self.message, self.headers) = (status, code, message, headers)
        // Every 429 says when to come back.
        if status == .tooManyRequests, self.headers[.retryAfter] == nil { self.headers[.retryAfter] = "1" }
    }

    static let unauthorized = TwilioFailure(
        .unauthorized, 20003, "Authenticate", headers: [.wwwAuthenticate: #"Basic realm="Twilio API""#])
    static let notFound = TwilioFailure(.notFound, 20404, "The requested resource was not found")

    static func invalidParameter(_ name: String, _ reason: String) -> TwilioFailure {
        TwilioFailure(.badRequest, 60200, "Invalid parameter `\(name)`: \(reason)")
    }

    static func retry(_ seconds: Int) -> HTTPFields { [.retryAfter: String(max(1, seconds))] }

    init(_ refusal: TwilioVerify.Refusal) {
        switch refusal {
        case .notFound: self = .notFound
        case .invalidParameter(let name, let reason): self = .invalidParameter(name, reason)
        case .maxSendAttempts(let seconds):
            self.init(.tooManyRequests, 60203, "Max send attempts reached", headers: Self.retry(seconds))
        }
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var json = JSONWriter()
        json.field("code", code)
        json.field("message", message)
        json.field("more_info", "https://www.twilio.com/docs/errors/\(code)")
        json.field("status", Int(status.code))
        return json.response(status: status, headers: headers)
    }
}

/// Twilio Verify's dialect: each engine refusal as Twilio words it. A bad parameter is 400
/// 60200 naming it; no such service or verification 404 20404; a verification's spent check
/// attempts 429 60202; every other quota 429 20429 (with Retry-After).
struct TwilioDialect: Dialect {
    typealias Failure = TwilioFailure

    func failure(_ error: OTPError, logger: Logger) -> Failure {
        typealias F = TwilioFailure
        switch error {
        case .appNotFound, .otpNotFound, .userNotFound, .botCodeNotFound:
            return .notFound
        case .appDisabled:
            return F(.forbidden, 20403, "The service's app is disabled")
        case .invalidIdentifier:
            return .invalidParameter("To", "must be an E.164 phone number or an email address")
        case .invalidField(let name, let reason):
            return .invalidParameter(name, reason)
        case .countryNotAllowed:
            return .invalidParameter("To", "this service does not send SMS or calls to that country")
        case .channelNotSupported(let reason):
            return .invalidParameter("Channel", reason)
        case .otpExhausted(let seconds):
            return F(.tooManyRequests, 60202, "Max check attempts reached", headers: F.retry(seconds))
        case .tooManyFailures(let s), .tooManyFailuresFromIP(let s), .identifierLocked(let s), .resendCooldown(let s),
            .tooManySends(let s), .tooManySendsFromIP(let s), .tooManyCallsForApp(let s), .tooManyRefreshes(let s):
            let v1 = V1Dialect().failure(error, logger: logger)
            return F(.tooManyRequests, 20429, "Too many requests: \(v1.message)", headers: F.retry(s))
        case .deliveryFailed:
            return F(.badGateway, 20500, "The code could not be delivered; nothing was sent, try again")
        case .storageFailed(let failure):
            return failure.isTransient
                ? F(.serviceUnavailable, 20503, "Service unavailable; try again shortly", headers: F.retry(1))
                : F(.internalServerError, 20500, "Internal server error")
        case .overloaded:
            return F(.serviceUnavailable, 20503, "Service unavailable; try again shortly", headers: F.retry(1))
        default:
            // Refusals of other surfaces (users, tokens, passwords): never reached from here.
            return failure(V1Dialect().failure(error, logger: logger))
        }
    }

    /// A request refused at the edge (a bad form, 413, 415, no such route), by its status.
    func failure(_ refusal: APIError) -> Failure {
        let code: Int
        switch refusal.status {
        case .badRequest, .contentTooLarge, .unsupportedMediaType: code = 60200
        case .unauthorized: code = 20003
        case .forbidden: code = 20403
        case .notFound: code = 20404
        case .methodNotAllowed: code = 20004
        case .tooManyRequests: code = 20429
        case .serviceUnavailable: code = 20503
        default: code = 20500
        }
        return TwilioFailure(refusal.status, code, refusal.message, headers: refusal.headers)
    }
}

extension FormBody.Malformed {
    /// In v1's words, for any dialect to reword.
    var refusal: APIError {
        switch self {
        case .tooLarge: return APIError(.contentTooLarge, code: "payload_too_large", message)
        default: return APIError.badRequest(message, code: "invalid_form")
        }
    }
}
