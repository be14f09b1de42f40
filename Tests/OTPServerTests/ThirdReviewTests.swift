import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import OTPCore
import OTPCrypto
import OTPTestSupport
import RedisClient
import Testing

@testable import OTPServer

extension String {
    /// This string with its first occurrence of `target` replaced (a test's twist on a shared config).
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = range(of: target) else { return self }
        return replacingCharacters(in: range, with: replacement)
    }
}

/// The attacker's tests of the third security review's engine findings: each was written
/// first, seen failing against the code before its fix, and names the rule it holds.
@Suite("Third review: spent codes, password budgets, refused deliveries, cross-site posts")
struct ThirdReviewTests {
    static func email() -> String { "r3-\(UUID().uuidString.prefix(8).lowercased())@example.com" }

    // MARK: 1. a spent code is dead, and no hashing runs for a check Redis refuses

    /// The review's attack: once a reset code's attempts are spent, every further validate ran
    /// scrypt and gave the client's failure unit back (12 validates with 6 failures allowed per
    /// client: twelve 400s, no 429, twelve hashes). Now a spent code is a refused attempt that
    /// counts for the client, and no validate hashes unless Redis accepted its code.
    @Test func aSpentResetCodeIsDeadCountsForTheClientAndHashesNothing() async throws {
        let harness = try V1Harness {
            passwordYAML(redisURL: nil, prefix: $1).replacingFirst(
                "failed_attempts_per_ip_per_hour: 100000}", with: "failed_attempts_per_ip_per_hour: 6}")
        }
        let email = Self.email()
        try await harness.importUsers([email])
        try await harness.withEngine { engine in
            _ = try await Passwords(engine: engine).sendReset(appID: "reset", email: email, clientIP: "10.9.1.1")
            let code = try #require(harness.capture.lastCode(to: email, length: 5))
            let wrong = PasswordTests.otherCode(than: code)
            var answers: [String] = []
            for _ in 0..<12 {
                do {
                    try await Passwords(engine: engine).reset(
                        appID: "reset", email: email, code: wrong, newPassword: "a-new-password", clientIP: "10.9.1.1")
                    answers.append("reset")
                } catch let error as OTPError {
                    switch error {
                    case .invalidOTP: answers.append("wrong")
                    case .otpExhausted: answers.append("dead")
                    case .tooManyFailuresFromIP: answers.append("429")
                    default: answers.append("\(error)")
                    }
                } catch {
                    answers.append("\(error)")
                }
            }
            // 3 attempts, then 3 checks of the dead code: 6 failures for the client, then 429.
            #expect(answers == ["wrong", "wrong", "wrong", "dead", "dead", "dead"] + Array(repeating: "429", count: 6), "\(answers)")
            // The right code is dead too (from another client), and nothing was ever hashed.
            do {
                try await Passwords(engine: engine).reset(appID: "reset", email: email, code: code, newPassword: "a-new-password", clientIP: "10.9.2.2")
                Issue.record("the right code reset the password after its attempts were spent")
            } catch let error as OTPError {
                guard case .otpExhausted = error else { Issue.record("\(error)"); return }
            }
            #expect(engine.passwordHasher.computations == 0, "scrypt ran \(engine.passwordHasher.computations) times for refused checks")
        }
    }

    /// A wrong reset code runs no scrypt either; a right one hashes once and resets.
    @Test func onlyARightResetCodeIsWorthAHash() async throws {
        let harness = try V1Harness { passwordYAML(redisURL: nil, prefix: $1) }
        let email = Self.email()
        try await harness.importUsers([email])
        try await harness.withEngine { engine in
            _ = try await Passwords(engine: engine).sendReset(appID: "reset", email: email, clientIP: nil)
            let code = try #require(harness.capture.lastCode(to: email, length: 5))
            do {
                try await Passwords(engine: engine).reset(appID: "reset", email: email, code: PasswordTests.otherCode(than: code), newPassword: "a-new-password")
                Issue.record("a wrong code reset the password")
            } catch {}
            #expect(engine.passwordHasher.computations == 0)
            try await Passwords(engine: engine).reset(appID: "reset", email: email, code: code, newPassword: "a-new-password")
            #expect(engine.passwordHasher.computations == 1)
        }
    }

    // MARK: 3. password guesses have a budget of their own

