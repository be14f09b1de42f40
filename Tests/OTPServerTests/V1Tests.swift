import Foundation
import NIOHTTP1
import OTPCrypto
import OTPTestSupport
import RedisClient
import Testing

@testable import OTPServer

@Suite("v1: register, login, activate, tokens, currentuser")
struct V1Tests {
    static func email() -> String { "user-\(UUID().uuidString.prefix(8).lowercased())@example.com" }

    @Test func registerActivateAndCurrentUser() async throws {
        let harness = try V1Harness()
        try await harness.run { http in
            let email = Self.email()
            let send = try await http.post("/v1/apps/t/register/otp", ["identifier": "  \(email.uppercased()) ", "first_name": "Ada", "last_name": "Lovelace"])
            #expect(send.status == 201)
            let otpID = try #require(send.json["otp_id"] as? String)
            // The log gateway delivered the English email text to the normalized address.
            let message = try #require(harness.capture.deliveries(to: email).last)
            #expect(message.contains("valid 10 min"))
            let code = try #require(harness.capture.lastCode(to: email))
            let activate = try await http.post("/v1/apps/t/otp/activate", ["otp_id": otpID, "otp": code])
            #expect(activate.status == 200)
            let result = try #require(activate.json["auth_result"] as? [String: Any])
            #expect(result["redirect_url"] as? String == "/")
            let refreshToken = try #require(result["refresh_token"] as? String)
            #expect(Base64URL.decode(refreshToken.split(separator: ".").last!)?.count == 32)  // 256 random bits
            let expiration = try #require(result["refresh_token_expiration"] as? Int)
            #expect(abs(expiration - Int(Date().timeIntervalSince1970) - 2_592_000) < 10)
            let token = try #require(result["auth_token"] as? String)

            let me = try await http.get("/v1/apps/t/currentuser", headers: ["Authorization": "Bearer \(token)"])
            #expect(me.status == 200)
            let user = try #require(me.json["user"] as? [String: Any])
            #expect(user["email"] as? String == email)
            #expect(user["first_name"] as? String == "Ada" && user["last_name"] as? String == "Lovelace")
            #expect(user["status"] as? String == "active")
            #expect(user["phone"] is NSNull)
            let id = try #require(user["id"] as? String)
            #expect(id.count == 24 && id.allSatisfy { $0.isHexDigit && !$0.isUppercase })
            #expect((user["created_at"] as? String)?.hasSuffix("Z") == true && (user["last_login_at"] as? String) != nil)

            // The same code cannot be used twice.
            let again = try await http.post("/v1/apps/t/otp/activate", ["otp_id": otpID, "otp": code])
            #expect(again.status == 404 && again.code == "otp_not_found")
            // A verified user cannot register again, but can log in.
            let twice = try await http.post("/v1/apps/t/register/otp", ["identifier": email])
            #expect(twice.status == 409 && twice.code == "user_already_exists")
            let login = try await http.post("/v1/apps/t/login/otp", ["identifier": email])
            #expect(login.status == 200 && login.json["otp_id"] is String)
        }
    }

    /// The engine tells the metrics of every send and every judged code (`onOutcome`); the
    /// composition root wires it, so a surface that forgot to count could not exist.
    @Test func sendsAndVerificationsAreCountedOnMetrics() async throws {
        let harness = try V1Harness()
        try await harness.run { http in
            let email = Self.email()
            let send = try await http.post("/v1/apps/t/register/otp", ["identifier": email])
            let otpID = try #require(send.json["otp_id"] as? String)
            let code = try #require(harness.capture.lastCode(to: email))
            let wrong = String(format: "%06d", (Int(code)! + 1) % 1_000_000)
            #expect(try await http.post("/v1/apps/t/otp/activate", ["otp_id": otpID, "otp": wrong]).status == 401)
            #expect(try await http.post("/v1/apps/t/otp/activate", ["otp_id": otpID, "otp": code]).status == 200)
            // An app no configuration names is no label.
            _ = try await http.post("/v1/apps/nosuchapp/otp/activate", ["otp_id": otpID, "otp": code])
            let metrics = try await http.get("/metrics").body
            #expect(metrics.contains(#"otpd_otp_sent_total{app="t",channel="email"} 1"#), "\(metrics)")
            #expect(metrics.contains(#"otpd_otp_verifications_total{app="t",outcome="invalid"} 1"#))
            #expect(metrics.contains(#"otpd_otp_verifications_total{app="t",outcome="success"} 1"#))
            #expect(!metrics.contains("nosuchapp"))
        }
    }

