public import Hummingbird
import NIOCore

/// An error the client sees, in the v1 shape: `{"code": "snake_case", "error": "message", …}`.
///
/// v1's dialect (`V1Dialect`) answers in it, and every request refused before it reaches the
/// engine (a bad body, 413, 415, a missing field) is one; other surfaces' dialects reword it.
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
        return json.response(status: status, headers: headers)
    }

    // MARK: common errors

    public static func badRequest(_ message: String, code: String = "invalid_request") -> APIError {
        APIError(.badRequest, code: code, message)
    }

    public static let serviceUnavailable = APIError(
        .serviceUnavailable, code: "service_unavailable", "a dependency (Redis) is unavailable; try again shortly",
        headers: [.retryAfter: "1"])
}