    /// The review's attack: ten wrong passwords for a user who signs in with codes only locked
    /// that user out of code sign-in (their right code answered 429). Password failures now
    /// spend `failed_passwords_per_identifier_per_hour` alone (10 by default, as here).
    @Test func someoneElsesPasswordGuessesDoNotLockTheUserOutOfCodes() async throws {
        let harness = try V1Harness {
            passwordYAML(redisURL: nil, prefix: $1).replacingFirst(
                "surfaces:",
                with: """
                      - id: victim
                        channels: [email]
                        otp: {resend_cooldown_seconds: 0}
                        limits: {failed_attempts_per_identifier_per_hour: 10, failed_attempts_per_ip_per_hour: 100000}
                        tokens: {keys: [\(testJWTKey)]}
                      - id: streaky
                        channels: [email]
                        otp: {resend_cooldown_seconds: 0}
                        limits: {max_consecutive_failures: 5, failed_attempts_per_ip_per_hour: 100000}
                        tokens: {keys: [\(testJWTKey)]}
                    surfaces:
                    """)
        }
        let (email, other) = (Self.email(), Self.email())
        try await harness.importUsers([email], app: "victim")
        try await harness.importUsers([other], app: "streaky")
        try await harness.run { http in
            func signInWithACode(_ app: String, _ identifier: String) async throws -> Int {
                let send = try await http.post("/v1/apps/\(app)/login/otp", ["identifier": identifier])
                #expect(send.status == 200, "\(send.body)")
                let otpID = try #require(send.json["otp_id"] as? String)
                let code = try #require(harness.capture.lastCode(to: identifier))
                return try await http.post("/v1/apps/\(app)/otp/activate", ["otp_id": otpID, "otp": code]).status
            }
            // The attacker: ten wrong passwords at once (the hourly budget), then more.
            let guesses = try await concurrently(10) { i in
                try await http.post("/v1/apps/victim/login/password", ["identifier": email, "password": "guess-\(i)"]).status
            }
            #expect(guesses.allSatisfy { $0 == 401 }, "\(guesses)")
            let over = try await http.post("/v1/apps/victim/login/password", ["identifier": email, "password": "guess-x"])
            #expect(over.status == 429 && over.code == "too_many_attempts" && over.header("Retry-After") != nil, "\(over.body)")
            // The user: the right code signs in.
            #expect(try await signInWithACode("victim", email) == 200)

            // Wrong passwords in a row lock password sign-in, and only that.
            for i in 0..<5 {
                #expect(try await http.post("/v1/apps/streaky/login/password", ["identifier": other, "password": "guess-\(i)"]).status == 401)
            }
            let locked = try await http.post("/v1/apps/streaky/login/password", ["identifier": other, "password": "guess-5"])
            #expect(locked.status == 429 && locked.code == "identifier_locked", "\(locked.body)")
            #expect(try await signInWithACode("streaky", other) == 200)
        }
    }

    // MARK: 4. a send that reached a gateway spends its quotas, whatever the gateway answered

    static func refusingGatewayYAML(redisURL: String?, prefix: String, gateway: String) -> String {
        """
        mode: development
        server: {trusted_proxies: ["127.0.0.1/32"]}
        redis: \(TestRedis.configurationYAML(url: redisURL, keyPrefix: prefix, timeoutMilliseconds: 5000))
        security: {pepper: "test-pepper-0123456789abcdef"}
        delivery:
          sms: {provider: twilio, base_url: "\(gateway)", account_sid: "AC0123", auth_token: "twilio-token", from: "+15005550006"}
          timeout_ms: 2000
          retries: 2
        apps:
          - id: perip
            channels: [sms]
            otp: {resend_cooldown_seconds: 0}
            limits: {sends_per_ip_per_hour: 3, sends_per_identifier_per_hour: 100}
            tokens: {keys: [\(testJWTKey)]}
          - id: perid
            channels: [sms]
            otp: {resend_cooldown_seconds: 0}
            limits: {sends_per_ip_per_hour: 1000, sends_per_identifier_per_hour: 2}
            tokens: {keys: [\(testJWTKey)]}
          - id: perapp
            channels: [sms]
            otp: {resend_cooldown_seconds: 0}
            limits: {sends_per_ip_per_hour: 1000, sends_per_identifier_per_hour: 100, sms_and_calls_per_app_per_hour: 2}
            tokens: {keys: [\(testJWTKey)]}
        """
    }

