import Foundation

/// JSON Web Tokens (RFC 7519): HS256 with OpenSSL's HMAC, RS256, ES256 and EdDSA with its
/// EVP signatures (`PrivateKey`); one algorithm per issuer (`KeySet`).
public enum JWT {
    /// The claims otpd issues. `sub` is the user id, `aud` the app id.
    public struct Claims: Sendable, Hashable, Codable {
        public var iss: String
        public var aud: String
        public var sub: String
        public var iat: Int
        public var exp: Int
        public var jti: String
        public var amr: [String]

        public init(iss: String, aud: String, sub: String, iat: Int, exp: Int, jti: String, amr: [String]) {
            self.iss = iss
            self.aud = aud
            self.sub = sub
            self.iat = iat
            self.exp = exp
            self.jti = jti
            self.amr = amr
        }
    }

    public enum VerificationError: Error, Sendable, Hashable {
        case malformed, unsupportedAlgorithm, unknownKey, badSignature, expired, notYetValid, wrongAudience, wrongIssuer
    }

    struct Header: Codable {
        var alg: String
        var typ: String?
        var kid: String?
    }

    /// `header.payload.signature` under `keys`' active key, the header naming its `alg` and `kid`.
    public static func sign(_ claims: Claims, with keys: KeySet) -> String {
        let signingInput = keys.encodedHeader + "." + Base64URL.encode(payload(claims))
        let signature: [UInt8]
        switch keys.activeKey {
        case .secret(let secret): signature = Digest.hmacSHA256(key: secret, message: Array(signingInput.utf8))
        case .privateKey(let key): signature = key.sign(Array(signingInput.utf8))
        }
        return signingInput + "." + Base64URL.encode(signature)
    }

    /// An HS256 token under `secret`, the header naming `kid`.
    public static func sign(_ claims: Claims, kid: String, secret: [UInt8]) -> String {
        sign(claims, with: KeySet(algorithm: .hs256, keys: [(kid, .secret(secret))], activeKid: kid))
    }

    /// The header's JSON: `{"alg":…,"typ":"JWT","kid":…}`.
    static func header(algorithm: Algorithm, kid: String) -> [UInt8] {
        var header: [UInt8] = Array(#"{"alg":"#.utf8)
        JSONText.appendString(algorithm.rawValue, to: &header)
        header.append(contentsOf: #","typ":"JWT","kid":"#.utf8)
        JSONText.appendString(kid, to: &header)
        header.append(UInt8(ascii: "}"))
        return header
    }

    static func payload(_ claims: Claims) -> [UInt8] {
        var payload: [UInt8] = Array(#"{"iss":"#.utf8)
        JSONText.appendString(claims.iss, to: &payload)
        payload.append(contentsOf: #","aud":"#.utf8)
        JSONText.appendString(claims.aud, to: &payload)
        payload.append(contentsOf: #","sub":"#.utf8)
        JSONText.appendString(claims.sub, to: &payload)
        payload.append(contentsOf: ",\"iat\":\(claims.iat),\"exp\":\(claims.exp),\"jti\":".utf8)
        JSONText.appendString(claims.jti, to: &payload)
        payload.append(contentsOf: #","amr":["#.utf8)
        for (i, method) in claims.amr.enumerated() {
            if i > 0 { payload.append(UInt8(ascii: ",")) }
            JSONText.appendString(method, to: &payload)
        }
        payload.append(contentsOf: "]}".utf8)
        return payload
    }

    /// Verifies the header's algorithm (exactly `keys.algorithm`: `none`, and a token of any
    /// other algorithm — HS256 keyed with a published public key — are refused before any
    /// key is used), key id, signature, time window, audience and issuer.
    public static func verify(
        _ token: String, keys: KeySet, audience: String, issuer: String, now: Int, leeway: Int = 30
    ) throws(VerificationError) -> Claims {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerBytes = Base64URL.decode(parts[0]), let payloadBytes = Base64URL.decode(parts[1]),
            let signature = Base64URL.decode(parts[2])
        else { throw .malformed }
        guard let header = try? JSONDecoder().decode(Header.self, from: Data(headerBytes)) else { throw .malformed }
        guard header.alg == keys.algorithm.rawValue else { throw .unsupportedAlgorithm }
        guard let kid = header.kid, let key = keys.verificationKeys[kid] else { throw .unknownKey }
        let signingInput = Array(token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
        switch key {
        case .secret(let secret):
            let expected = Digest.hmacSHA256(key: secret, message: signingInput)
            guard Digest.constantTimeEquals(expected, signature) else { throw .badSignature }
        case .privateKey(let privateKey):
            guard privateKey.verify(signature, of: signingInput) else { throw .badSignature }
        }
        guard let claims = try? JSONDecoder().decode(Claims.self, from: Data(payloadBytes)) else { throw .malformed }
        guard claims.exp > now - leeway else { throw .expired }
        guard claims.iat <= now + leeway else { throw .notYetValid }
        guard claims.aud == audience else { throw .wrongAudience }
        guard claims.iss == issuer else { throw .wrongIssuer }
        return claims
    }

    /// The same, for HS256 tokens under the secrets of `keys` (kid → secret).
    public static func verify(
        _ token: String, keys: [String: [UInt8]], audience: String, issuer: String, now: Int, leeway: Int = 30
    ) throws(VerificationError) -> Claims {
        let keySet = KeySet(algorithm: .hs256, keys: keys.map { ($0.key, .secret($0.value)) }, activeKid: keys.keys.first ?? "")
        return try verify(token, keys: keySet, audience: audience, issuer: issuer, now: now, leeway: leeway)
    }
}
