import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import HTTPTypes
import Logging
import NIOCore
import NIOWebSocket
import OTPCore
import Synchronization

/// The hub services, bound to one app (`surfaces.hub.app`): the `/-/ws` WebSocket that binds a
/// socket id to the browser's session cookie while it stays open, and the `/-/svc/otp.*` calls,
/// each of which must carry that cookie and an open socket id bound to it.
///
/// The session cookie (`otpd_hub_session`) is HttpOnly, SameSite=Strict, Path=/-/, and Secure in
/// production mode; otpd sets it on the upgrade when the request carries none of the right
/// shape (256 random bits, 43 base64url characters). Redis holds only its hash, as the value of
/// the socket's binding (`{app:ws:<socket id>}`, TTL 60 s, renewed every 20 s by the open
/// connection, deleted when it closes), so every replica can check a socket opened on another.
///
/// An open socket lives at most `surfaces.hub.socket_max_seconds` (then the server closes it),
/// and one client IP holds at most `surfaces.hub.sockets_per_ip` at once, counted in Redis
/// across replicas (`{app:wsip:<IP or /64>}`). A socket beyond that is closed at once, before
/// its first message, with close code 1013 (try again later) and the reason
/// `too-many-sockets; retry after <s>`: the latest moment one of the client's sockets ends.
/// (The upgrade decision cannot answer an HTTP status: hummingbird-websocket answers a
/// refused upgrade with an empty 400.)
struct HubController {
    let engine: OTPEngine
    /// The hub's sockets and codes, over the engine (a view, nothing stored).
    var hub: HubSessions { HubSessions(engine: engine) }
    let metrics: ServerMetrics
    let clientAddress: ClientAddress
    let appID: String
    /// Whether the cookie carries `Secure` (production mode).
    let secureCookie: Bool
    /// `surfaces.hub.socket_max_seconds` and `surfaces.hub.sockets_per_ip`.
    let socketMaxSeconds: Int
    let socketsPerIP: Int

    static let cookieName = "otpd_hub_session"
    static let path = "/-/ws"

    func addRoutes(to router: Router<OTPRequestContext>) {
        let routes: [(String, HubDialect.Route, @Sendable (Request, OTPRequestContext) async throws -> Response)] = [
            ("otp.send", .send, send), ("otp.verify", .verify, verify), ("otp.set_password", .setPassword, setPassword),
        ]
        for (name, route, handler) in routes {
            router.group(RouterPath("-/svc/\(name)"))
                .add(middleware: DialectMiddleware(dialect: HubDialect(route: route), metrics: metrics))
                .post(use: handler)
        }
        // Reached only by a GET that is not a WebSocket upgrade.
        router.get(RouterPath(Self.path)) { _, _ -> Response in
            throw HubDialect.Failure(
                .upgradeRequired, "upgrade-required", "GET /-/ws is a WebSocket: send Connection: Upgrade and Upgrade: websocket",
                headers: [.upgrade: "websocket"])
        }
    }

    // MARK: the WebSocket

    /// Whether a request is for the hub's WebSocket.
    static func isUpgradeRequest(_ request: HTTPRequest) -> Bool {
        request.method == .get && (request.path ?? "").split(separator: "?", maxSplits: 1).first == Substring(Self.path)
    }

    /// The session of an upgrade, and the headers of its 101: the cookie, when the request
    /// carries no session of the right shape.
    func session(for request: HTTPRequest) -> (session: String, headers: HTTPFields) {
        if let sent = Self.session(in: request.headerFields) { return (sent, [:]) }
        let session = HubSessions.newSession()
        var headers: HTTPFields = [:]
        headers[.setCookie] = "\(Self.cookieName)=\(session); Path=/-/; HttpOnly; SameSite=Strict\(secureCookie ? "; Secure" : "")"
        return (session, headers)
    }