    /// The review's attack: numbers the provider refuses (Twilio 21211) gave every quota back,
    /// so one client drove unlimited paid API calls (6 sends with 3 allowed: six 502s). Now
    /// each refused send spends the client's, the identifier's and the app's quotas, and
    /// leaves no usable code.
    @Test func aGatewayThatRefusesTheNumberStillSpendsEveryQuota() async throws {
        try await FakeGateway.run { gateway in
            gateway.set(.answer(status: 400, body: #"{"code": 21211, "message": "The 'To' number is not a valid phone number.", "status": 400}"#))
            let harness = try V1Harness { Self.refusingGatewayYAML(redisURL: nil, prefix: $1, gateway: gateway.url) }
            try await harness.run { http in
                func send(_ app: String, _ phone: String, from ip: String = "203.0.113.9") async throws -> Int {
                    try await http.post("/v1/apps/\(app)/register/otp", ["identifier": phone], headers: ["X-Forwarded-For": ip]).status
                }
                var perIP: [Int] = []
                for i in 0..<6 { perIP.append(try await send("perip", "+1555010000\(i)")) }
                #expect(perIP == [502, 502, 502, 429, 429, 429], "client quota: \(perIP)")
                var perIdentifier: [Int] = []
                for i in 0..<4 { perIdentifier.append(try await send("perid", "+15550200000", from: "203.0.113.\(20 + i)")) }
                #expect(perIdentifier == [502, 502, 429, 429], "identifier quota: \(perIdentifier)")
                var perApp: [Int] = []
                for i in 0..<4 { perApp.append(try await send("perapp", "+1555030000\(i)", from: "203.0.113.\(40 + i)")) }
                #expect(perApp == [502, 502, 429, 429], "app quota: \(perApp)")
                // Each refused send reached the gateway once (a 4xx is not retried) and left no OTP.
                #expect(gateway.requests.count == 3 + 2 + 2)
                #expect(try await TestRedis.allKeys(matching: "\(harness.prefix):*otp*").isEmpty)
            }
        }
    }

    /// The other side of the rule: a gateway that cannot be reached at all was never billed,
    /// so the quotas come back (no 429 however often the client retries).
    @Test func anUnreachableGatewayGivesEveryQuotaBack() async throws {
        let harness = try V1Harness {
            Self.refusingGatewayYAML(redisURL: nil, prefix: $1, gateway: "http://127.0.0.1:\(freePort())")
        }
        try await harness.run { http in
            var statuses: [Int] = []
            for _ in 0..<5 {
                statuses.append(try await http.post("/v1/apps/perid/register/otp", ["identifier": "+15550400000"]).status)
            }
            #expect(statuses.allSatisfy { $0 == 502 }, "\(statuses)")
        }
    }

    // MARK: 5. cross-site simple posts

    /// A POST as a hostile page makes a visitor's browser send it without a CORS preflight.
    func post(port: Int, _ path: String, body: String, contentType: String?, headers: [String: String] = [:]) async throws
        -> HTTP.Reply
    {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = .POST
        if let contentType { request.headers.add(name: "Content-Type", value: contentType) }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await HTTP.client.execute(request, timeout: .seconds(30))
        let collected = try await response.body.collect(upTo: 1 << 20)
        return HTTP.Reply(
            status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) }, body: String(buffer: collected))
    }

    /// The review's attack: `text/plain` register → 201, a code sent. Every JSON POST now
    /// answers a body that is not `application/json` with 415 `unsupported_media_type` in
    /// its surface's shape, and nothing is sent, stored or counted.
    @Test func crossSiteSimplePostsAre415AndDoNothing() async throws {
        let harness = try V1Harness { passwordYAML(redisURL: nil, prefix: $1) }
        let email = Self.email()
        try await harness.importUsers([email])
        try await harness.run { http in
            let simple = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", nil, "application/jsonp"]
            let identifier = #"{"identifier": "\#(email)"}"#
            for contentType in simple {
                let register = try await post(port: http.port, "/v1/apps/roomy/register/otp", body: identifier, contentType: contentType)
                #expect(register.status == 415 && register.code == "unsupported_media_type", "\(contentType ?? "none"): \(register.body)")
                let login = try await post(port: http.port, "/v1/apps/reset/login/otp", body: identifier, contentType: contentType)
                #expect(login.status == 415, "\(login.body)")
                let reset = try await post(
                    port: http.port, "/auth/otp", body: #"{"action": "create", "email": "\#(email)"}"#, contentType: contentType)
                #expect(reset.status == 415 && reset.json["success"] as? Bool == false, "\(reset.body)")
            }
            #expect(harness.capture.deliveries(to: email).isEmpty, "a cross-site post sent a code")
            #expect(try await TestRedis.allKeys(matching: "\(harness.prefix):*").allSatisfy { !$0.contains(":otp") })
            // JSON, with parameters and in any case, is served.
            for contentType in ["application/json; charset=utf-8", "Application/JSON"] {
                let login = try await post(port: http.port, "/v1/apps/reset/login/otp", body: identifier, contentType: contentType)
                #expect(login.status == 200, "\(contentType): \(login.body)")
            }
        }
    }
}
