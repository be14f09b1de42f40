public import Hummingbird
import NIOCore

/// An error the client sees, in the v1 shape: `{"code": "snake_case", "error": "message", …}`.
///
/// Every failure that reaches a client is one of these; `ErrorMiddleware` maps everything
/// else (framework errors, Redis failures) to one in a single place.
public struct APIError: HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    /// Extra integer fields of the body, such as `attempts_remaining`.
    public var fields: [(String, Int)]
    /// Extra headers, such as `Retry-After` or `WWW-Authenticate`.
    public var headers: HTTPFields

    public init(
        _ status: HTTPResponse.Status, code: String, _ message: String,
        fields: [(String, Int)] = [], headers: HTTPFields = [:]
    ) {
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields
        self.headers = headers
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var json = JSONWriter()
        json.field("code", code)
        json.field("error", message)
        for (name, value) in fields { json.field(name, value) }
        var headers = self.headers
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: json.finish())))
    }

    // MARK: common errors

    public static func badRequest(_ message: String, code: String = "invalid_request") -> APIError {
        APIError(.badRequest, code: code, message)
    }

    public static let serviceUnavailable = APIError(
        .serviceUnavailable, code: "service_unavailable", "a dependency (Redis) is unavailable; try again shortly",
        headers: [.retryAfter: "1"])
}

/// An error of a surface with its own body shape: project verify's `{"message", "code"}`, the
/// hub's `{"error", "message"}`. Built from the v1 `APIError` of the same failure by the
/// surface's mapping in `OTPError+HTTP.swift`.
struct SurfaceError: HTTPResponseError, Sendable {
    enum Shape: Sendable {
        /// `{"message", "code"}`
        case projectVerify
        /// `{"error", "message"}`
        case hub
    }

    var shape: Shape
    var status: HTTPResponse.Status
    var code: String
    var message: String
    var headers: HTTPFields = [:]

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var json = JSONWriter()
        switch shape {
        case .projectVerify:
            json.field("message", message)
            json.field("code", code)
        case .hub:
            json.field("error", code)
            json.field("message", message)
        }
        var headers = self.headers
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: json.finish())))
    }
}
