import Hummingbird
import HTTPTypes
import NIOCore
import OTPCore
import OTPCrypto

/// `/v1/apps/{app_id}/.well-known/jwks.json` and `…/openid-configuration`: what a resource
/// server needs to verify an app's tokens with public keys alone (Passage's paths, so its SDK
/// needs only a new host). Both answer from what the app's configuration fixed at startup.
struct WellKnownController {
    let engine: OTPEngine
    let clientAddress: ClientAddress
    /// `server.public_url` without a trailing `/`; nil: the request's scheme and Host.
    let publicURL: String?

    static let forwardedProto = HTTPField.Name("X-Forwarded-Proto")!
    /// JWKS clients refetch at most every 5 minutes (README "Rotating signing keys" waits this long).
    static let cacheControl = "public, max-age=300"

    init(engine: OTPEngine, clientAddress: ClientAddress, publicURL: String?) {
        self.engine = engine
        self.clientAddress = clientAddress
        var url = publicURL
        while url?.hasSuffix("/") == true { url?.removeLast() }
        self.publicURL = url
    }

    func addRoutes(to router: Router<OTPRequestContext>) {
        let group = router.group("v1/apps/:app_id/.well-known")
        group.get("jwks.json", use: jwks)
        group.get("openid-configuration", use: openIDConfiguration)
    }

    /// `{"keys": [...]}`: the public JWK of every listed key; `[]` for an HS256 app.
    @Sendable func jwks(_ request: Request, _ context: OTPRequestContext) async throws -> Response {
        let app = try engine.app(try context.parameters.require("app_id"))
        return Response(
            status: .ok, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: Self.cacheControl],
            body: .init(byteBuffer: ByteBuffer(bytes: app.tokenKeys.jwks)))
    }

    @Sendable func openIDConfiguration(_ request: Request, _ context: OTPRequestContext) async throws -> Response {
        let app = try engine.app(try context.parameters.require("app_id"))
        var json = JSONWriter()
        json.field("issuer", app.config.tokens.issuer)
        json.field("jwks_uri", "\(try baseURL(request, context))/v1/apps/\(app.id)/.well-known/jwks.json")
        json.field("id_token_signing_alg_values_supported", [app.tokenKeys.algorithm.rawValue])
        json.field("response_types_supported", ["token"])
        json.field("subject_types_supported", ["public"])
        var response = json.response()
        response.headers[.cacheControl] = Self.cacheControl
        return response
    }

    /// `server.public_url`, else `http://` (`https://` when a trusted proxy says so in
    /// `X-Forwarded-Proto`) and the request's Host, which must be a host name or address with
    /// an optional port: nothing else of a client's reaches the answer.
    func baseURL(_ request: Request, _ context: OTPRequestContext) throws -> String {
        if let publicURL { return publicURL }
        guard let host = request.head.authority, Self.isHost(host) else {
            throw APIError.badRequest(
                "the Host header must be a host name or address with an optional port (or set server.public_url)",
                code: "invalid_host")
        }
        let https = clientAddress.isFromTrustedProxy(context) && request.headers[Self.forwardedProto]?.lowercased() == "https"
        return "\(https ? "https" : "http")://\(host)"
    }

    /// `name[:port]`, `a.b.c.d[:port]` or `[v6][:port]`, at most 261 characters.
    static func isHost(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard (1...261).contains(bytes.count) else { return false }
        var name = bytes[...]
        if let colon = bytes.lastIndex(of: UInt8(ascii: ":")), bytes.last != UInt8(ascii: "]"),
            bytes.first == UInt8(ascii: "[") || !bytes[..<colon].contains(UInt8(ascii: ":"))
        {
            let port = bytes[(colon + 1)...]
            guard (1...5).contains(port.count), port.allSatisfy({ (48...57).contains($0) }) else { return false }
            name = bytes[..<colon]
        }
        if name.first == UInt8(ascii: "[") {
            guard name.count > 2, name.last == UInt8(ascii: "]") else { return false }
            return name.dropFirst().dropLast().allSatisfy { isHexDigit($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") }
        }
        return !name.isEmpty && name.count <= 253
            && name.allSatisfy { isHexDigit($0) || (97...122).contains($0) || (65...90).contains($0) || $0 == 45 || $0 == 46 }
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        (48...57).contains(byte) || (97...102).contains(byte) || (65...70).contains(byte)
    }
}