    /// The server's upgrade decision: `/-/ws` upgrades (setting the session cookie when the
    /// request has none), everything else stays HTTP. A socket beyond the client's
    /// `sockets_per_ip` is closed at once (1013), as is one whose place Redis could not count.
    func shouldUpgrade(
        _ request: HTTPRequest, channel: any Channel
    ) async -> ShouldUpgradeResult<WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>> {
        guard Self.isUpgradeRequest(request) else { return .dontUpgrade }
        let socketID = HubSessions.newSocketID()
        let (session, headers) = session(for: request)
        let lease: HubSessions.SocketLease
        do {
            let clientIP = clientAddress.resolve(headers: request.headerFields, peer: channel.remoteAddress)
            switch try await hub.openSocket(
                appID: appID, socketID: socketID, clientIP: clientIP, maxSeconds: socketMaxSeconds, cap: socketsPerIP)
            {
            case .opened(let opened): lease = opened
            case .full(let seconds):
                return .upgrade(headers) { _, outbound, _ in
                    try await outbound.close(.unknown(1013), reason: "too-many-sockets; retry after \(seconds) s")
                }
            }
        } catch {
            return .upgrade(headers) { _, outbound, _ in
                try await outbound.close(.unexpectedServerError, reason: "storage unavailable")
            }
        }
        let (hub, appID, socketMaxSeconds) = (hub, appID, socketMaxSeconds)
        return .upgrade(headers) { inbound, outbound, context in
            do {
                guard try await hub.bindSocket(appID: appID, socketID: socketID, session: session) else {
                    await hub.releaseSocket(lease)
                    try await outbound.close(.unexpectedServerError, reason: "socket id taken")
                    return
                }
            } catch {
                context.logger.warning("hub socket not bound", metadata: ["error": "\(error)"])
                await hub.releaseSocket(lease)
                try await outbound.close(.unexpectedServerError, reason: "storage unavailable")
                return
            }
            var json = JSONWriter()
            json.field("socket_id", socketID)
            try await outbound.write(.text(String(decoding: json.finish(), as: UTF8.self)))
            await withTaskGroup(of: Void.self) { group in
                // Renews the binding and the client's place while the socket is open; a failed
                // renewal is retried next time. A place lost and taken meanwhile closes the socket.
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .seconds(HubSessions.socketRenewSeconds))
                        if Task.isCancelled { return }
                        _ = try? await hub.bindSocket(appID: appID, socketID: socketID, session: session)
                        if await !hub.renewSocket(lease) {
                            try? await outbound.close(.policyViolation, reason: "too many sockets from this address")
                            return
                        }
                    }
                }
                // socket_max_seconds after it opened the socket ends: unbound at once, then closed.
                group.addTask {
                    try? await Task.sleep(for: .seconds(socketMaxSeconds))
                    if Task.isCancelled { return }
                    await hub.closeSocket(appID: appID, socketID: socketID, session: session)
                    await hub.releaseSocket(lease)
                    try? await outbound.close(.normalClosure, reason: "socket_max_seconds reached: open a new socket")
                }
                // Messages from the browser carry nothing; reading them answers pings and closes.
                do {
                    for try await _ in inbound {}
                } catch {}
                group.cancelAll()
            }
            await hub.closeSocket(appID: appID, socketID: socketID, session: session)
            await hub.releaseSocket(lease)
        }
    }

    /// The session id of a `Cookie` header, when one of the right shape is there.
    static func session(in headers: HTTPFields) -> String? {
        for header in headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, parts[0].trimmingASCIIWhitespace() == cookieName else { continue }
                let value = parts[1].trimmingASCIIWhitespace()
                if HubSessions.isSession(value) { return value }
            }
        }
        return nil
    }

    /// Refuses the call (401 `code`) unless its cookie names a session and `socketID` is open
    /// and bound to that session.
    func requireSocket(_ request: Request, socketID: String, code: String) async throws {
        guard let session = Self.session(in: request.headers) else {
            throw HubDialect.Failure(.unauthorized, code, "no hub session cookie: open the WebSocket at /-/ws first")
        }
        guard try await hub.isSocketBound(appID: appID, socketID: socketID, session: session) else {
            throw HubDialect.Failure(.unauthorized, code, "socket_id is not an open socket of this session")
        }
    }

    // MARK: otp.send

    struct SendBody: Decodable {
        var email: String
        var socketID: String
        var method: String?
        enum CodingKeys: String, CodingKey {
            case email, method
            case socketID = "socket_id"
        }
    }

    @Sendable func send(_ request: Request, _ context: OTPRequestContext) async throws -> Response {
        let body = try await request.decodeJSON(as: SendBody.self, context: context)
        try await requireSocket(request, socketID: body.socketID, code: "INVALID_SOCKET")
        let result = try await hub.send(
            appID: appID, email: body.email, method: body.method == "otp" ? .numeric : .unambiguous,
            clientIP: clientAddress.resolve(request, context: context))
        var user = JSONWriter()
        user.field("uid", result.userID)
        user.field("email", result.email)
        var json = JSONWriter()
        json.field("secret", result.secret)
        json.field("user", user)
        json.field("sent", result.sent)
        return json.tokenResponse()
    }

    // MARK: otp.verify

    struct VerifyBody: Decodable {
        var email: String
        var code: String
        var secret: String
        var socketID: String
        enum CodingKeys: String, CodingKey {
            case email, code, secret
            case socketID = "socket_id"
        }
    }

    @Sendable func verify(_ request: Request, _ context: OTPRequestContext) async throws -> Response {
        let body = try await request.decodeJSON(as: VerifyBody.self, context: context)
        try await requireSocket(request, socketID: body.socketID, code: "no-socket")
        let result = try await hub.verify(
            appID: appID, email: body.email, code: body.code, secret: body.secret,
            clientIP: clientAddress.resolve(request, context: context))
        var json = JSONWriter()
        json.field("secret", result.secret)
        json.field("uid", result.userID)
        json.field("expires_at", result.expiresAt)
        return json.tokenResponse()
    }

    // MARK: otp.set_password

    struct SetPasswordBody: Decodable {
        var uid: String
        var code: String
        var secret: String
        var password: String
        var socketID: String
        enum CodingKeys: String, CodingKey {
            case uid, code, secret, password
            case socketID = "socket_id"
        }
    }

    @Sendable func setPassword(_ request: Request, _ context: OTPRequestContext) async throws -> Response {
        let body = try await request.decodeJSON(as: SetPasswordBody.self, context: context)
        try await requireSocket(request, socketID: body.socketID, code: "no-socket")
        let clientIP = clientAddress.resolve(request, context: context)
        let result = try await hub.setPassword(
            appID: appID, userID: body.uid, code: body.code, secret: body.secret, password: body.password, clientIP: clientIP)
        var json = JSONWriter()
        json.field("uid", result.user.id)
        json.field("auth_token", result.authToken)
        json.field("refresh_token", result.refreshToken)
        json.field("expires_in", result.expiresIn)
        return json.tokenResponse()
    }
}

