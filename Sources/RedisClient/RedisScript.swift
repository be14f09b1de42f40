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

/// One run of a script: the script, its keys (all in one cluster slot) and its arguments.
public struct RedisScriptCall: Sendable {
    public var script: RedisScript
    public var keys: [RedisArgument]
    public var arguments: [RedisArgument]

    public init(_ script: RedisScript, keys: [RedisArgument], arguments: [RedisArgument] = []) {
        self.script = script
        self.keys = keys
        self.arguments = arguments
    }
}
