public import OTPCrypto

extension Configuration.Tokens {
    /// One key of `apps[].tokens.keys`: `{kid, secret}` for HS256; `{kid, private_key}` (PEM
    /// text) or `{kid, private_key_file}` (a PEM file's path) for RS256, ES256 and EdDSA. A
    /// private key is parsed here, once, while the configuration loads: a bad one stops startup
    /// (and `otpd check-config`) with an error naming its key.
    public struct Key: Sendable, Decodable {
        public var kid: String
        public var secret: String?
        public var privateKey: PrivateKey?
        /// `private_key` or `private_key_file`: the key that held `privateKey`, for messages.
        public var privateKeyField: String?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case kid, secret
            case privateKey = "private_key"
            case privateKeyFile = "private_key_file"
        }

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            kid = try c.decode(String.self, forKey: .kid)
            secret = try c.decodeIfPresent(String.self, forKey: .secret)
            let pem = try c.decodeIfPresent(String.self, forKey: .privateKey)
            let file = try c.decodeIfPresent(String.self, forKey: .privateKeyFile)
            if pem != nil, file != nil {
                throw DecodingError.dataCorruptedError(
                    forKey: .privateKeyFile, in: c, debugDescription: "give private_key or private_key_file, not both")
            }
            do {
                if let pem {
                    privateKeyField = CodingKeys.privateKey.stringValue
                    privateKey = try PrivateKey(pem: pem)
                } else if let file {
                    privateKeyField = CodingKeys.privateKeyFile.stringValue
                    privateKey = try PrivateKey(pemFile: file)
                }
            } catch {
                // Never the key itself in the message: only what is wrong with it (and a file's path).
                let key = pem != nil ? CodingKeys.privateKey : .privateKeyFile
                let subject = file.map { "'\($0)' " } ?? ""
                throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "\(subject)\(error)")
            }
        }
    }
}

extension KeyedDecodingContainer {
    /// `tokens.algorithm`: HS256 when absent.
    func algorithm(_ key: Key) throws -> JWT.Algorithm {
        guard let name = try decodeIfPresent(String.self, forKey: key) else { return .hs256 }
        guard let algorithm = JWT.Algorithm(rawValue: name) else {
            let names = JWT.Algorithm.allCases.map(\.rawValue).joined(separator: ", ")
            throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: "'\(name)' is not one of \(names)")
        }
        return algorithm
    }
}

extension ConfigurationCheck {
    /// `apps[i].tokens.keys` and `active_kid`: kids unique; HS256 keys are secrets of 32 bytes or
    /// more; the other algorithms' are private keys of their type (RSA of 2048 bits or more,
    /// P-256, Ed25519); the active kid is listed.
    mutating func tokenKeys(_ tokens: Configuration.Tokens, key: String) throws(ConfigurationError) {
        let algorithm = tokens.algorithm
        try require(!tokens.keys.isEmpty, "\(key).keys", "must list at least one key")
        var kids = Set<String>()
        for (k, tokenKey) in tokens.keys.enumerated() {
            let path = "\(key).keys[\(k)]"
            try require(!tokenKey.kid.isEmpty, "\(path).kid", "is empty")
            try require(kids.insert(tokenKey.kid).inserted, "\(path).kid", "'\(tokenKey.kid)' is listed twice")
            if algorithm == .hs256 {
                try require(
                    tokenKey.privateKey == nil, "\(path).\(tokenKey.privateKeyField ?? "private_key")",
                    "an HS256 key is a secret; private keys are for algorithm RS256, ES256 or EdDSA (set \(key).algorithm)")
                guard let value = tokenKey.secret else { throw ConfigurationError(key: "\(path).secret", "is required (algorithm HS256)") }
                try secret(value, "\(path).secret", minBytes: 32)
                continue
            }
            try require(
                tokenKey.secret == nil, "\(path).secret",
                "an \(algorithm.rawValue) key is a private key: give private_key or private_key_file, not a secret")
            guard let privateKey = tokenKey.privateKey, let field = tokenKey.privateKeyField else {
                throw ConfigurationError(
                    key: "\(path).private_key", "is required (or private_key_file): a PKCS#8 PEM key for \(algorithm.rawValue)")
            }
            try require(
                privateKey.fits(algorithm), "\(path).\(field)",
                "is \(privateKey.kind); \(algorithm.rawValue) needs \(Self.keyNeeded[algorithm] ?? "another key")")
        }
        try require(
            kids.contains(tokens.activeKid), "\(key).active_kid", "'\(tokens.activeKid)' is not one of the listed keys")
    }

    static let keyNeeded: [JWT.Algorithm: String] = [
        .rs256: "an RSA key of at least 2048 bits", .es256: "an EC P-256 key", .edDSA: "an Ed25519 key",
    ]

    /// `server.public_url`: an http(s) URL (https in production) of a host and at most a path
    /// prefix, no query or fragment, no space or control character.
    func publicURL(_ url: String) throws(ConfigurationError) {
        let key = "server.public_url"
        try webURL(url, key)
        try require(url.utf8.count <= 2048, key, "must be at most 2048 characters")
        try require(
            url.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) && !url.contains("?") && !url.contains("#"), key,
            "'\(url)' must be a URL of a host and an optional path, without spaces, a query or a fragment")
        let host = url.split(separator: "/", omittingEmptySubsequences: false).dropFirst(2).first ?? ""
        try require(!host.isEmpty && !host.contains("@"), key, "'\(url)' must name a host (and no user)")
    }
}
