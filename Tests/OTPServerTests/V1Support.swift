import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOHTTP1
import OTPCore
import OTPTestSupport
import RedisClient
import Testing

@testable import OTPServer

/// The app key every test configuration signs with.
let testJWTKey = #"{kid: k1, secret: "test-secret-0123456789abcdef0123456789abcdef"}"#

/// Everything but `apps` of a development test configuration: the shared test Redis (standalone
/// or cluster as this run says, when `redisURL` is nil), the log gateway on every channel.
func testYAMLHeader(redisURL: String?, prefix: String, trustedProxies: String) -> String {
    """
    mode: development
    server: {trusted_proxies: ["\(trustedProxies)"]}
    redis: \(TestRedis.configurationYAML(url: redisURL, keyPrefix: prefix, timeoutMilliseconds: 5000))
    security: {pepper: "test-pepper-0123456789abcdef"}
    delivery:
      sms: {provider: log}
      call: {provider: log}
      email: {provider: log}
      telegram: {provider: log}

    """
}

/// A development configuration with apps shaped for the tests. `t` is roomy (no cooldown,
/// high limits); the others each exercise one policy. `redisURL` nil: the shared test Redis,
/// standalone or cluster as this run says (`TestRedis.isCluster`).
func v1YAML(redisURL: String?, prefix: String) -> String {
    let key = testJWTKey
    let key2 = #"{kid: k2, secret: "test-secret-second-0123456789abcdef01234567"}"#
    return testYAMLHeader(redisURL: redisURL, prefix: prefix, trustedProxies: "10.9.0.0/16") + """
        apps:
          - id: t
            name: Test App
            channels: [email, sms, call, telegram]
            otp: {length: 6, ttl_seconds: 600, max_attempts: 5, resend_cooldown_seconds: 0}
            limits: {sends_per_identifier_per_hour: 1000, sends_per_ip_per_hour: 100000, failed_attempts_per_identifier_per_hour: 1000,
                     failed_attempts_per_ip_per_hour: 100000}
            tokens: {issuer: otpd-test, active_kid: k1, reuse_interval_seconds: 0, keys: [\(key), \(key2)]}
            templates:
              en: {sms: "{code} is your {app_name} code", email_subject: "Your {app_name} code", email_text: "Code {code}, valid {ttl_minutes} min", call: "Your code is {code}", telegram: "{code}"}
              fr: {sms: "{code} est votre code {app_name}", email_subject: "Votre code", email_text: "Code {code}", call: "Code {code}", telegram: "{code}"}
          - id: other
            channels: [email]
            tokens: {keys: [{kid: k1, secret: "test-secret-other-0123456789abcdef0123456789"}]}
          - id: closed
            channels: [email]
            registration: closed
            tokens: {keys: [\(key)]}
          - id: conceal
            channels: [email]
            conceal_unknown_users: true
            otp: {resend_cooldown_seconds: 0}
            tokens: {keys: [\(key)]}
          - id: quota
            channels: [email, sms]
            otp: {resend_cooldown_seconds: 60}
            limits: {sends_per_identifier_per_hour: 3, sends_per_ip_per_hour: 4, failed_attempts_per_identifier_per_hour: 3}
            tokens: {keys: [\(key)]}
          - id: hourly
            channels: [email]
            otp: {resend_cooldown_seconds: 0, max_attempts: 10}
            limits: {sends_per_identifier_per_hour: 5, sends_per_ip_per_hour: 100000, failed_attempts_per_identifier_per_hour: 4}
            tokens: {keys: [\(key)]}
          - id: short
            channels: [email]
            otp: {ttl_seconds: 1, resend_cooldown_seconds: 0}
            tokens: {keys: [\(key)]}
          - id: tokenttl
            channels: [email]
            tokens: {access_ttl_seconds: 1, keys: [\(key)]}
        """
}

/// An otpd app on a real Redis with its log gateway captured, and a real HTTP client.
struct V1Harness {
    let configuration: Configuration
    let capture = LogCapture()
    let prefix: String
    let redisURL: String

    /// `redisURL` nil: the shared test Redis, in the mode of this run (standalone or cluster).
    init(redisURL: String? = nil) throws {
        try self.init(redisURL: redisURL ?? TestRedis.url) { _, prefix in v1YAML(redisURL: redisURL, prefix: prefix) }
    }

    /// A harness on a configuration of the test's own: `yaml(redisURL, keyPrefix)`.
    init(redisURL: String = TestRedis.url, yaml: (String, String) -> String) throws {
        self.redisURL = redisURL
        prefix = TestRedis.uniquePrefix("v1")
        configuration = try ConfigLoader.parse(yaml(redisURL, prefix), environment: [:]).0
    }

    /// Runs `body` against the live server; `port` is where it listens.
    @discardableResult
    func run<T: Sendable>(_ body: @escaping @Sendable (HTTP) async throws -> T) async throws -> T {
        let app = try buildApplication(configuration: configuration, logger: capture.logger)
        return try await app.test(.live) { client in
            try await body(HTTP(port: client.port!))
        }
    }
}

/// A JSON HTTP client over AsyncHTTPClient: each concurrent request may use its own connection.
struct HTTP: Sendable {
    let port: Int
    static let client = HTTPClient(
        eventLoopGroupProvider: .singleton,
        configuration: .init(connectionPool: .init(idleTimeout: .seconds(5), concurrentHTTP1ConnectionsPerHostSoftLimit: 256)))

    struct Reply: Sendable {
        var status: Int
        var headers: [(String, String)]
        var body: String
        var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
        }
        var code: String? { json["code"] as? String }
        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    }

    func request(_ method: HTTPMethod, _ path: String, json: [String: Any]? = nil, raw: String? = nil, headers: [String: String] = [:]) async throws -> Reply {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json)))
        } else if let raw {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: raw))
        }
        let response = try await Self.client.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        return Reply(status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) }, body: String(buffer: body))
    }

    func post(_ path: String, _ json: [String: Any], headers: [String: String] = [:]) async throws -> Reply {
        try await request(.POST, path, json: json, headers: headers)
    }

    func get(_ path: String, headers: [String: String] = [:]) async throws -> Reply {
        try await request(.GET, path, headers: headers)
    }
}

extension V1Harness {
    /// Register (or log in) and activate with the delivered code: a signed-in user.
    func signIn(_ http: HTTP, app: String = "t", identifier: String) async throws -> [String: Any] {
        let send = try await http.post("/v1/apps/\(app)/register/otp", ["identifier": identifier])
        #expect(send.status == 201, "\(send.body)")
        let otpID = try #require(send.json["otp_id"] as? String)
        let code = try #require(capture.lastCode(to: identifier))
        let activate = try await http.post("/v1/apps/\(app)/otp/activate", ["otp_id": otpID, "otp": code])
        #expect(activate.status == 200, "\(activate.body)")
        return try #require(activate.json["auth_result"] as? [String: Any])
    }
}

/// Runs `request` `count` times at once and collects the statuses.
func concurrently(_ count: Int, _ request: @escaping @Sendable (Int) async throws -> Int) async throws -> [Int] {
    try await withThrowingTaskGroup(of: Int.self) { group in
        for i in 0..<count { group.addTask { try await request(i) } }
        return try await group.reduce(into: [Int]()) { $0.append($1) }
    }
}