/// The hub's dialect, `{"error", "message"}`: 400 `invalid-request` (a field, with the v1
/// message naming it), 404 `no-user`, 401 `wrong-code`/`wrong-otp`, 415
/// `unsupported_media_type` (a body not sent as JSON), 429 `too-many-attempts` or
/// `rate-limited` (with Retry-After), 503 `INTERNAL_ERROR` (Redis unreachable, with
/// Retry-After) and 500 `INTERNAL_ERROR` for everything else (a failed delivery included).
struct HubDialect: Dialect {
    /// The hub routes, each of which names a wrong code its own way (`wrong-code` for
    /// otp.verify, `wrong-otp` for otp.set_password).
    enum Route: Sendable {
        case send, verify, setPassword
    }

    let route: Route

    typealias Failure = CodedFailure

    func failure(_ error: OTPError, logger: Logger) -> Failure {
        let v1 = V1Dialect().failure(error, logger: logger)
        switch error {
        case .userNotFound:
            return Failure(.notFound, "no-user", "no user has this email", headers: v1.headers)
        case .otpNotFound, .invalidOTP:
            return Failure(
                .unauthorized, route == .setPassword ? "wrong-otp" : "wrong-code", "the code or secret is wrong or expired",
                headers: v1.headers)
        case .otpExhausted, .tooManyFailures, .tooManyFailuresFromIP, .identifierLocked:
            return Failure(.tooManyRequests, "too-many-attempts", v1.message, headers: v1.headers)
        case .deliveryFailed:
            return Failure(.internalServerError, "INTERNAL_ERROR", "the code could not be delivered", headers: v1.headers)
        case .appDisabled:
            return Failure(.forbidden, "disabled", "the hub's app is disabled", headers: v1.headers)
        default:
            return failure(v1)
        }
    }

    func failure(_ refusal: APIError) -> Failure {
        switch refusal.status.code {
        case 400, 413: Failure(refusal.status, "invalid-request", refusal.message, headers: refusal.headers)
        case 415: Failure(refusal.status, refusal.code, refusal.message, headers: refusal.headers)
        case 429: Failure(.tooManyRequests, "rate-limited", refusal.message, headers: refusal.headers)
        case 503: Failure(.serviceUnavailable, "INTERNAL_ERROR", refusal.message, headers: refusal.headers)
        default: Failure(.internalServerError, "INTERNAL_ERROR", "internal error", headers: refusal.headers)
        }
    }
}

