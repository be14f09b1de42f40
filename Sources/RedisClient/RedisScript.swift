internal import COpenSSL

/// A Lua script run with EVALSHA. Its SHA-1 is computed once, here, the way Redis computes it.
public struct RedisScript: Sendable, Hashable {
    public let source: String
    public let sha1: String

    public init(_ source: String) {
        self.source = source
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let bytes = Array(source.utf8)
        let ok = EVP_Digest(bytes, bytes.count, &digest, &length, EVP_sha1(), nil)
        precondition(ok == 1, "EVP_Digest(SHA-1) failed")
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(Int(length) * 2)
        for byte in digest.prefix(Int(length)) {
            text.append(hex[Int(byte >> 4)])
            text.append(hex[Int(byte & 0x0f)])
        }
        self.sha1 = String(decoding: text, as: UTF8.self)
    }
}
