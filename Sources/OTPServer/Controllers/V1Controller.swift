import Hummingbird
import Delivery
import HTTPTypes
import OTPCore
import OTPCrypto

/// `/v1/apps/{app_id}/…`: register, login (by code or password), activate, refresh, revoke, currentuser.
/// A thin adapter: decode, call the engine, encode.
struct V1Controller {
    let engine: OTPEngine
    /// Passwords, over the engine (a view, nothing stored).
    var passwords: Passwords { Passwords(engine: engine) }
    let metrics: ServerMetrics
    let clientAddress: ClientAddress

    static let idempotencyKeyHeader = HTTPField.Name("Idempotency-Key")!

    func addRoutes(to router: Router<OTPRequestContext>) {
        let group = router.group("v1/apps/:app_id")
        group.post("register/otp") { request, context in try await send(request, context, mode: .register) }
        group.post("login/otp") { request, context in try await send(request, context, mode: .login) }
        group.post("login/password", use: loginWithPassword)
        group.post("otp/activate", use: activate)
        group.post("tokens/refresh", use: refresh)
        group.post("tokens/revoke", use: revoke)
        group.get("currentuser", use: currentUser)
    }

    struct SendBody: FlatJSONBody {
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

        init?(fields: FlatJSON) {
            guard let identifier = fields["identifier"] else { return nil }
            self.identifier = identifier
            (language, channel, firstName, lastName) = (fields["language"], fields["channel"], fields["first_name"], fields["last_name"])
        }
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
        var json = JSONWriter()
        json.field("otp_id", result.otpID)
        json.field("channel", result.channel.rawValue)
        return json.response(status: mode == .register ? .created : .ok)
    }

    /// The `Idempotency-Key` header: 1-255 printable ASCII characters, or absent.
    static func idempotencyKey(_ request: Request) throws -> String? {
        guard let key = request.headers[idempotencyKeyHeader] else { return nil }
        guard (1...255).contains(key.utf8.count), key.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) else {
            throw APIError.badRequest("Idempotency-Key must be 1-255 printable ASCII characters", code: "invalid_idempotency_key")
        }
        return key
    }

    struct ActivateBody: FlatJSONBody {
        var otpID: String
        var otp: String
        enum CodingKeys: String, CodingKey {
            case otpID = "otp_id"
            case otp
        }

        init?(fields: FlatJSON) {
            guard let otpID = fields["otp_id"], let otp = fields["otp"] else { return nil }
            (self.otpID, self.otp) = (otpID, otp)
        }
    }

    @Sendable func activate(_ request: Request, _ context: OTPRequestContext) async throws -> Response {
        let appID = try context.parameters.require("app_id")
        let body = try await request.decodeJSON(as: ActivateBody.self, context: context)
        let clientIP = clientAddress.resolve(request, context: context)
        let result = try await engine.activate(appID: appID, otpID: body.otpID, code: body.otp, clientIP: clientIP)
        return Self.authResponse(result)
    }

    struct PasswordBody: Decodable {
        var identifier: String
        var password: String
    }

    @Sendable func loginWithPassword(_ request: Request, _ context: OTPRequestContext) async throws -> Response {
        let appID = try context.parameters.require("app_id")
        let body = try await request.decodeJSON(as: PasswordBody.self, context: context)
        let result = try await passwords.signIn(
            appID: appID, identifier: body.identifier, password: body.password,
            clientIP: clientAddress.resolve(request, context: context))
        return Self.authResponse(result)
    }

    struct RefreshBody: FlatJSONBody {
        var refreshToken: String
        enum CodingKeys: String, CodingKey { case refreshToken = "refresh_token" }

        init?(fields: FlatJSON) {
            guard let refreshToken = fields["refresh_token"] else { return nil }
            self.refreshToken = refreshToken
        }
    }

    @Sendable func refresh(_ request: Request, _ context: OTPRequestContext) async throws -> Response {
        let appID = try context.parameters.require("app_id")
        let body = try await request.decodeJSON(as: RefreshBody.self, context: context)
        let result = try await engine.refresh(
            appID: appID, refreshToken: body.refreshToken, clientIP: clientAddress.resolve(request, context: context))
        return Self.authResponse(result)
    }

    @Sendable func revoke(_ request: Request, _ context: OTPRequestContext) async throws -> Response {
        let appID = try context.parameters.require("app_id")
        let body = try await request.decodeJSON(as: RefreshBody.self, context: context)
        try await engine.revoke(appID: appID, refreshToken: body.refreshToken)
        return Response(status: .noContent)
    }

    @Sendable func currentUser(_ request: Request, _ context: OTPRequestContext) async throws -> Response {
        let appID = try context.parameters.require("app_id")
        _ = try engine.app(appID)
        guard let token = request.bearerToken else {
            throw OTPError.invalidAccessToken("send the auth_token as 'Authorization: Bearer <token>'")
        }
        let user = try await engine.currentUser(appID: appID, accessToken: token)
        var fields = JSONWriter()
        fields.field("id", user.id)
        fields.field("email", user.email)
        fields.field("phone", user.phone)
        fields.field("first_name", user.firstName)
        fields.field("last_name", user.lastName)
        fields.field("created_at", UTCTime.rfc3339(user.createdAt))
        fields.field("last_login_at", user.lastLoginAt.map(UTCTime.rfc3339))
        fields.field("status", user.status)
        var json = JSONWriter()
        json.field("user", fields)
        return json.response()
    }

    /// `{"auth_result": {…}}`, written straight to bytes: it is on the hot path of every sign-in
    /// and refresh, where JSONEncoder showed in the profile.
    static func authResponse(_ result: AuthResult) -> Response {
        var fields = JSONWriter()
        fields.field("auth_token", result.authToken)
        fields.field("redirect_url", result.redirectURL)
        fields.field("refresh_token", result.refreshToken)
        fields.field("refresh_token_expiration", result.refreshTokenExpiration)
        var json = JSONWriter()
        json.field("auth_result", fields)
        return json.tokenResponse()
    }
}