    @Test func theTokenIsAStandardHS256JWT() async throws {
        let harness = try V1Harness()
        try await harness.run { http in
            let result = try await harness.signIn(http, identifier: Self.email())
            let token = try #require(result["auth_token"] as? String)
            #expect(IndependentHS256.verify(token, secret: "test-secret-0123456789abcdef0123456789abcdef"))
            #expect(!IndependentHS256.verify(token, secret: "test-secret-second-0123456789abcdef01234567"))
            let parts = token.split(separator: ".").map { Data(Base64URL.decode($0) ?? []) }
            let header = try #require(try JSONSerialization.jsonObject(with: parts[0]) as? [String: Any])
            #expect(header["alg"] as? String == "HS256" && header["typ"] as? String == "JWT" && header["kid"] as? String == "k1")
            let claims = try #require(try JSONSerialization.jsonObject(with: parts[1]) as? [String: Any])
            #expect(claims["iss"] as? String == "otpd-test" && claims["aud"] as? String == "t")
            #expect((claims["sub"] as? String)?.count == 24)
            #expect(claims["amr"] as? [String] == ["otp"])
            let iat = try #require(claims["iat"] as? Int)
            #expect(claims["exp"] as? Int == iat + 1800)
            #expect((claims["jti"] as? String)?.isEmpty == false)
        }
    }

