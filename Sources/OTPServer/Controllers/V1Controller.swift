import Hummingbird
import HTTPTypes
import OTPCore

/// `/v1/apps/{app_id}/…`: register, login, activate, refresh, revoke, currentuser.
/// A thin adapter: decode, call the engine, encode.
struct V1Controller {
    let engine: OTPEngine
    let metrics: ServerMetrics
    let clientAddress: ClientAddress

    static let idempotencyKeyHeader = HTTPField.Name("Idempotency-Key")!

    func addRoutes(to router: Router<OTPRequestContext>) {
        let group = router.group("v1/apps/:app_id")
        group.post("register/otp") { request, context in try await send(request, context, mode: .register) }
        group.post("login/otp") { request, context in try await send(request, context, mode: .login) }
        group.post("otp/activate", use: activate)
        group.post("tokens/refresh", use: refresh)
        group.post("tokens/revoke", use: revoke)
        group.get("currentuser", use: currentUser)
    }

    struct SendBody: Decodable {
        var identifier: String
        var language: String?
        var channel: String?
        var firstName: String?
        var lastName: String?
        enum CodingKeys: String, CodingKey {
            case identifier, language, channel
            case firstName = "first_name"
            case lastName = "last_name"
        }
    }

    struct OTPIDResponse: ResponseEncodable {
        var otp_id: String
    }

    func send(_ request: Request, _ context: OTPRequestContext, mode: OTPEngine.SendMode) async throws -> Response {
        let appID = try context.parameters.require("app_id")
        let body = try await request.decodeJSON(as: SendBody.self, context: context)
        let result = try await engine.send(
            .init(
                identifier: body.identifier, channel: body.channel, language: body.language, firstName: body.firstName,
                lastName: body.lastName, clientIP: clientAddress.resolve(request, context: context),
                idempotencyKey: try Self.idempotencyKey(request)),
            appID: appID, mode: mode)
        if result.delivered { metrics.recordSend(app: appID, channel: result.channel.rawValue) }
        return try JSONResponse.make(
            OTPIDResponse(otp_id: result.otpID), status: mode == .register ? .created : .ok, request: request, context: context)
    }

    /// The `Idempotency-Key` header: 1-255 printable ASCII characters, or absent.
    static func idempotencyKey(_ request: Request) throws -> String? {
        guard let key = request.headers[idempotencyKeyHeader] else { return nil }
        guard (1...255).contains(key.utf8.count), key.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) else {
            throw APIError.badRequest("Idempotency-Key must be 1-255 printable ASCII characters", code: "invalid_idempotency_key")
        }
        return key
    }

    struct ActivateBody: Decodable {
        var otpID: String
        var otp: String
        enum CodingKeys: String, CodingKey {
            case otpID = "otp_id"
            case otp
        }
    }

    @Sendable func activate(_ request: Request, _ context: OTPRequestContext) async throws -> Response {
        let appID = try context.parameters.require("app_id")
        let body = try await request.decodeJSON(as: ActivateBody.self, context: context)
        do {
            let result = try await engine.activate(appID: appID, otpID: body.otpID, code: body.otp)
            metrics.recordVerification(app: appID, outcome: "success")
            return try JSONResponse.make(AuthResultResponse(result), request: request, context: context)
        } catch let error as OTPError {
            metrics.recordVerification(app: appID, outcome: Self.outcome(error))
            throw error
        }
    }

    static func outcome(_ error: OTPError) -> String {
        switch error {
        case .invalidOTP: return "invalid"
        case .otpNotFound: return "not_found"
        case .tooManyAttempts: return "too_many_attempts"
        default: return "refused"
        }
    }

    struct RefreshBody: Decodable {
        var refreshToken: String
        enum CodingKeys: String, CodingKey { case refreshToken = "refresh_token" }
    }

    @Sendable func refresh(_ request: Request, _ context: OTPRequestContext) async throws -> Response {
        let appID = try context.parameters.require("app_id")
        let body = try await request.decodeJSON(as: RefreshBody.self, context: context)
        let result = try await engine.refresh(appID: appID, refreshToken: body.refreshToken)
        return try JSONResponse.make(AuthResultResponse(result), request: request, context: context)
    }

    @Sendable func revoke(_ request: Request, _ context: OTPRequestContext) async throws -> Response {
        let appID = try context.parameters.require("app_id")
        let body = try await request.decodeJSON(as: RefreshBody.self, context: context)
        try await engine.revoke(appID: appID, refreshToken: body.refreshToken)
        return Response(status: .noContent)
    }

    struct UserResponse: ResponseEncodable {
        struct Body: Encodable {
            var id: String
            var email: String?
            var phone: String?
            var first_name: String
            var last_name: String
            var created_at: String
            var last_login_at: String?
            var status: String

            func encode(to encoder: any Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(id, forKey: .id)
                try c.encode(email, forKey: .email)
                try c.encode(phone, forKey: .phone)
                try c.encode(first_name, forKey: .first_name)
                try c.encode(last_name, forKey: .last_name)
                try c.encode(created_at, forKey: .created_at)
                try c.encode(last_login_at, forKey: .last_login_at)
                try c.encode(status, forKey: .status)
            }
            enum CodingKeys: String, CodingKey {
                case id, email, phone, first_name, last_name, created_at, last_login_at, status
            }
        }
        var user: Body
    }

    @Sendable func currentUser(_ request: Request, _ context: OTPRequestContext) async throws -> Response {
        let appID = try context.parameters.require("app_id")
        _ = try engine.app(appID)
        guard let authorization = request.headers[.authorization], authorization.lowercased().hasPrefix("bearer ") else {
            throw OTPError.invalidAccessToken("send the auth_token as 'Authorization: Bearer <token>'")
        }
        let token = String(authorization.dropFirst(7).filter { $0 != " " })
        let user = try await engine.currentUser(appID: appID, accessToken: token)
        let body = UserResponse.Body(
            id: user.id, email: user.email, phone: user.phone, first_name: user.firstName, last_name: user.lastName,
            created_at: RFC3339.format(user.createdAt), last_login_at: user.lastLoginAt.map(RFC3339.format), status: user.status)
        return try JSONResponse.make(UserResponse(user: body), request: request, context: context)
    }
}

/// `{"auth_result": {…}}`
struct AuthResultResponse: ResponseEncodable {
    struct Body: Encodable {
        var auth_token: String
        var redirect_url: String
        var refresh_token: String
        var refresh_token_expiration: Int
    }
    var auth_result: Body

    init(_ result: AuthResult) {
        auth_result = Body(
            auth_token: result.authToken, redirect_url: result.redirectURL, refresh_token: result.refreshToken,
            refresh_token_expiration: result.refreshTokenExpiration)
    }
}

enum JSONResponse {
    static func make(
        _ value: some ResponseEncodable, status: HTTPResponse.Status = .ok, request: Request, context: OTPRequestContext
    ) throws -> Response {
        var response = try value.response(from: request, context: context)
        response.status = status
        return response
    }
}
