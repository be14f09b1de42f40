extension JWT {
    /// The algorithms otpd signs with (RFC 7518, RFC 8037): one per app.
    public enum Algorithm: String, Sendable, Hashable, CaseIterable {
        /// HMAC-SHA256 under a shared secret: whoever verifies can also sign.
        case hs256 = "HS256"
        /// RSASSA-PKCS1-v1_5 with SHA-256, RSA keys of at least 2048 bits.
        case rs256 = "RS256"
        /// ECDSA on P-256 with SHA-256.
        case es256 = "ES256"
        /// Ed25519.
        case edDSA = "EdDSA"

        /// Whether resource servers verify it with a public key (published as a JWK).
        public var isAsymmetric: Bool { self != .hs256 }
    }

    /// One key of an app: an HS256 secret, or the private key of an asymmetric algorithm.
    public enum Key: Sendable {
        case secret([UInt8])
        case privateKey(PrivateKey)
    }

    /// One issuer's keys: its algorithm, the key that signs (`activeKid`), every key that
    /// verifies, and what is derived from them once (the encoded header, the JWKS).
    public struct KeySet: Sendable {
        public let algorithm: Algorithm
        public let activeKid: String
        let activeKey: Key
        /// kid → key: every listed key verifies, so rotating `activeKid` signs nobody out.
        let verificationKeys: [String: Key]
        /// base64url of the active key's header: the same for every token, so encoded once.
        let encodedHeader: String
        /// `{"keys":[…]}`: the public JWK of every asymmetric key, in the order listed.
        public let jwks: [UInt8]

        /// `keys` in the order of the configuration. An `activeKid` that names none of them
        /// signs with an empty HS256 secret (the configuration's validation refuses it first).
        public init(algorithm: Algorithm, keys: [(kid: String, key: Key)], activeKid: String) {
            self.algorithm = algorithm
            self.activeKid = activeKid
            self.verificationKeys = Dictionary(keys.map { ($0.kid, $0.key) }, uniquingKeysWith: { a, _ in a })
            self.activeKey = verificationKeys[activeKid] ?? .secret([])
            self.encodedHeader = Base64URL.encode(JWT.header(algorithm: algorithm, kid: activeKid))
            var jwks: [UInt8] = Array(#"{"keys":["#.utf8)
            var first = true
            for (kid, key) in keys {
                guard case .privateKey(let privateKey) = key else { continue }
                if !first { jwks.append(UInt8(ascii: ",")) }
                first = false
                var members = privateKey.publicJWKMembers
                members.insert(("kid", kid), at: 1)
                members.insert(contentsOf: [("use", "sig"), ("alg", algorithm.rawValue)], at: 2)
                jwks.append(UInt8(ascii: "{"))
                for (i, member) in members.enumerated() {
                    if i > 0 { jwks.append(UInt8(ascii: ",")) }
                    JSONText.appendString(member.name, to: &jwks)
                    jwks.append(UInt8(ascii: ":"))
                    JSONText.appendString(member.value, to: &jwks)
                }
                jwks.append(UInt8(ascii: "}"))
            }
            jwks.append(contentsOf: "]}".utf8)
            self.jwks = jwks
        }
    }
}
