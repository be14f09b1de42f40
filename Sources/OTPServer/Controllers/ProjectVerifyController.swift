import Delivery
import Hummingbird
import HTTPTypes
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
            .add(middleware: SurfaceErrorMiddleware(metrics: metrics, map: SurfaceError.projectVerify))
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
        let result = try await engine.send(
            .init(identifier: body.identifier, channel: body.channel, clientIP: clientAddress.resolve(request, context: context)),
            appID: body.projectId, mode: .signIn)
        if result.delivered { metrics.recordSend(app: body.projectId, channel: result.channel.rawValue) }
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
        let result: AuthResult
        do {
            result = try await engine.activate(
                appID: appID, identifier: body.identifier, code: body.otp,
                clientIP: clientAddress.resolve(request, context: context))
            metrics.recordVerification(app: appID, outcome: "success")
        } catch {
            // Only a configured app becomes a label: projectId is the client's choice.
            if engine.apps[appID] != nil { metrics.recordVerification(app: appID, outcome: V1Controller.outcome(error)) }
            throw error
        }
        var user = JSONWriter()
        user.field("_id", result.user.id)
        user.field("email", result.user.email)
        user.field("firstName", result.user.firstName)
        user.field("lastName", result.user.lastName)
        var json = JSONWriter()
        json.field("message", "OTP verified successfully")
        json.field("token", result.authToken)
        json.field("refreshToken", result.refreshToken)
        json.field("expiresIn", try engine.app(appID).config.tokens.accessTTLSeconds)
        json.field("user", user)
        var response = json.response()
        response.headers[.cacheControl] = "no-store"
        return response
    }
}
