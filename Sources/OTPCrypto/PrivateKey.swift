internal import COpenSSL

/// An RSA, EC or Ed25519 private key, parsed once from PEM by OpenSSL: it signs JWTs (RS256,
/// ES256, EdDSA), verifies them with its public half, and publishes that half as a JWK.
///
/// The `EVP_PKEY` is never modified after loading; OpenSSL lets threads share such a key, each
/// signing or verifying through a context of its own.
public final class PrivateKey: @unchecked Sendable {
    /// What a key is, as far as choosing its JWT algorithm goes.
    public enum Kind: Sendable, Hashable, CustomStringConvertible {
        case rsa(bits: Int)
        /// An EC key on the named curve (`prime256v1` is P-256).
        case ec(curve: String)
        case ed25519
        /// Any other type OpenSSL reads (DSA, Ed448, X25519, …): no JWT algorithm of otpd's.
        case other(String)

        public var description: String {
            switch self {
            case .rsa(let bits): "a \(bits)-bit RSA key"
            case .ec(let curve): curve == "prime256v1" ? "an EC P-256 key" : "an EC key on curve \(curve)"
            case .ed25519: "an Ed25519 key"
            case .other(let name): "a key of type \(name)"
            }
        }
    }

    public enum LoadError: Error, Sendable, Hashable, CustomStringConvertible {
        /// The file cannot be opened.
        case unreadable
        /// No PEM private key (or one OpenSSL cannot parse).
        case notAPrivateKey
        /// An encrypted PEM: otpd reads unencrypted keys only.
        case encrypted

        public var description: String {
            switch self {
            case .unreadable: "cannot be read"
            case .notAPrivateKey: "is not a PEM private key (PKCS#8, '-----BEGIN PRIVATE KEY-----')"
            case .encrypted: "is an encrypted private key; otpd reads unencrypted PKCS#8 keys only"
            }
        }
    }

    let key: OpaquePointer
    public let kind: Kind

    private init(key: OpaquePointer) {
        self.key = key
        self.kind = Self.kind(of: key)
    }

    deinit { EVP_PKEY_free(key) }

    /// Parses a PEM private key (PKCS#8 `BEGIN PRIVATE KEY`, or OpenSSL's traditional RSA and
    /// EC forms). The message of a failure never quotes the key.
    public convenience init(pem: String) throws(LoadError) {
        let bytes = Array(pem.utf8)
        guard bytes.contains(where: { !$0.isASCIIWhitespace }), bytes.count < Int(Int32.max) else { throw .notAPrivateKey }
        let encrypted = pem.contains("ENCRYPTED")
        // The BIO reads `bytes` in place: it lives only inside the closure.
        let key = bytes.withUnsafeBytes { buffer -> Result<OpaquePointer, LoadError> in
            guard let bio = BIO_new_mem_buf(buffer.baseAddress, Int32(buffer.count)) else { return .failure(.notAPrivateKey) }
            defer { BIO_free(bio) }
            return Self.read(bio, encrypted: encrypted)
        }
        self.init(key: try key.get())
    }

    /// Reads the PEM private key in the file at `path` (at most 1 MiB is read).
    public convenience init(pemFile path: String) throws(LoadError) {
        guard let bio = BIO_new_file(path, "rb") else {
            ERR_clear_error()
            throw .unreadable
        }
        defer { BIO_free(bio) }
        let text = Self.text(of: bio, limit: 1 << 20)
        ERR_clear_error()
        try self.init(pem: text)
    }

    private static func read(_ bio: OpaquePointer, encrypted: Bool) -> Result<OpaquePointer, LoadError> {
        // A password callback that gives none: an encrypted key fails instead of prompting on a terminal.
        let noPassword: @convention(c) (UnsafeMutablePointer<CChar>?, Int32, Int32, UnsafeMutableRawPointer?) -> Int32 = { _, _, _, _ in 0 }
        guard let key = PEM_read_bio_PrivateKey(bio, nil, noPassword, nil) else {
            ERR_clear_error()
            // `BEGIN ENCRYPTED PRIVATE KEY` (PKCS#8) or `Proc-Type: 4,ENCRYPTED` (traditional).
            return .failure(encrypted ? .encrypted : .notAPrivateKey)
        }
        return .success(key)
    }

