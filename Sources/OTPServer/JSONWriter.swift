import Hummingbird
import NIOCore
import OTPCrypto

/// Writes a JSON object straight to bytes: error bodies, health answers, and the hot-path
/// bodies (otp_id, auth_result, user), where Foundation's JSONEncoder showed in the profile.
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

    /// An array of strings.
    mutating func field(_ name: String, _ values: [String]) {
        key(name)
        bytes.append(UInt8(ascii: "["))
        for (i, value) in values.enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: ",")) }
            JSONText.appendString(value, to: &bytes)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    /// A nested object.
    mutating func field(_ name: String, _ object: JSONWriter) {
        key(name)
        var inner = object
        bytes.append(contentsOf: inner.finish())
    }

    /// An array of objects.
    mutating func field(_ name: String, objects: [JSONWriter]) {
        key(name)
        bytes.append(UInt8(ascii: "["))
        for (index, object) in objects.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            var inner = object
            bytes.append(contentsOf: inner.finish())
        }
        bytes.append(UInt8(ascii: "]"))
    }

    /// The finished object as a JSON response.
    mutating func response(status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: finish())))
    }

    /// The finished object as a JSON response with `headers` (an error's Retry-After or
    /// WWW-Authenticate).
    mutating func response(status: HTTPResponse.Status, headers: HTTPFields) -> Response {
        var headers = headers
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: finish())))
    }

    /// The finished object as a JSON response that carries a token or a secret: `no-store`, so
    /// no cache between here and the client keeps it. Every such response is made here.
    mutating func tokenResponse() -> Response {
        Response(
            status: .ok, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
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
