public import Hummingbird
import NIOCore
import OTPCrypto

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

/// Writes one flat JSON object. Enough for error bodies, without an encoder on the error path.
struct JSONWriter {
    private var bytes: [UInt8] = [UInt8(ascii: "{")]

    mutating func field(_ name: String, _ value: String) {
        key(name)
        JSONText.appendString(value, to: &bytes)
    }

    mutating func field(_ name: String, _ value: Int) {
        key(name)
        bytes.append(contentsOf: String(value).utf8)
    }

    mutating func field(_ name: String, _ value: Bool) {
        key(name)
        bytes.append(contentsOf: (value ? "true" : "false").utf8)
    }

    mutating func field(_ name: String, _ value: String?) {
        if let value { field(name, value) } else { key(name); bytes.append(contentsOf: "null".utf8) }
    }

    mutating func field(_ name: String, _ value: Int?) {
        if let value { field(name, value) } else { key(name); bytes.append(contentsOf: "null".utf8) }
    }

    /// A nested object.
    mutating func field(_ name: String, _ object: JSONWriter) {
        key(name)
        var inner = object
        bytes.append(contentsOf: inner.finish())
    }

    /// The finished object as a JSON response.
    mutating func response(status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: finish())))
    }

    private mutating func key(_ name: String) {
        if bytes.count > 1 { bytes.append(UInt8(ascii: ",")) }
        JSONText.appendString(name, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
    }

    mutating func finish() -> [UInt8] {
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }
}