    /// A new key for `algorithm` (RSA 2048 bits, P-256 or Ed25519); nil for HS256.
    public static func generate(for algorithm: JWT.Algorithm) -> PrivateKey? {
        let name: String
        switch algorithm {
        case .hs256: return nil
        case .rs256: name = "RSA"
        case .es256: name = "EC"
        case .edDSA: name = "ED25519"
        }
        guard let context = EVP_PKEY_CTX_new_from_name(nil, name, nil) else { return nil }
        defer { EVP_PKEY_CTX_free(context) }
        guard EVP_PKEY_keygen_init(context) == 1 else { return nil }
        switch algorithm {
        case .rs256: guard EVP_PKEY_CTX_set_rsa_keygen_bits(context, 2048) == 1 else { return nil }
        case .es256: guard EVP_PKEY_CTX_set_group_name(context, "P-256") == 1 else { return nil }
        case .hs256, .edDSA: break
        }
        var key: OpaquePointer?
        guard EVP_PKEY_generate(context, &key) == 1, let key else { return nil }
        return PrivateKey(key: key)
    }

    /// The key as unencrypted PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    public var pkcs8PEM: String {
        guard let bio = BIO_new(BIO_s_mem()) else { fatalError("BIO_new failed") }
        defer { BIO_free(bio) }
        precondition(PEM_write_bio_PKCS8PrivateKey(bio, key, nil, nil, 0, nil, nil) == 1, "PEM_write_bio_PKCS8PrivateKey failed")
        return Self.text(of: bio)
    }

    /// The public half as PEM (`-----BEGIN PUBLIC KEY-----`, SubjectPublicKeyInfo).
    public var publicKeyPEM: String {
        guard let bio = BIO_new(BIO_s_mem()) else { fatalError("BIO_new failed") }
        defer { BIO_free(bio) }
        precondition(PEM_write_bio_PUBKEY(bio, key) == 1, "PEM_write_bio_PUBKEY failed")
        return Self.text(of: bio)
    }

    /// What is left to read in `bio`, up to about `limit` bytes.
    private static func text(of bio: OpaquePointer, limit: Int = 1 << 20) -> String {
        var pem: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while pem.count < limit {
            let n = BIO_read(bio, &chunk, Int32(chunk.count))
            if n <= 0 { break }
            pem.append(contentsOf: chunk[0..<Int(n)])
        }
        return String(decoding: pem, as: UTF8.self)
    }

    /// Whether this key signs `algorithm`'s tokens: RS256 an RSA key of at least 2048 bits,
    /// ES256 a P-256 key, EdDSA an Ed25519 key.
    public func fits(_ algorithm: JWT.Algorithm) -> Bool {
        switch (algorithm, kind) {
        case (.rs256, .rsa(let bits)): bits >= 2048
        case (.es256, .ec(let curve)): curve == "prime256v1"
        case (.edDSA, .ed25519): true
        default: false
        }
    }

    // MARK: signing

    /// The JOSE signature of `message`: RSASSA-PKCS1-v1_5 or ECDSA over SHA-256 (the latter as
    /// the 64 bytes of r ‖ s, not OpenSSL's DER), or Ed25519 over the message itself.
    func sign(_ message: [UInt8]) -> [UInt8] {
        guard let context = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new failed") }
        defer { EVP_MD_CTX_free(context) }
        precondition(EVP_DigestSignInit(context, nil, digest, nil, key) == 1, "EVP_DigestSignInit failed")
        var length = 0
        precondition(EVP_DigestSign(context, nil, &length, message, message.count) == 1, "EVP_DigestSign failed")
        var signature = [UInt8](repeating: 0, count: length)
        precondition(EVP_DigestSign(context, &signature, &length, message, message.count) == 1, "EVP_DigestSign failed")
        signature.removeSubrange(length...)
        guard case .ec = kind else { return signature }
        guard let raw = Self.rawECDSA(der: signature) else { fatalError("OpenSSL returned an unreadable ECDSA signature") }
        return raw
    }

    /// Whether `signature` (in its JOSE form) signs `message` under this key's public half.
    func verify(_ signature: [UInt8], of message: [UInt8]) -> Bool {
        var signature = signature
        if case .ec = kind {
            guard signature.count == 64, let der = Self.derECDSA(raw: signature) else { return false }
            signature = der
        }
        guard let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestVerifyInit(context, nil, digest, nil, key) == 1 else {
            ERR_clear_error()
            return false
        }
        let verified = EVP_DigestVerify(context, signature, signature.count, message, message.count) == 1
        ERR_clear_error()
        return verified
    }

    /// SHA-256 for RSA and EC; none for Ed25519, which hashes the message itself.
    private var digest: OpaquePointer? {
        if case .ed25519 = kind { return nil }
        return Digest.sha256Algorithm
    }

    /// DER `SEQUENCE { r INTEGER, s INTEGER }` → r ‖ s, each left-padded to 32 bytes.
    static func rawECDSA(der: [UInt8]) -> [UInt8]? {
        let parsed: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            var pointer: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_ECDSA_SIG(nil, &pointer, buffer.count)
        }
        guard let parsed else {
            ERR_clear_error()
            return nil
        }
        defer { ECDSA_SIG_free(parsed) }
        var raw = [UInt8](repeating: 0, count: 64)
        let ok = raw.withUnsafeMutableBufferPointer { buffer in
            BN_bn2binpad(ECDSA_SIG_get0_r(parsed), buffer.baseAddress, 32) == 32
                && BN_bn2binpad(ECDSA_SIG_get0_s(parsed), buffer.baseAddress! + 32, 32) == 32
        }
        return ok ? raw : nil
    }

    /// r ‖ s (32 bytes each) → DER, as OpenSSL verifies it.
    static func derECDSA(raw: [UInt8]) -> [UInt8]? {
        guard raw.count == 64, let signature = ECDSA_SIG_new() else { return nil }
        defer { ECDSA_SIG_free(signature) }
        let r = raw.withUnsafeBufferPointer { BN_bin2bn($0.baseAddress, 32, nil) }
        let s = raw.withUnsafeBufferPointer { BN_bin2bn($0.baseAddress! + 32, 32, nil) }
        guard let r, let s, ECDSA_SIG_set0(signature, r, s) == 1 else {
            BN_free(r)
            BN_free(s)
            return nil
        }
        let length = i2d_ECDSA_SIG(signature, nil)
        guard length > 0 else { return nil }
        var der = [UInt8](repeating: 0, count: Int(length))
        let written = der.withUnsafeMutableBufferPointer { buffer in
            var pointer: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
            return i2d_ECDSA_SIG(signature, &pointer)
        }
        return written == length ? der : nil
    }

    // MARK: the public JWK

    /// The public half as JWK members (RFC 7517/7518/8037), in the order they are written:
    /// `kty` and `n`/`e`, `crv`/`x`/`y` or `crv`/`x`. Never a private member.
    public var publicJWKMembers: [(name: String, value: String)] {
        switch kind {
        case .rsa:
            return [("kty", "RSA"), ("n", Base64URL.encode(bigNumber("n", width: nil))), ("e", Base64URL.encode(bigNumber("e", width: nil)))]
        case .ec:
            return [
                ("kty", "EC"), ("crv", "P-256"), ("x", Base64URL.encode(bigNumber("qx", width: 32))),
                ("y", Base64URL.encode(bigNumber("qy", width: 32))),
            ]
        case .ed25519:
            var raw = [UInt8](repeating: 0, count: 32)
            var length = raw.count
            precondition(EVP_PKEY_get_raw_public_key(key, &raw, &length) == 1 && length == 32, "no Ed25519 public key")
            return [("kty", "OKP"), ("crv", "Ed25519"), ("x", Base64URL.encode(raw))]
        case .other:
            return []
        }
    }

    /// A public big-number parameter (`n`, `e`, `qx`, `qy`), big-endian, unpadded or padded to `width`.
    private func bigNumber(_ name: String, width: Int?) -> [UInt8] {
        var number: OpaquePointer?
        guard EVP_PKEY_get_bn_param(key, name, &number) == 1, let number else {
            fatalError("the key has no parameter \(name)")
        }
        defer { BN_free(number) }
        let size = width ?? Int((BN_num_bits(number) + 7) / 8)
        var bytes = [UInt8](repeating: 0, count: size)
        precondition(BN_bn2binpad(number, &bytes, Int32(size)) == Int32(size), "BN_bn2binpad failed")
        return bytes
    }

    private static func kind(of key: OpaquePointer) -> Kind {
        switch EVP_PKEY_get_base_id(key) {
        case EVP_PKEY_RSA: return .rsa(bits: Int(EVP_PKEY_get_bits(key)))
        case EVP_PKEY_ED25519: return .ed25519
        case EVP_PKEY_EC:
            var name = [CChar](repeating: 0, count: 64)
            var length = 0
            guard EVP_PKEY_get_utf8_string_param(key, "group", &name, name.count, &length) == 1 else { return .ec(curve: "unknown") }
            return .ec(curve: String(decoding: name.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        default:
            guard let type = EVP_PKEY_get0_type_name(key) else { return .other("unknown") }
            return .other(String(cString: type))
        }
    }
}

extension UInt8 {
    fileprivate var isASCIIWhitespace: Bool { self == 0x20 || self == 0x0a || self == 0x0d || self == 0x09 }
}
