internal import COpenSSL

/// Hashing and message authentication over OpenSSL's EVP interface.
public enum Digest {
    /// SHA-256, fetched from the provider once: OpenSSL 3 otherwise looks the algorithm up by
    /// name on every call, which showed in the profile.
    nonisolated(unsafe) static let sha256Algorithm: OpaquePointer = {
        guard let md = EVP_MD_fetch(nil, "SHA256", nil) else { fatalError("OpenSSL has no SHA256") }
        return md
    }()

    /// SHA-256 of `data`.
    public static func sha256(_ data: some Collection<UInt8>) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        let bytes = Array(data)
        let ok = EVP_Digest(bytes, bytes.count, &out, &length, sha256Algorithm, nil)
        precondition(ok == 1 && length == 32, "EVP_Digest(SHA-256) failed")
        return out
    }

    /// SHA-1 of `data`: only to name a Lua script the way Redis does (EVALSHA), never for security.
    public static func sha1(_ data: some Collection<UInt8>) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 20)
        var length: UInt32 = 0
        let bytes = Array(data)
        let ok = EVP_Digest(bytes, bytes.count, &out, &length, EVP_sha1(), nil)
        precondition(ok == 1 && length == 20, "EVP_Digest(SHA-1) failed")
        return out
    }

    /// HMAC-SHA256 of `message` under `key` (RFC 2104): SHA-256 of the outer padded key and
    /// the SHA-256 of the inner padded key and the message.
    public static func hmacSHA256(key: some Collection<UInt8>, message: some Collection<UInt8>) -> [UInt8] {
        var block = key.count > 64 ? sha256(key) : Array(key)
        block.append(contentsOf: repeatElement(0, count: 64 - block.count))
        var inner = block.map { $0 ^ 0x36 }
        inner.append(contentsOf: message)
        var outer = block.map { $0 ^ 0x5c }
        outer.append(contentsOf: sha256(inner))
        return sha256(outer)
    }

    /// Compares two byte strings in time that depends only on their lengths (`CRYPTO_memcmp`).
    public static func constantTimeEquals(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
        let x = Array(a)
        let y = Array(b)
        guard x.count == y.count else { return false }
        guard !x.isEmpty else { return true }
        return x.withUnsafeBytes { p in y.withUnsafeBytes { q in CRYPTO_memcmp(p.baseAddress, q.baseAddress, x.count) == 0 } }
    }

    /// Lower-case hexadecimal.
    public static func hex(_ bytes: some Collection<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
