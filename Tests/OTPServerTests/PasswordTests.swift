import Foundation
import Logging
import NIOHTTP1
import OTPCore
import OTPCrypto
import OTPTestSupport
import RedisClient
import Testing

@testable import OTPServer

/// A configuration with the password-reset surface bound to `reset` (shaped like the shipped
/// one: 5-digit codes, 3 attempts, 3 sends an hour) and apps for the password guards. Email
/// goes to `webhookURL` when given (a real local server), else to the log gateway.
func passwordYAML(redisURL: String?, prefix: String, webhookURL: String? = nil) -> String {
    let key = testJWTKey
    var yaml = testYAMLHeader(redisURL: redisURL, prefix: prefix, trustedProxies: "10.9.0.0/16")
    if let webhookURL {
        yaml = yaml.replacingOccurrences(
            of: "  email: {provider: log}", with: #"  email: {provider: webhook, url: "\#(webhookURL)", secret: "hook-secret-0123"}"#)
    }
    return yaml + """
        apps:
          - id: reset
            name: Password reset
            channels: [email]
            registration: closed
            otp: {length: 5, alphabet: digits, ttl_seconds: 600, max_attempts: 3, resend_cooldown_seconds: 0}
            limits: {sends_per_identifier_per_hour: 3, sends_per_ip_per_hour: 100000, failed_attempts_per_identifier_per_hour: 10,
                     failed_attempts_per_ip_per_hour: 100000}
            tokens: {keys: [\(key)]}
          - id: guess
            channels: [email]
            otp: {resend_cooldown_seconds: 0}
            limits: {failed_passwords_per_identifier_per_hour: 4, failed_attempts_per_ip_per_hour: 100000}
            tokens: {keys: [\(key)]}
          - id: streak
            channels: [email]
            limits: {failed_attempts_per_identifier_per_hour: 1000, failed_attempts_per_ip_per_hour: 100000, max_consecutive_failures: 3}
            tokens: {keys: [\(key)]}
          - id: ipguard
            channels: [email]
            limits: {failed_attempts_per_identifier_per_hour: 1000, failed_attempts_per_ip_per_hour: 3}
            tokens: {keys: [\(key)]}
          - id: roomy
            channels: [email]
            otp: {resend_cooldown_seconds: 0}
            limits: {sends_per_identifier_per_hour: 1000, failed_attempts_per_identifier_per_hour: 1000, failed_attempts_per_ip_per_hour: 100000}
            password: {min_length: 10}
            tokens: {keys: [\(key)]}
        surfaces:
          password_reset: {app: reset}
        """
}

extension V1Harness {
    /// An engine of this configuration beside the server's, its log gateway captured too.
    func withEngine<T>(_ body: (OTPEngine) async throws -> T) async throws -> T {
        // Standalone or cluster, as the configuration says (this run's mode).
        let redis = try makeRedisClient(configuration.redis, logger: capture.logger)
        defer { redis.shutdown() }
        try await redis.start()
        let engine = OTPEngine(
            configuration: configuration, redis: redis, providers: configuration.deliveryProviders(logger: capture.logger),
            logger: capture.logger)
        return try await body(engine)
    }

    /// Sets a password through the engine's reset flow (for apps not bound to /auth/otp).
    func storePassword(app: String, email: String, password: String, codeLength: Int = 6) async throws {
        try await withEngine { engine in
            _ = try await Passwords(engine: engine).sendReset(appID: app, email: email, clientIP: nil)
            let code = try #require(capture.lastCode(to: email, length: codeLength))
            try await Passwords(engine: engine).reset(appID: app, email: email, code: code, newPassword: password)
        }
    }

    /// Users of `app` created the way a team moving here would: by `otpd import users`.
    func importUsers(_ emails: [String], app: String = "reset") async throws {
        try await withEngine { engine in try await importUsers(emails, app: app, engine: engine) }
    }

    func importUsers(_ emails: [String], app: String, engine: OTPEngine) async throws {
        let file = emails.map { #"{"email": "\#($0)", "status": "active"}"# }.joined(separator: "\n")
        let summary = try await UserImporter(engine: engine).run(appID: app, file: Array(file.utf8)) { line, reason in
            Issue.record("line \(line): \(reason)")
        }
        #expect(summary.created == emails.count)
    }

    /// Sets a password through the reset flow (create, the emailed code, validate).
    func setPassword(_ http: HTTP, email: String, password: String) async throws {
        let create = try await http.post("/auth/otp", ["action": "create", "email": email])
        #expect(create.status == 200, "\(create.body)")
        let code = try #require(capture.lastCode(to: email, length: 5))
        let validate = try await http.post("/auth/otp", ["action": "validate", "email": email, "otp": code, "new_password": password])
        #expect(validate.status == 200, "\(validate.body)")
    }
}

@Suite("Password reset (POST /auth/otp) and password sign-in (POST /v1/apps/{app}/login/password)")
struct PasswordTests {
    static func email() -> String { "pw-\(UUID().uuidString.prefix(8).lowercased())@example.com" }

    static let sent = #"{"success":true,"message":"Successfully sent OTP."}"#
    static let reset = #"{"success":true,"message":"Successfully validated OTP and reset password."}"#
    static let wrongCode = #"{"success":false,"message":"Something went wrong. Could not validate OTP. Please try again."}"#

    /// A code of `length` digits other than `code`.
    static func otherCode(than code: String) -> String {
        String(code.map { $0 == "9" ? "0" : Character(String($0.wholeNumberValue! + 1)) })
    }

    // MARK: the whole flow

    /// create → the code arrives by email (a real webhook gateway) → validate → the new password
    /// signs in, the old one does not, the code does not work twice.
    @Test func resetFlowEndToEndThroughTheEmailGateway() async throws {
        try await FakeGateway.run { gateway in
            gateway.set(.answer(status: 200, body: "{}"))
            let harness = try V1Harness { passwordYAML(redisURL: nil, prefix: $1, webhookURL: gateway.url + "/mail") }
            let email = Self.email()
            try await harness.importUsers([email])
            try await harness.run { http in
                func emailedCode() throws -> String {
                    let message = try #require(gateway.requests.last)
                    let json = try #require(try JSONSerialization.jsonObject(with: Data(message.body)) as? [String: Any])
                    #expect(json["channel"] as? String == "email" && json["to"] as? String == email)
                    let text = try #require(json["text"] as? String)
                    return try #require(text.firstMatch(of: /\b\d{5}\b/).map { String($0.output) })
                }
                // A first reset sets the old password.
                #expect(try await http.post("/auth/otp", ["action": "create", "email": email]).body == Self.sent)
                #expect(gateway.requests.count == 1)
                let first = try emailedCode()
                let setOld = try await http.post(
                    "/auth/otp", ["action": "validate", "email": email, "otp": first, "new_password": "old-password-1"])
                #expect(setOld.status == 200 && setOld.body == Self.reset)

                // The second reset replaces it.
                let create = try await http.post("/auth/otp", ["action": "create", "email": email.uppercased()])
                #expect(create.status == 200 && create.body == Self.sent)
                #expect(gateway.requests.count == 2)
                let code = try emailedCode()
                let wrong = try await http.post(
                    "/auth/otp", ["action": "validate", "email": email, "otp": Self.otherCode(than: code), "new_password": "new-password-2"])
                #expect(wrong.status == 400 && wrong.body == Self.wrongCode)
                let right = try await http.post(
                    "/auth/otp", ["action": "validate", "email": email, "otp": code, "new_password": "new-password-2"])
                #expect(right.status == 200 && right.body == Self.reset)
                #expect(right.header("Content-Type")?.hasPrefix("application/json") == true)

                // The code cannot be used twice.
                let again = try await http.post(
                    "/auth/otp", ["action": "validate", "email": email, "otp": code, "new_password": "third-password-3"])
                #expect(again.status == 400 && again.body == Self.wrongCode)

                // The new password signs in; the old one does not.
                let login = try await http.post("/v1/apps/reset/login/password", ["identifier": email, "password": "new-password-2"])
                #expect(login.status == 200, "\(login.body)")
                #expect(login.header("Cache-Control") == "no-store")
                let result = try #require(login.json["auth_result"] as? [String: Any])
                let token = try #require(result["auth_token"] as? String)
                #expect(result["refresh_token"] is String && result["refresh_token_expiration"] is Int && result["redirect_url"] is String)
                let payload = Data(Base64URL.decode(token.split(separator: ".")[1]) ?? [])
                let claims = try #require(try JSONSerialization.jsonObject(with: payload) as? [String: Any])
                #expect(claims["amr"] as? [String] == ["pwd"] && claims["aud"] as? String == "reset")
                let old = try await http.post("/v1/apps/reset/login/password", ["identifier": email, "password": "old-password-1"])
                #expect(old.status == 401 && old.code == "invalid_credentials")
                let third = try await http.post("/v1/apps/reset/login/password", ["identifier": email, "password": "third-password-3"])
                #expect(third.status == 401 && third.code == "invalid_credentials")

                // The session is a v1 session: currentuser and refresh work.
                let me = try await http.get("/v1/apps/reset/currentuser", headers: ["Authorization": "Bearer \(token)"])
                #expect(me.status == 200 && (me.json["user"] as? [String: Any])?["email"] as? String == email)
                let refresh = try await http.post(
                    "/v1/apps/reset/tokens/refresh", ["refresh_token": try #require(result["refresh_token"] as? String)])
                #expect(refresh.status == 200, "\(refresh.body)")
            }
        }
    }

    // MARK: every answer of /auth/otp

    @Test func everyAnswerOfAuthOTP() async throws {
        let harness = try V1Harness { passwordYAML(redisURL: nil, prefix: $1) }
        let email = Self.email()
        try await harness.importUsers([email])
        try await harness.run { http in
            func post(_ json: [String: Any]) async throws -> HTTP.Reply { try await http.post("/auth/otp", json) }
            func expectShape(_ reply: HTTP.Reply, _ status: Int, _ message: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
                #expect(reply.status == status, "\(reply.body)", sourceLocation: sourceLocation)
                #expect(reply.json["success"] as? Bool == (status == 200), "\(reply.body)", sourceLocation: sourceLocation)
                #expect(reply.json.count == 2 && reply.json["message"] is String, "\(reply.body)", sourceLocation: sourceLocation)
                if let message { #expect(reply.json["message"] as? String == message, sourceLocation: sourceLocation) }
            }
            // Actions.
            expectShape(try await post(["action": "delete", "email": email]), 400, "Invalid action.")
            expectShape(try await post(["action": "", "email": email]), 400, "Invalid action.")
            expectShape(try await post(["email": email]), 400, "missing required field 'action'")
            expectShape(try await post(["action": 1, "email": email]), 400, "field 'action' must be a string")
            // Malformed bodies, in the same shape.
            expectShape(try await http.request(.POST, "/auth/otp", raw: "{not json"), 400, "the request body is not valid JSON")
            expectShape(try await http.request(.POST, "/auth/otp", raw: "[1]"), 400)
            // No body and no Content-Type: not JSON, 415 (nothing is done).
            expectShape(try await http.request(.POST, "/auth/otp"), 415)
            // create: fields.
            expectShape(try await post(["action": "create"]), 400, "missing required field 'email'")
            expectShape(try await post(["action": "create", "email": 5]), 400, "field 'email' must be a string")
            expectShape(try await post(["action": "create", "email": "+4915112345678"]), 400, "Email must be an email address.")
            expectShape(try await post(["action": "create", "email": "not an email"]), 400, "Email must be an email address.")
            // Unknown email: 404.
            expectShape(try await post(["action": "create", "email": Self.email()]), 404)
            // validate: fields.
            expectShape(try await post(["action": "validate", "email": email, "otp": "12345"]), 400, "missing required field 'new_password'")
            expectShape(try await post(["action": "validate", "email": email, "new_password": "long-enough-1"]), 400, "missing required field 'otp'")
            expectShape(try await post(["action": "validate", "otp": "12345", "new_password": "long-enough-1"]), 400, "missing required field 'email'")
            expectShape(try await post(["action": "validate", "email": email, "otp": 12345, "new_password": "x"]), 400, "field 'otp' must be a string")
            // No code pending: the wrong-code answer.
            let noCode = try await post(["action": "validate", "email": email, "otp": "12345", "new_password": "long-enough-1"])
            #expect(noCode.status == 400 && noCode.body == Self.wrongCode)

            // Success.
            let sent = try await post(["action": "create", "email": email])
            expectShape(sent, 200, "Successfully sent OTP.")
            let code = try #require(harness.capture.lastCode(to: email, length: 5))
            // Under the policy: 400 with a clear message, and no attempt spent.
            for _ in 0..<5 {
                expectShape(
                    try await post(["action": "validate", "email": email, "otp": code, "new_password": "short"]), 400,
                    "The password must be at least 8 characters long.")
            }
            expectShape(
                try await post(["action": "validate", "email": email, "otp": code, "new_password": String(repeating: "é", count: 513)]), 400,
                "The password must be at most 1024 bytes long.")
            // Wrong codes: 400, until the code's 3 attempts are spent: it is dead, even when right.
            for _ in 0..<3 {
                expectShape(
                    try await post(["action": "validate", "email": email, "otp": Self.otherCode(than: code), "new_password": "long-enough-1"]),
                    400, "Something went wrong. Could not validate OTP. Please try again.")
            }
            expectShape(
                try await post(["action": "validate", "email": email, "otp": code, "new_password": "long-enough-1"]), 400,
                "Something went wrong. Could not validate OTP. Please try again.")
            // A new code works; exactly the minimum length is enough.
            expectShape(try await post(["action": "create", "email": email]), 200, "Successfully sent OTP.")
            let second = try #require(harness.capture.lastCode(to: email, length: 5))
            expectShape(
                try await post(["action": "validate", "email": email, "otp": " \(second) ", "new_password": "eight888"]), 200,
                "Successfully validated OTP and reset password.")
            // Three sends an hour: the third is the last.
            expectShape(try await post(["action": "create", "email": email]), 200, "Successfully sent OTP.")
            let over = try await post(["action": "create", "email": email])
            expectShape(over, 429)
            let retryAfter = try #require(over.header("Retry-After").flatMap { Int($0) })
            // The sliding window's truthful wait runs past the hour when the quota filled early in
            // it (up to 2 h; OTPStoreTests checks it exactly with a test clock).
            #expect(retryAfter > 0 && retryAfter <= 7200)
        }
    }

    // MARK: every answer of /login/password

    @Test func everyAnswerOfLoginPassword() async throws {
        let harness = try V1Harness { passwordYAML(redisURL: nil, prefix: $1) }
        let (withPassword, without) = (Self.email(), Self.email())
        try await harness.importUsers([withPassword, without])
        try await harness.run { http in
            try await harness.setPassword(http, email: withPassword, password: "correct-password")
            func login(_ json: [String: Any], app: String = "reset") async throws -> HTTP.Reply {
                try await http.post("/v1/apps/\(app)/login/password", json)
            }
            let ok = try await login(["identifier": " \(withPassword.uppercased()) ", "password": "correct-password"])
            #expect(ok.status == 200 && ok.header("Cache-Control") == "no-store", "\(ok.body)")
            #expect(ok.json.keys.sorted() == ["auth_result"])
            let wrong = try await login(["identifier": withPassword, "password": "correct-passwore"])
            #expect(wrong.status == 401 && wrong.code == "invalid_credentials", "\(wrong.body)")
            #expect(wrong.json["error"] as? String == "the identifier or the password is wrong")
            // A user without a password, an unknown one: the same answer.
            let none = try await login(["identifier": without, "password": "correct-password"])
            #expect(none.status == 401 && none.body == wrong.body)
            let unknown = try await login(["identifier": Self.email(), "password": "correct-password"])
            #expect(unknown.status == 401 && unknown.body == wrong.body)
            let tooLong = try await login(["identifier": withPassword, "password": String(repeating: "x", count: 1025)])
            #expect(tooLong.status == 401 && tooLong.body == wrong.body)
            // Bad input.
            #expect(try await login(["identifier": "nobody", "password": "x"]).code == "invalid_identifier")
            let missing = try await login(["identifier": withPassword])
            #expect(missing.status == 400 && missing.code == "invalid_field" && (missing.json["error"] as? String)?.contains("password") == true)
            #expect(try await login(["identifier": withPassword, "password": 5]).code == "invalid_field")
            #expect(try await http.request(.POST, "/v1/apps/reset/login/password", raw: "{").code == "invalid_json")
            #expect(try await login(["identifier": withPassword, "password": "x"], app: "nope").code == "app_not_found")
            // The password belongs to its app: the same address on another app has none.
            #expect(try await login(["identifier": withPassword, "password": "correct-password"], app: "roomy").status == 401)
        }
    }

    @Test func passwordPolicyIsPerApp() async throws {
        let harness = try V1Harness { passwordYAML(redisURL: nil, prefix: $1) }
        try await harness.withEngine { engine in
            #expect(throws: OTPError.invalidPassword("the password must be at least 10 characters long")) {
                try Passwords(engine: engine).checkNewPassword("nine-char", appID: "roomy")
            }
            try Passwords(engine: engine).checkNewPassword("ten-chars!", appID: "roomy")
            try Passwords(engine: engine).checkNewPassword("eight-ch", appID: "reset")
            // Characters, not bytes: eight emoji are eight characters.
            try Passwords(engine: engine).checkNewPassword(String(repeating: "🔑", count: 8), appID: "reset")
            try Passwords(engine: engine).checkNewPassword(String(repeating: "x", count: 1024), appID: "reset")
            #expect(throws: OTPError.self) { try Passwords(engine: engine).checkNewPassword(String(repeating: "x", count: 1025), appID: "reset") }
        }
    }

    // MARK: codes of one purpose never pass for another

    @Test func aResetCodeSignsNobodyInAndASignInCodeResetsNothing() async throws {
        let harness = try V1Harness { passwordYAML(redisURL: nil, prefix: $1) }
        let email = Self.email()
        try await harness.importUsers([email], app: "roomy")
        try await harness.run { http in
          // roomy is not bound to /auth/otp: reset codes for it come from the engine directly.
          try await harness.withEngine { engine in
            let login = try await http.post("/v1/apps/roomy/login/otp", ["identifier": email])
            let otpID = try #require(login.json["otp_id"] as? String)
            let signInCode = try #require(harness.capture.lastCode(to: email))
            _ = try await Passwords(engine: engine).sendReset(appID: "roomy", email: email, clientIP: nil)
            let resetCode = try #require(harness.capture.lastCode(to: email))
            try #require(resetCode != signInCode)
            // The reset code on v1 activate: wrong. The sign-in code as a reset code: wrong.
            let activate = try await http.post("/v1/apps/roomy/otp/activate", ["otp_id": otpID, "otp": resetCode])
            #expect(activate.status == 401 && activate.code == "invalid_otp")
            await #expect(throws: OTPError.invalidOTP(attemptsRemaining: 4)) {
                try await Passwords(engine: engine).reset(appID: "roomy", email: email, code: signInCode, newPassword: "long-enough-pw")
            }
            // A reset otp_id is refused by activate whatever its code.
            let forged = otpID.split(separator: ".")[0] + ".r" + String(otpID.split(separator: ".")[1].dropFirst())
            #expect(try await http.post("/v1/apps/roomy/otp/activate", ["otp_id": String(forged), "otp": resetCode]).status == 404)
            // Each still works for its own purpose.
            #expect(try await http.post("/v1/apps/roomy/otp/activate", ["otp_id": otpID, "otp": signInCode]).status == 200)
            try await Passwords(engine: engine).reset(appID: "roomy", email: email, code: resetCode, newPassword: "long-enough-pw")
            #expect(try await http.post("/v1/apps/roomy/login/password", ["identifier": email, "password": "long-enough-pw"]).status == 200)
          }
        }
    }

    // MARK: attackers

    /// Twenty validations of one code at once, each with its own new password: exactly one wins,
    /// and its password is the one stored.
    @Test func concurrentValidationsOfOneCodeSucceedExactlyOnce() async throws {
        let harness = try V1Harness { passwordYAML(redisURL: nil, prefix: $1) }
        let email = Self.email()
        try await harness.importUsers([email])
        try await harness.run { http in
            #expect(try await http.post("/auth/otp", ["action": "create", "email": email]).status == 200)
            let code = try #require(harness.capture.lastCode(to: email, length: 5))
            let statuses = try await concurrently(20) { i in
                let reply = try await http.post(
                    "/auth/otp", ["action": "validate", "email": email, "otp": code, "new_password": "password-number-\(i)"])
                return reply.status == 200 ? 1000 + i : reply.status
            }
            let winners = statuses.filter { $0 >= 1000 }
            #expect(winners.count == 1, "\(statuses.sorted())")
            #expect(statuses.filter { $0 < 1000 }.allSatisfy { $0 == 400 })
            let winner = try #require(winners.first) - 1000
            for i in [winner, (winner + 1) % 20] {
                let login = try await http.post("/v1/apps/reset/login/password", ["identifier": email, "password": "password-number-\(i)"])
                #expect(login.status == (i == winner ? 200 : 401))
            }
        }
    }

    /// Guessing a password stops at failed_attempts_per_identifier_per_hour (4 on `guess`) with
    /// 429 and a Retry-After — even for guesses sent at once, and even for the right password.
    @Test func passwordGuessingStopsAtTheHourlyQuota() async throws {
        let harness = try V1Harness { passwordYAML(redisURL: nil, prefix: $1) }
        let (victim, other) = (Self.email(), Self.email())
        try await harness.importUsers([victim, other], app: "guess")
        try await harness.run { http in
            for email in [victim, other] { try await harness.storePassword(app: "guess", email: email, password: "the-right-one") }
            // Ten guesses at once: exactly four are evaluated (401), the rest refused (429).
            let statuses = try await concurrently(10) { i in
                try await http.post("/v1/apps/guess/login/password", ["identifier": victim, "password": "guess-\(i)"]).status
            }
            #expect(statuses.filter { $0 == 401 }.count == 4, "\(statuses.sorted())")
            #expect(statuses.filter { $0 == 429 }.count == 6, "\(statuses.sorted())")
            let refused = try await http.post("/v1/apps/guess/login/password", ["identifier": victim, "password": "the-right-one"])
            #expect(refused.status == 429 && refused.code == "too_many_attempts")
            let retryAfter = try #require(refused.header("Retry-After").flatMap { Int($0) })
            // The sliding window's truthful wait runs past the hour when the quota filled early in
            // it (up to 2 h; OTPStoreTests checks it exactly with a test clock).
            #expect(retryAfter > 0 && retryAfter <= 7200)
            // Another identifier is not affected; a right password spends nothing.
            for _ in 0..<6 {
                #expect(try await http.post("/v1/apps/guess/login/password", ["identifier": other, "password": "the-right-one"]).status == 200)
            }
        }
    }

    /// Wrong passwords from one client across identifiers stop at failed_attempts_per_ip_per_hour
    /// (3 on `ipguard`), like wrong codes; a right password gives its unit back.
    @Test func wrongPasswordsFromOneClientAcrossUsersAreCapped() async throws {
        let harness = try V1Harness { passwordYAML(redisURL: nil, prefix: $1) }
        let email = Self.email()
        try await harness.importUsers([email], app: "ipguard")
        try await harness.run { http in
            try await harness.storePassword(app: "ipguard", email: email, password: "the-right-one")
            func login(_ identifier: String, _ password: String) async throws -> HTTP.Reply {
                try await http.post("/v1/apps/ipguard/login/password", ["identifier": identifier, "password": password])
            }
            for _ in 0..<3 { #expect(try await login(email, "the-right-one").status == 200) }
            for _ in 0..<3 { #expect(try await login(Self.email(), "guess").status == 401) }
            let refused = try await login(Self.email(), "guess")
            #expect(refused.status == 429 && refused.code == "too_many_attempts" && refused.header("Retry-After") != nil)
            #expect(try await login(email, "the-right-one").status == 429)
        }
    }

    /// The reset app's send quota is the app's: v1 codes and reset codes count together.
    @Test func resetSendsShareTheAppsQuotaWithV1() async throws {
        let harness = try V1Harness { passwordYAML(redisURL: nil, prefix: $1) }
        let email = Self.email()
        try await harness.importUsers([email])
        try await harness.run { http in
            #expect(try await http.post("/v1/apps/reset/login/otp", ["identifier": email]).status == 200)
            #expect(try await http.post("/auth/otp", ["action": "create", "email": email]).status == 200)
            #expect(try await http.post("/v1/apps/reset/login/otp", ["identifier": email]).status == 200)
            // Three sends an hour on `reset`, whichever route asked.
            let refused = try await http.post("/auth/otp", ["action": "create", "email": email])
            #expect(refused.status == 429 && refused.header("Retry-After") != nil)
            #expect(try await http.post("/v1/apps/reset/login/otp", ["identifier": email]).code == "rate_limited")
        }
    }

    /// max_consecutive_failures (3 on `streak`) wrong passwords in a row lock the identifier:
    /// 429 identifier_locked with a Retry-After of the lockout; a success between resets the count.
    @Test func wrongPasswordsInARowLockTheIdentifier() async throws {
        let harness = try V1Harness { passwordYAML(redisURL: nil, prefix: $1) }
        let email = Self.email()
        try await harness.importUsers([email], app: "streak")
        try await harness.run { http in
            try await harness.storePassword(app: "streak", email: email, password: "the-right-one")
            func login(_ password: String) async throws -> HTTP.Reply {
                try await http.post("/v1/apps/streak/login/password", ["identifier": email, "password": password])
            }
            #expect(try await login("wrong-1").status == 401)
            #expect(try await login("wrong-2").status == 401)
            #expect(try await login("the-right-one").status == 200)  // the count starts over
            #expect(try await login("wrong-3").status == 401)
            #expect(try await login("wrong-4").status == 401)
            #expect(try await login("wrong-5").status == 401)  // the third in a row locks
            let locked = try await login("the-right-one")
            #expect(locked.status == 429 && locked.code == "identifier_locked")
            let retryAfter = try #require(locked.header("Retry-After").flatMap { Int($0) })
            #expect(retryAfter > 86_000 && retryAfter <= 86_400)
            let metrics = try await http.get("/metrics").body
            #expect(metrics.contains(#"otpd_security_events_total{app="streak",event="identifier_locked"} 1"#))
            // otpd user unlock lifts it.
            #expect(try await harness.withEngine { try await $0.unlock(appID: "streak", identifier: email) })
            #expect(try await login("the-right-one").status == 200)
        }
    }

    /// An unknown identifier costs a dummy verification: it answers about as late as a wrong
    /// password (a loose bound: the point is that it is not answered at once).
    @Test func unknownUserTakesAboutAsLongAsAWrongPassword() async throws {
        let harness = try V1Harness { passwordYAML(redisURL: nil, prefix: $1) }
        let email = Self.email()
        try await harness.importUsers([email], app: "roomy")
        try await harness.run { http in
            try await harness.storePassword(app: "roomy", email: email, password: "the-right-one")
            let clock = ContinuousClock()
            var wrong = Duration.zero
            var unknown = Duration.zero
            // Warm up (the dummy hash is made at its first use), then alternate.
            _ = try await http.post("/v1/apps/roomy/login/password", ["identifier": Self.email(), "password": "x"])
            for _ in 0..<4 {
                var start = clock.now
                #expect(try await http.post("/v1/apps/roomy/login/password", ["identifier": email, "password": "guess"]).status == 401)
                wrong += clock.now - start
                start = clock.now
                #expect(try await http.post("/v1/apps/roomy/login/password", ["identifier": Self.email(), "password": "guess"]).status == 401)
                unknown += clock.now - start
            }
            let ratio = unknown / wrong
            #expect(ratio > 0.5 && ratio < 2, "unknown \(unknown), wrong password \(wrong)")
        }
    }

    /// A reset send refused (unknown email, or over the hourly quota) changes nothing of the
    /// identifier: no key for an unknown address; the victim's live code still works and the
    /// refusal does not push the quota's Retry-After further out.
    @Test func aRefusedResetSendTouchesNoQuota() async throws {
        let harness = try V1Harness { passwordYAML(redisURL: nil, prefix: $1) }
        let email = Self.email()
        try await harness.importUsers([email])
        try await harness.run { http in
            let userKeys = "\(harness.prefix):{reset:*"
            func identifierKeys() async throws -> Set<String> {
                Set(try await TestRedis.allKeys(matching: userKeys).filter { !$0.contains("{reset:ip:") })
            }
            let before = try await identifierKeys()
            for _ in 0..<5 {
                #expect(try await http.post("/auth/otp", ["action": "create", "email": Self.email()]).status == 404)
            }
            #expect(try await identifierKeys() == before)

            for _ in 0..<3 { #expect(try await http.post("/auth/otp", ["action": "create", "email": email]).status == 200) }
            let code = try #require(harness.capture.lastCode(to: email, length: 5))
            let first = try await http.post("/auth/otp", ["action": "create", "email": email])
            #expect(first.status == 429)
            let firstWait = try #require(first.header("Retry-After").flatMap { Int($0) })
            for _ in 0..<5 { #expect(try await http.post("/auth/otp", ["action": "create", "email": email]).status == 429) }
            let last = try await http.post("/auth/otp", ["action": "create", "email": email])
            let lastWait = try #require(last.header("Retry-After").flatMap { Int($0) })
            #expect(lastWait <= firstWait)
            // No new code was sent, and the live one still resets the password.
            #expect(harness.capture.lastCode(to: email, length: 5) == code)
            let validate = try await http.post(
                "/auth/otp", ["action": "validate", "email": email, "otp": code, "new_password": "long-enough-1"])
            #expect(validate.status == 200, "\(validate.body)")
        }
    }

    /// A reset ends the sessions that started before it: whoever knew the old password is out.
    @Test func aResetEndsEarlierSessions() async throws {
        let harness = try V1Harness { passwordYAML(redisURL: nil, prefix: $1) }
        let email = Self.email()
        try await harness.importUsers([email])
        try await harness.run { http in
            try await harness.setPassword(http, email: email, password: "first-password")
            let login = try await http.post("/v1/apps/reset/login/password", ["identifier": email, "password": "first-password"])
            let refreshToken = try #require((login.json["auth_result"] as? [String: Any])?["refresh_token"] as? String)
            try await Task.sleep(for: .milliseconds(5))
            try await harness.setPassword(http, email: email, password: "second-password")
            let refresh = try await http.post("/v1/apps/reset/tokens/refresh", ["refresh_token": refreshToken])
            #expect(refresh.status == 401 && refresh.code == "invalid_refresh_token")
            // A session that starts after the reset lives on.
            let after = try await http.post("/v1/apps/reset/login/password", ["identifier": email, "password": "second-password"])
            let token = try #require((after.json["auth_result"] as? [String: Any])?["refresh_token"] as? String)
            #expect(try await http.post("/v1/apps/reset/tokens/refresh", ["refresh_token": token]).status == 200)
        }
    }

    /// A hash made with parameters below the current ones is replaced at the next sign-in.
    @Test func aWeakHashIsReplacedAtTheNextSignIn() async throws {
        let harness = try V1Harness { passwordYAML(redisURL: nil, prefix: $1) }
        let email = Self.email()
        try await harness.importUsers([email], app: "roomy")
        let key = try await harness.withEngine { engine in
            "\(harness.prefix):{roomy:\(engine.userID(app: "roomy", identifier: try #require(Identifier(email))))}:user"
        }
        let redis = try TestRedis.client()
        defer { redis.shutdown() }
        let weak = PasswordHasher.hashBlocking("an-old-password", parameters: .init(logN: 10, r: 8, p: 1))
        _ = try await redis.send("HSET", RedisArgument(key), "pw", RedisArgument(weak))
        try await harness.run { http in
            let login = try await http.post("/v1/apps/roomy/login/password", ["identifier": email, "password": "an-old-password"])
            #expect(login.status == 200, "\(login.body)")
            let stored = try #require(try await redis.send("HGET", RedisArgument(key), "pw").string)
            #expect(stored != weak && PasswordHasher.parameters(of: stored) == .owasp)
            #expect(try await http.post("/v1/apps/roomy/login/password", ["identifier": email, "password": "an-old-password"]).status == 200)
            #expect(try await http.post("/v1/apps/roomy/login/password", ["identifier": email, "password": "an-old-passwore"]).status == 401)
        }
    }

    @Test func redisDownIsA503InEachShape() async throws {
        let server = try RedisServerProcess()
        let harness = try V1Harness(redisURL: server.url) { passwordYAML(redisURL: $0, prefix: $1) }
        try await harness.run { http in
            server.kill()
            let create = try await http.post("/auth/otp", ["action": "create", "email": Self.email()])
            #expect(create.status == 503 && create.json["success"] as? Bool == false && create.header("Retry-After") != nil)
            let login = try await http.post("/v1/apps/reset/login/password", ["identifier": Self.email(), "password": "x"])
            #expect(login.status == 503 && login.code == "service_unavailable")
        }
    }

    @Test func theResetRouteExistsOnlyWhenBound() async throws {
        let harness = try V1Harness()
        try await harness.run { http in
            let reply = try await http.post("/auth/otp", ["action": "create", "email": Self.email()])
            #expect(reply.status == 404 && reply.code == "not_found")
        }
    }
}