    @Test func currentUserRejectsForgedExpiredAndForeignTokens() async throws {
        let harness = try V1Harness()
        try await harness.run { http in
            let result = try await harness.signIn(http, identifier: Self.email())
            let token = try #require(result["auth_token"] as? String)
            let parts = token.split(separator: ".").map(String.init)
            func claims(_ edit: (inout [String: Any]) -> Void) throws -> String {
                var object = try JSONSerialization.jsonObject(with: Data(Base64URL.decode(parts[1])!)) as! [String: Any]
                edit(&object)
                return Base64URL.encode(Array(try JSONSerialization.data(withJSONObject: object)))
            }
            func sign(_ header: String, _ payload: String, secret: String) -> String {
                let mac = IndependentHS256.hmac(key: Array(secret.utf8), message: Array("\(header).\(payload)".utf8))
                return "\(header).\(payload).\(IndependentHS256.base64URL(mac))"
            }
            let secret = "test-secret-0123456789abcdef0123456789abcdef"
            let noneHeader = Base64URL.encode(Array(#"{"alg":"none","typ":"JWT","kid":"k1"}"#.utf8))
            let forged: [(String, String)] = [
                ("alg none", "\(noneHeader).\(parts[1])."),
                ("wrong signature", "\(parts[0]).\(parts[1]).\(Base64URL.encode(Array(repeating: 7, count: 32)))"),
                ("tampered claims", "\(parts[0]).\(try claims { $0["sub"] = "aaaaaaaaaaaaaaaaaaaaaaaa" }).\(parts[2])"),
                ("expired", sign(parts[0], try claims { $0["exp"] = Int(Date().timeIntervalSince1970) - 3600 }, secret: secret)),
                ("another app", sign(parts[0], try claims { $0["aud"] = "other" }, secret: secret)),
                ("garbage", "not-a-jwt"),
            ]
            for (name, forgedToken) in forged {
                let reply = try await http.get("/v1/apps/t/currentuser", headers: ["Authorization": "Bearer \(forgedToken)"])
                #expect(reply.status == 401, "\(name)")
                #expect(reply.code == "invalid_token", "\(name)")
                #expect(reply.header("WWW-Authenticate")?.hasPrefix("Bearer") == true, "\(name)")
            }
            // A real token of this app is refused by another app.
            let foreign = try await http.get("/v1/apps/other/currentuser", headers: ["Authorization": "Bearer \(token)"])
            #expect(foreign.status == 401)
            let missing = try await http.get("/v1/apps/t/currentuser")
            #expect(missing.status == 401 && missing.code == "invalid_token")
            // The second listed key still verifies (rotation): a token signed with k2 is accepted.
            let k2Header = Base64URL.encode(Array(#"{"alg":"HS256","typ":"JWT","kid":"k2"}"#.utf8))
            let rotated = sign(k2Header, parts[1], secret: "test-secret-second-0123456789abcdef01234567")
            #expect(try await http.get("/v1/apps/t/currentuser", headers: ["Authorization": "Bearer \(rotated)"]).status == 200)
        }
    }

    @Test func accessTokensExpire() async throws {
        let harness = try V1Harness()
        try await harness.run { http in
            let result = try await harness.signIn(http, app: "tokenttl", identifier: Self.email())
            let token = try #require(result["auth_token"] as? String)
            // access_ttl_seconds 1, plus otpd's 30 s leeway for clock skew, is too long to wait:
            // check the claim instead, and that the verifier refuses an exp in the past.
            let claims = try JSONSerialization.jsonObject(with: Data(Base64URL.decode(token.split(separator: ".")[1])!)) as! [String: Any]
            #expect((claims["exp"] as! Int) - (claims["iat"] as! Int) == 1)
            #expect(throws: JWT.VerificationError.expired) {
                try JWT.verify(
                    token, keys: ["k1": Array("test-secret-0123456789abcdef0123456789abcdef".utf8)], audience: "tokenttl",
                    issuer: "otpd", now: (claims["exp"] as! Int) + 31)
            }
        }
    }

    @Test func refreshRotatesAndReuseRevokesTheFamily() async throws {
        let harness = try V1Harness()
        try await harness.run { http in
            let result = try await harness.signIn(http, identifier: Self.email())
            let first = try #require(result["refresh_token"] as? String)
            let rotated = try await http.post("/v1/apps/t/tokens/refresh", ["refresh_token": first])
            #expect(rotated.status == 200)
            let second = try #require((rotated.json["auth_result"] as? [String: Any])?["refresh_token"] as? String)
            #expect(second != first)
            // Presenting the rotated token again: reuse, and the whole family dies.
            let reuse = try await http.post("/v1/apps/t/tokens/refresh", ["refresh_token": first])
            #expect(reuse.status == 401 && reuse.code == "refresh_token_reused")
            let afterReuse = try await http.post("/v1/apps/t/tokens/refresh", ["refresh_token": second])
            #expect(afterReuse.status == 401 && afterReuse.code == "invalid_refresh_token")

            // Revoke: 204, and the token no longer refreshes.
            let other = try await harness.signIn(http, identifier: Self.email())
            let token = try #require(other["refresh_token"] as? String)
            let revoke = try await http.post("/v1/apps/t/tokens/revoke", ["refresh_token": token])
            #expect(revoke.status == 204)
            let dead = try await http.post("/v1/apps/t/tokens/refresh", ["refresh_token": token])
            #expect(dead.status == 401 && dead.code == "invalid_refresh_token")
            // Unknown and malformed tokens: refresh 401, revoke 204 (no oracle).
            #expect(try await http.post("/v1/apps/t/tokens/refresh", ["refresh_token": "nope"]).status == 401)
            #expect(try await http.post("/v1/apps/t/tokens/revoke", ["refresh_token": "nope"]).status == 204)
            // A token of one app is nothing to another.
            let foreign = try await http.post("/v1/apps/other/tokens/refresh", ["refresh_token": second])
            #expect(foreign.status == 401)
        }
    }

    @Test func everyRefusalOfTheSendRoutes() async throws {
        let harness = try V1Harness()
        try await harness.run { http in
            let unknownApp = try await http.post("/v1/apps/ghost/login/otp", ["identifier": Self.email()])
            #expect(unknownApp.status == 404 && unknownApp.code == "app_not_found")
            for bad in ["abc", "a@b@c.com", "@example.com", "a@", "+1234", "12345678", "+1234567890123456", "a b@example.com", "a\r\n@x.com", "+4915x123456"] {
                let reply = try await http.post("/v1/apps/t/register/otp", ["identifier": bad])
                #expect(reply.status == 400 && reply.code == "invalid_identifier", "\(bad)")
            }
            let phone = try await http.post("/v1/apps/t/register/otp", ["identifier": "+4915112345678", "channel": "call"])
            #expect(phone.status == 201)
            #expect(harness.capture.deliveries(to: "+4915112345678").last?.contains("Your code is") == true)
            let french = try await http.post("/v1/apps/t/register/otp", ["identifier": "+4915112345679", "language": "fr-CA"])
            #expect(french.status == 201)
            #expect(harness.capture.deliveries(to: "+4915112345679").last?.contains("est votre code Test App") == true)
            // A language the app has no templates for falls back to its default (en).
            #expect(try await http.post("/v1/apps/t/register/otp", ["identifier": "+4915112345670", "language": "de"]).status == 201)
            #expect(harness.capture.deliveries(to: "+4915112345670").last?.contains("is your Test App code") == true)
            let notEnabled = try await http.post("/v1/apps/other/register/otp", ["identifier": "+4915112345678"])
            #expect(notEnabled.status == 400 && notEnabled.code == "channel_not_supported")
            let mismatch = try await http.post("/v1/apps/t/register/otp", ["identifier": Self.email(), "channel": "sms"])
            #expect(mismatch.status == 400 && mismatch.code == "channel_not_supported")
            let unknownChannel = try await http.post("/v1/apps/t/register/otp", ["identifier": Self.email(), "channel": "pigeon"])
            #expect(unknownChannel.status == 400 && unknownChannel.code == "channel_not_supported")
            let telegram = try await http.post("/v1/apps/t/register/otp", ["identifier": Self.email(), "channel": "telegram"])
            #expect(telegram.status == 400 && telegram.code == "channel_not_supported")
            let closed = try await http.post("/v1/apps/closed/register/otp", ["identifier": Self.email()])
            #expect(closed.status == 403 && closed.code == "registration_closed")
            let unknownUser = try await http.post("/v1/apps/t/login/otp", ["identifier": Self.email()])
            #expect(unknownUser.status == 404 && unknownUser.code == "user_not_found")
            // Bodies: malformed, missing and mistyped fields are 400s naming the field.
            let malformed = try await http.request(.POST, "/v1/apps/t/login/otp", raw: "{\"identifier\": ")
            #expect(malformed.status == 400 && malformed.code == "invalid_json")
            let missing = try await http.post("/v1/apps/t/login/otp", ["email": "x@example.com"])
            #expect(missing.status == 400 && missing.code == "invalid_field")
            #expect((missing.json["error"] as? String)?.contains("identifier") == true)
            let mistyped = try await http.post("/v1/apps/t/otp/activate", ["otp_id": 5, "otp": "123456"])
            #expect(mistyped.status == 400 && (mistyped.json["error"] as? String)?.contains("otp_id") == true)
            let badKey = try await http.post("/v1/apps/t/login/otp", ["identifier": Self.email()], headers: ["Idempotency-Key": String(repeating: "k", count: 300)])
            #expect(badKey.status == 400 && badKey.code == "invalid_idempotency_key")
        }
    }

    @Test func concealedUnknownUsersGetAnOTPThatNeverActivates() async throws {
        let harness = try V1Harness()
        try await harness.run { http in
            let stranger = Self.email()
            let reply = try await http.post("/v1/apps/conceal/login/otp", ["identifier": stranger])
            #expect(reply.status == 200)
            let otpID = try #require(reply.json["otp_id"] as? String)
            #expect(harness.capture.deliveries(to: stranger).isEmpty)
            // Same shape as a real one.
            let known = Self.email()
            _ = try await harness.signIn(http, app: "conceal", identifier: known)
            let real = try #require(try await http.post("/v1/apps/conceal/login/otp", ["identifier": known]).json["otp_id"] as? String)
            #expect(real.count == otpID.count && real.split(separator: ".").map(\.count) == otpID.split(separator: ".").map(\.count))
            // No code activates it; it counts attempts like a real one.
            let guess = try await http.post("/v1/apps/conceal/otp/activate", ["otp_id": otpID, "otp": "000000"])
            #expect(guess.status == 401 && guess.code == "invalid_otp" && guess.json["attempts_remaining"] as? Int == 4)
        }
    }

    @Test func activationErrors() async throws {
        let harness = try V1Harness()
        try await harness.run { http in
            let email = Self.email()
            let send = try await http.post("/v1/apps/t/register/otp", ["identifier": email])
            let otpID = try #require(send.json["otp_id"] as? String)
            let code = try #require(harness.capture.lastCode(to: email))
            let wrong = code == "000000" ? "111111" : "000000"
            for remaining in [4, 3, 2, 1, 0] {
                let reply = try await http.post("/v1/apps/t/otp/activate", ["otp_id": otpID, "otp": wrong])
                #expect(reply.status == 401 && reply.code == "invalid_otp")
                #expect(reply.json["attempts_remaining"] as? Int == remaining)
            }
            let exhausted = try await http.post("/v1/apps/t/otp/activate", ["otp_id": otpID, "otp": code])
            #expect(exhausted.status == 429 && exhausted.code == "too_many_attempts")
            for unknown in ["nope", "aaaaaaaaaaaaaaaaaaaaaaaa.aAAAAAAAAAAAAAAAAAAAAAA", String(otpID.dropLast()) + "x"] {
                let reply = try await http.post("/v1/apps/t/otp/activate", ["otp_id": unknown, "otp": code])
                #expect(reply.status == 404 && reply.code == "otp_not_found", "\(unknown)")
            }
            // Expired: the `short` app's codes live 1 s.
            let shortEmail = Self.email()
            let short = try await http.post("/v1/apps/short/register/otp", ["identifier": shortEmail])
            let shortID = try #require(short.json["otp_id"] as? String)
            let shortCode = try #require(harness.capture.lastCode(to: shortEmail))
            try await Task.sleep(for: .milliseconds(1300))
            let expired = try await http.post("/v1/apps/short/otp/activate", ["otp_id": shortID, "otp": shortCode])
            #expect(expired.status == 404 && expired.code == "otp_not_found")
        }
    }

    @Test func aNewCodeReplacesTheOldOne() async throws {
        let harness = try V1Harness()
        try await harness.run { http in
            let email = Self.email()
            let first = try #require(try await http.post("/v1/apps/t/register/otp", ["identifier": email]).json["otp_id"] as? String)
            let firstCode = try #require(harness.capture.lastCode(to: email))
            let second = try #require(try await http.post("/v1/apps/t/register/otp", ["identifier": email]).json["otp_id"] as? String)
            let secondCode = try #require(harness.capture.lastCode(to: email))
            #expect(first != second)
            let old = try await http.post("/v1/apps/t/otp/activate", ["otp_id": first, "otp": firstCode])
            #expect(old.status == 404)
            if firstCode != secondCode {
                let oldCode = try await http.post("/v1/apps/t/otp/activate", ["otp_id": second, "otp": firstCode])
                #expect(oldCode.status == 401)
            }
            #expect(try await http.post("/v1/apps/t/otp/activate", ["otp_id": second, "otp": secondCode]).status == 200)
        }
    }

    @Test func idempotencyKeyReturnsTheFirstAnswerAndDeliversOnce() async throws {
        let harness = try V1Harness()
        try await harness.run { http in
            let email = Self.email()
            let key = UUID().uuidString
            let first = try await http.post("/v1/apps/t/register/otp", ["identifier": email], headers: ["Idempotency-Key": key])
            let retry = try await http.post("/v1/apps/t/register/otp", ["identifier": email], headers: ["Idempotency-Key": key])
            #expect(first.status == 201 && retry.status == 201)
            #expect(first.json["otp_id"] as? String == retry.json["otp_id"] as? String)
            #expect(harness.capture.deliveries(to: email).count == 1)
            let fresh = try await http.post("/v1/apps/t/register/otp", ["identifier": email], headers: ["Idempotency-Key": UUID().uuidString])
            #expect(fresh.json["otp_id"] as? String != first.json["otp_id"] as? String)
            #expect(harness.capture.deliveries(to: email).count == 2)
        }
    }

    @Test func quotasAnswer429WithRetryAfter() async throws {
        let harness = try V1Harness()
        try await harness.run { http in
            // Cooldown (60 s in the quota app).
            let email = Self.email()
            #expect(try await http.post("/v1/apps/quota/register/otp", ["identifier": email]).status == 201)
            let cooldown = try await http.post("/v1/apps/quota/register/otp", ["identifier": email])
            #expect(cooldown.status == 429 && cooldown.code == "resend_cooldown")
            let retry = try #require(cooldown.header("Retry-After").flatMap(Int.init))
            #expect((55...60).contains(retry))

            // Sends per identifier per hour (5 in the hourly app, no cooldown).
            let busy = Self.email()
            for _ in 0..<5 { #expect(try await http.post("/v1/apps/hourly/register/otp", ["identifier": busy]).status == 201) }
            let over = try await http.post("/v1/apps/hourly/register/otp", ["identifier": busy])
            #expect(over.status == 429 && over.code == "rate_limited")
            #expect((over.header("Retry-After").flatMap(Int.init) ?? 0) > 0)

            // Failed verifications per identifier per hour, across OTPs (4 in the hourly app).
            let guesser = Self.email()
            var otpID = ""
            for attempt in 0..<4 {
                if attempt % 2 == 0 {  // a new code does not reset the count
                    otpID = try #require(try await http.post("/v1/apps/hourly/register/otp", ["identifier": guesser]).json["otp_id"] as? String)
                }
                let code = try #require(harness.capture.lastCode(to: guesser))
                let wrong = try await http.post("/v1/apps/hourly/otp/activate", ["otp_id": otpID, "otp": code == "000000" ? "111111" : "000000"])
                #expect(wrong.status == 401)
            }
            otpID = try #require(try await http.post("/v1/apps/hourly/register/otp", ["identifier": guesser]).json["otp_id"] as? String)
            let locked = try await http.post("/v1/apps/hourly/otp/activate", ["otp_id": otpID, "otp": harness.capture.lastCode(to: guesser)!])
            #expect(locked.status == 429 && locked.code == "too_many_attempts")
            #expect((locked.header("Retry-After").flatMap(Int.init) ?? 0) > 0)

            // Sends per client IP per hour (4 in the quota app), with X-Forwarded-For honoured
            // only from a trusted proxy (10.9.0.0/16 in this config; the test client is 127.0.0.1).
            // The cooldown refusal above spent one too: refusals are metered.
            for _ in 0..<2 { #expect(try await http.post("/v1/apps/quota/register/otp", ["identifier": Self.email()]).status == 201) }
            let ipOver = try await http.post("/v1/apps/quota/register/otp", ["identifier": Self.email()], headers: ["X-Forwarded-For": "203.0.113.9"])
            #expect(ipOver.status == 429 && ipOver.code == "rate_limited")
            #expect((ipOver.json["error"] as? String)?.contains("address") == true)
        }
    }

    @Test func hundredConcurrentActivationsSucceedExactlyOnce() async throws {
        let harness = try V1Harness()
        try await harness.run { http in
            let email = Self.email()
            let otpID = try #require(try await http.post("/v1/apps/t/register/otp", ["identifier": email]).json["otp_id"] as? String)
            let code = try #require(harness.capture.lastCode(to: email))
            let statuses = try await concurrently(100) { _ in
                try await http.post("/v1/apps/t/otp/activate", ["otp_id": otpID, "otp": code]).status
            }
            #expect(statuses.filter { $0 == 200 }.count == 1)
            #expect(statuses.filter { $0 == 404 }.count == 99)
        }
    }

    @Test func fiftyConcurrentWrongGuessesAreCappedAtMaxAttempts() async throws {
        let harness = try V1Harness()
        try await harness.run { http in
            let email = Self.email()
            let otpID = try #require(try await http.post("/v1/apps/t/register/otp", ["identifier": email]).json["otp_id"] as? String)
            let code = try #require(harness.capture.lastCode(to: email))
            let statuses = try await concurrently(50) { i in
                let wrong = String(format: "%06d", (Int(code)! + 1 + i) % 1_000_000)
                return try await http.post("/v1/apps/t/otp/activate", ["otp_id": otpID, "otp": wrong]).status
            }
            #expect(statuses.filter { $0 == 401 }.count == 5)  // max_attempts
            #expect(statuses.filter { $0 == 429 }.count == 45)
            let right = try await http.post("/v1/apps/t/otp/activate", ["otp_id": otpID, "otp": code])
            #expect(right.status == 429 && right.code == "too_many_attempts")
        }
    }

    @Test func thirtyConcurrentSendsNeverExceedTheHourlyQuota() async throws {
        let harness = try V1Harness()
        try await harness.run { http in
            let email = Self.email()
            let statuses = try await concurrently(30) { _ in
                try await http.post("/v1/apps/hourly/register/otp", ["identifier": email]).status
            }
            #expect(statuses.filter { $0 == 201 }.count == 5)
            #expect(statuses.filter { $0 == 429 }.count == 25)
            #expect(harness.capture.deliveries(to: email).count == 5)
        }
    }

    @Test func redisHoldsNoCodeOrRefreshTokenInPlainText() async throws {
        let harness = try V1Harness()
        let secrets = try await harness.run { http in
            var secrets: [String] = []
            for _ in 0..<5 {
                let email = Self.email()
                let result = try await harness.signIn(http, identifier: email)
                secrets.append(harness.capture.lastCode(to: email)!)
                secrets.append(result["refresh_token"] as! String)
                // And a pending code that was never used.
                _ = try await http.post("/v1/apps/t/login/otp", ["identifier": email])
                secrets.append(harness.capture.lastCode(to: email)!)
            }
            return secrets
        }
        // Every key of the test, on every node when the test Redis is a cluster.
        let keys = try await TestRedis.allKeys(matching: "\(harness.prefix):*")
        let redis = try TestRedis.client()
        defer { redis.shutdown() }
        #expect(keys.count >= 15)
        var values: [String] = []
        for key in keys {
            switch try await redis.send("TYPE", RedisArgument(key)).string {
            case "hash": values += (try await redis.send("HGETALL", RedisArgument(key))).array!.compactMap(\.string)
            case "string": values.append(try await redis.send("GET", RedisArgument(key)).string ?? "")
            default: Issue.record("unexpected key type for \(key)")
            }
        }
        for secret in secrets {
            #expect(!keys.contains { $0.contains(secret) }, "a key name holds a secret")
            // A code is short: it must not be any whole value; a token must not appear anywhere.
            if secret.count > 12 {
                #expect(!values.contains { $0.contains(secret) || $0.contains(secret.split(separator: ".").last!) })
            } else {
                #expect(!values.contains(secret))
            }
        }
    }

    @Test func redisDownIsAFast503() async throws {
        let server = try RedisServerProcess()
        let harness = try V1Harness(redisURL: server.url)
        try await harness.run { http in
            _ = try await harness.signIn(http, identifier: Self.email())
            server.kill()
            let start = ContinuousClock.now
            let reply = try await http.post("/v1/apps/t/register/otp", ["identifier": Self.email()])
            #expect(reply.status == 503 && reply.code == "service_unavailable")
            // Not a wait for redis.timeout_ms (5 s here): the dead connection is noticed at once.
            // (Alone this takes milliseconds; the bound leaves room for the parallel suite.)
            #expect(ContinuousClock.now - start < .milliseconds(2500))
        }
    }
}
