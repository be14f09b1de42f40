import OTPCrypto

/// A Lua script run with EVALSHA. Its SHA-1 is computed once, here, the way Redis computes it.
public struct RedisScript: Sendable, Hashable {
    public let source: String
    public let sha1: String

    public init(_ source: String) {
        self.source = source
        self.sha1 = Digest.hex(Digest.sha1(Array(source.utf8)))
    }
}
