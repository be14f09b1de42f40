import Delivery
import Hummingbird
import HTTPTypes
import Logging
import OTPCore

/// `/api/auth/otp/send` and `/api/auth/otp/verify`: clients that name an app by `projectId`
/// and the identifier rather than an otp_id. camelCase bodies, `{"message", "code"}` errors.
///
/// send signs in or registers: a new identifier becomes an unverified user when the app's
/// registration is open (as v1 register), an existing one, verified or not, gets a code (as v1
/// login); on a closed app an unknown identifier is 403 `registration_closed` (or, with
/// `conceal_unknown_users`, answered like a known one). verify checks the code of the
/// identifier's latest code exactly as v1 activate does, and answers v1's tokens.
struct ProjectVerifyController {
    let engine: OTPEngine
    let metrics: ServerMetrics
    let clientAddress: ClientAddress

    func addRoutes(to router: Router<OTPRequestContext>) {
        let group = router.group("api/auth/otp")
            .add(middleware: DialectMiddleware(dialect: ProjectVerifyDialect(), metrics: metrics))
        group.post("send", use: send)
        group.post("verify", use: verify)
    }

    struct SendBody: Decodable {
        var identifier: String
        var projectId: String
        var channel: String?
    }

    @Sendable func send(_ request: Request, _ context: OTPRequestContext) async throws -> Response {
        let body = try await request.decodeJSON(as: SendBody.self, context: context)
        _ = try await engine.send(
            .init(identifier: body.identifier, channel: body.channel, clientIP: clientAddress.resolve(request, context: context)),
            appID: body.projectId, mode: .signIn)
        var json = JSONWriter()
        json.field("message", "OTP sent successfully")
        return json.response()
    }

    struct VerifyBody: Decodable {
        var identifier: String
        var otp: String
        var projectId: String
    }

    @Sendable func verify(_ request: Request, _ context: OTPRequestContext) async throws -> Response {
        let body = try await request.decodeJSON(as: VerifyBody.self, context: context)
        let appID = body.projectId
        let clientIP = clientAddress.resolve(request, context: context)
        let result = try await engine.activate(appID: appID, identifier: body.identifier, code: body.otp, clientIP: clientIP)
        var user = JSONWriter()
        user.field("_id", result.user.id)
        user.field("email", result.user.email)
        user.field("firstName", result.user.firstName)
        user.field("lastName", result.user.lastName)
        var json = JSONWriter()
        json.field("message", "OTP verified successfully")
        json.field("token", result.authToken)
        json.field("refreshToken", result.refreshToken)
        json.field("expiresIn", result.expiresIn)
        json.field("user", user)
        return json.tokenResponse()
    }
}

/// Project verify's dialect, `{"message", "code"}`: the v1 status and code of each failure (the
/// codes are the same snake_case words), except that a wrong, expired or missing code is 401
/// `invalid_otp`, an unknown `projectId` is 404 `project_not_found`, a disabled one 403
/// `project_disabled`, and a new identifier on a project with closed registration is 403
/// `registration_closed`.
struct ProjectVerifyDialect: Dialect {
    typealias Failure = CodedFailure

    func failure(_ error: OTPError, logger: Logger) -> Failure {
        var answer = failure(V1Dialect().failure(error, logger: logger))
        switch error {
        case .otpNotFound:
            (answer.status, answer.code, answer.message) = (.unauthorized, "invalid_otp", "the code is wrong or expired")
        case .appNotFound(let id):
            (answer.code, answer.message) = ("project_not_found", "no project has the id '\(id)'")
        case .appDisabled(let id):
            (answer.code, answer.message) = ("project_disabled", "the project '\(id)' is disabled")
        case .userNotFound:
            // send on a project whose registration is closed, for an identifier it does not know
            (answer.status, answer.code, answer.message) = (.forbidden, "registration_closed", "this project does not accept new users")
        default: break
        }
        return answer
    }

    func failure(_ refusal: APIError) -> Failure {
        Failure(refusal.status, refusal.code, refusal.message, headers: refusal.headers, layout: .messageThenCode)
    }
}
