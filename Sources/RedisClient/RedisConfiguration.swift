/// Where and how to reach Redis: parsed from `redis://[user:password@]host[:port][/db]`.
public struct RedisConfiguration: Sendable, Hashable {
    public var host: String
    public var port: Int
    public var username: String?
    public var password: String?
    public var database: Int
    /// How long a command (or a connection attempt) may take before it fails with `.timeout`.
    public var timeoutMilliseconds: Int
    /// Connections in the pool; each pipelines any number of concurrent commands.
    public var poolSize: Int

    public init(
        host: String = "127.0.0.1", port: Int = 6379, username: String? = nil, password: String? = nil,
        database: Int = 0, timeoutMilliseconds: Int = 500, poolSize: Int = 2
    ) {
        (self.host, self.port, self.username, self.password, self.database, self.timeoutMilliseconds, self.poolSize)
            = (host, port, username, password, database, timeoutMilliseconds, poolSize)
    }

    /// Parses a `redis://` URL. Throws `RedisError(.invalidURL)` naming what is wrong.
    /// Messages name the URL without its password (`redis://user:***@host`).
    public init(url: String, timeoutMilliseconds: Int = 500, poolSize: Int = 2) throws(RedisError) {
        self.init(timeoutMilliseconds: timeoutMilliseconds, poolSize: poolSize)
        let scheme = "redis://"
        let shown = Self.redacted(url)
        guard url.hasPrefix(scheme) else {
            throw RedisError(.invalidURL, "must start with redis:// (redis://[user:password@]host[:port][/db])")
        }
        var rest = Substring(url.dropFirst(scheme.count))
        // Path: /db
        if let slash = rest.firstIndex(of: "/") {
            let db = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !db.isEmpty {
                guard let number = Int(db), number >= 0 else {
                    throw RedisError(.invalidURL, "database '\(db)' in '\(shown)' is not a number")
                }
                self.database = number
            }
        }
        // Userinfo: user:password@ (the last @, since a password may contain one percent-encoded or not)
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userinfo.firstIndex(of: ":") {
                let user = Self.percentDecoded(userinfo[..<colon])
                self.username = user.isEmpty ? nil : user
                self.password = Self.percentDecoded(userinfo[userinfo.index(after: colon)...])
            } else if !userinfo.isEmpty {
                // redis://password@host is the form older clients use for AUTH without a user.
                self.password = Self.percentDecoded(userinfo)
            }
        }
        // Host and port; [::1]:6379 for IPv6.
        var hostPart = rest
        var portPart: Substring?
        if hostPart.hasPrefix("[") {
            guard let close = hostPart.firstIndex(of: "]") else {
                throw RedisError(.invalidURL, "unclosed '[' in host of '\(shown)'")
            }
            let after = hostPart[hostPart.index(after: close)...]
            hostPart = hostPart[hostPart.index(after: hostPart.startIndex)..<close]
            if after.hasPrefix(":") { portPart = after.dropFirst() } else if !after.isEmpty {
                throw RedisError(.invalidURL, "unexpected '\(after)' after host in '\(shown)'")
            }
        } else if let colon = hostPart.lastIndex(of: ":") {
            portPart = hostPart[hostPart.index(after: colon)...]
            hostPart = hostPart[..<colon]
        }
        guard !hostPart.isEmpty else { throw RedisError(.invalidURL, "no host in '\(shown)'") }
        self.host = String(hostPart)
        if let portPart {
            guard let port = Int(portPart), (1...65535).contains(port) else {
                throw RedisError(.invalidURL, "port '\(portPart)' in '\(shown)' is not 1-65535")
            }
            self.port = port
        }
    }

    private static func percentDecoded(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var utf8 = Array(text.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "%"), utf8.count >= 2,
                let value = UInt8(String(decoding: utf8.prefix(2), as: UTF8.self), radix: 16)
            {
                bytes.append(value)
                utf8 = utf8.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `url` with the password of its userinfo (everything between `:` and the last `@` before
    /// the host) replaced by `***`, so that no message or log line carries it.
    public static func redacted(_ url: String) -> String {
        let start = url.hasPrefix("redis://") ? url.index(url.startIndex, offsetBy: 8) : url.startIndex
        let authority = url[start...].prefix { $0 != "/" }
        guard let at = authority.lastIndex(of: "@") else { return url }
        let userinfo = authority[..<at]
        let masked = userinfo.firstIndex(of: ":").map { "\(userinfo[..<$0]):***" } ?? "***"
        return String(url[..<start]) + masked + String(url[at...])
    }
}
