import Foundation
import NIOHTTP1
import OTPCore
import OTPTestSupport
import Testing

@testable import OTPServer

/// `/api/auth/otp/send` and `/api/auth/otp/verify` over HTTP, against the real Redis and the
/// v1 test apps (`t` open, `closed` closed, `quota` with a cooldown).
@Suite struct ProjectVerifyTests {
    /// Keys of a JSON object, to check a body has exactly the fields the contract names.
    static func keys(_ object: [String: Any]) -> Set<String> { Set(object.keys) }

    @Test func sendThenVerifyAnswersTheV1TokensOfANewUser() async throws {
        let harness = try V1Harness()
        try await harness.run { http in
            let identifier = "pv-\(UUID().uuidString.prefix(8).lowercased())@example.com"
            let send = try await http.post("/api/auth/otp/send", ["identifier": identifier, "projectId": "t"])
            #expect(send.status == 200, "\(send.body)")
            #expect(send.body == #"{"message":"OTP sent successfully"}"#)
            let code = try #require(harness.capture.lastCode(to: identifier))

            let verify = try await http.post("/api/auth/otp/verify", ["identifier": identifier, "otp": code, "projectId": "t"])
            #expect(verify.status == 200, "\(verify.body)")
            #expect(verify.header("Cache-Control") == "no-store")
            #expect(Self.keys(verify.json) == ["message", "token", "refreshToken", "expiresIn", "user"])
            #expect(verify.json["message"] as? String == "OTP verified successfully")
            #expect(verify.json["expiresIn"] as? Int == 1800)
            let user = try #require(verify.json["user"] as? [String: Any])
            #expect(Self.keys(user) == ["_id", "email", "firstName", "lastName"])
            #expect(user["email"] as? String == identifier)
            let userID = try #require(user["_id"] as? String)
            #expect(userID.count == 24)

            // token is the v1 auth_token: currentuser accepts it, and it names the same user.
            let token = try #require(verify.json["token"] as? String)
            let me = try await http.get("/v1/apps/t/currentuser", headers: ["Authorization": "Bearer \(token)"])
            #expect(me.status == 200, "\(me.body)")
            #expect((me.json["user"] as? [String: Any])?["id"] as? String == userID)
            #expect((me.json["user"] as? [String: Any])?["status"] as? String == "active")

            // refreshToken is the v1 refresh_token: it rotates, and its reuse is detected.
            let refreshToken = try #require(verify.json["refreshToken"] as? String)
            let refreshed = try await http.post("/v1/apps/t/tokens/refresh", ["refresh_token": refreshToken])
            #expect(refreshed.status == 200, "\(refreshed.body)")
            let reused = try await http.post("/v1/apps/t/tokens/refresh", ["refresh_token": refreshToken])
            #expect(reused.status == 401)
            #expect(reused.code == "refresh_token_reused")

            // The code is spent.
            let again = try await http.post("/api/auth/otp/verify", ["identifier": identifier, "otp": code, "projectId": "t"])
            #expect(again.status == 401)
            #expect(again.body == #"{"message":"the code is wrong or expired","code":"invalid_otp"}"#)
        }
    }

    @Test func anExistingUserGetsACodeAsWithLogin() async throws {
        let harness = try V1Harness()
        try await harness.run { http in
            let identifier = "pv-old-\(UUID().uuidString.prefix(8).lowercased())@example.com"
            let first = try await harness.signIn(http, identifier: identifier)
            #expect(first["auth_token"] != nil)
            // v1 register would now be 409; project send is a login for this verified user.
            let send = try await http.post("/api/auth/otp/send", ["identifier": identifier, "projectId": "t"])
            #expect(send.status == 200, "\(send.body)")
            let code = try #require(harness.capture.lastCode(to: identifier))
            let verify = try await http.post("/api/auth/otp/verify", ["identifier": identifier, "otp": code, "projectId": "t"])
            #expect(verify.status == 200, "\(verify.body)")
        }
    }

    @Test func everyErrorHasItsStatusAndTheMessageCodeShape() async throws {
        let harness = try V1Harness()
        try await harness.run { http in
            let identifier = "pv-err-\(UUID().uuidString.prefix(8).lowercased())@example.com"

            // 400: validation, naming the field.
            let missing = try await http.post("/api/auth/otp/send", ["identifier": identifier])
            #expect(missing.status == 400)
            #expect(Self.keys(missing.json) == ["message", "code"])
            #expect((missing.json["message"] as? String)?.contains("projectId") == true)
            let badIdentifier = try await http.post("/api/auth/otp/send", ["identifier": "not an address", "projectId": "t"])
            #expect(badIdentifier.status == 400)
            #expect(badIdentifier.json["code"] as? String == "invalid_identifier")
            let malformed = try await http.request(.POST, "/api/auth/otp/verify", raw: "{")
            #expect(malformed.status == 400)
            #expect(malformed.json["code"] as? String == "invalid_json")

            // 404: no such project.
            let noProject = try await http.post("/api/auth/otp/send", ["identifier": identifier, "projectId": "nope"])
            #expect(noProject.status == 404)
            #expect(noProject.json["code"] as? String == "project_not_found")

            // 403: a closed project does not take new users.
            let closed = try await http.post("/api/auth/otp/send", ["identifier": identifier, "projectId": "closed"])
            #expect(closed.status == 403)
            #expect(closed.json["code"] as? String == "registration_closed")

            // 401: no code was ever sent; then a wrong code.
            let none = try await http.post("/api/auth/otp/verify", ["identifier": identifier, "otp": "123456", "projectId": "t"])
            #expect(none.status == 401)
            #expect(none.json["code"] as? String == "invalid_otp")
            _ = try await http.post("/api/auth/otp/send", ["identifier": identifier, "projectId": "t"])
            let code = try #require(harness.capture.lastCode(to: identifier))
            let wrongCode = code == "000000" ? "111111" : "000000"
            let wrong = try await http.post("/api/auth/otp/verify", ["identifier": identifier, "otp": wrongCode, "projectId": "t"])
            #expect(wrong.status == 401)
            #expect(wrong.json["code"] as? String == "invalid_otp")

            // 429: the code's attempts (5) are spent; the right code is refused from then on.
            for _ in 0..<4 {
                _ = try await http.post("/api/auth/otp/verify", ["identifier": identifier, "otp": wrongCode, "projectId": "t"])
            }
            let dead = try await http.post("/api/auth/otp/verify", ["identifier": identifier, "otp": code, "projectId": "t"])
            #expect(dead.status == 429)
            #expect(dead.json["code"] as? String == "too_many_attempts")
            #expect(dead.header("Retry-After") != nil)

            // 429: the resend cooldown of the `quota` app, with a truthful Retry-After.
            let cooled = "pv-cool-\(UUID().uuidString.prefix(8).lowercased())@example.com"
            let firstSend = try await http.post("/api/auth/otp/send", ["identifier": cooled, "projectId": "quota"])
            #expect(firstSend.status == 200, "\(firstSend.body)")
            let cooldown = try await http.post("/api/auth/otp/send", ["identifier": cooled, "projectId": "quota"])
            #expect(cooldown.status == 429)
            #expect(cooldown.json["code"] as? String == "resend_cooldown")
            #expect(Int(cooldown.header("Retry-After") ?? "") ?? 0 > 0)
            #expect(Self.keys(cooldown.json) == ["message", "code"])
        }
    }

    @Test func aDisabledProjectIs403OnEverySurface() async throws {
        let harness = try V1Harness { _, prefix in
            v1YAML(redisURL: nil, prefix: prefix) + """

                  - id: off
                    channels: [email]
                    enabled: false
                    tokens: {keys: [\(testJWTKey)]}
                """
        }
        try await harness.run { http in
            let identifier = "pv-off-\(UUID().uuidString.prefix(8).lowercased())@example.com"
            let send = try await http.post("/api/auth/otp/send", ["identifier": identifier, "projectId": "off"])
            #expect(send.status == 403)
            #expect(send.body == #"{"message":"the project 'off' is disabled","code":"project_disabled"}"#)
            let verify = try await http.post("/api/auth/otp/verify", ["identifier": identifier, "otp": "123456", "projectId": "off"])
            #expect(verify.status == 403)
            #expect(verify.json["code"] as? String == "project_disabled")
            let v1 = try await http.post("/v1/apps/off/register/otp", ["identifier": identifier])
            #expect(v1.status == 403)
            #expect(v1.code == "app_disabled")
            #expect(harness.capture.deliveries(to: identifier).isEmpty)
        }
    }

    @Test func aVerifiedCodeCannotBeUsedTwiceEvenConcurrently() async throws {
        let harness = try V1Harness()
        try await harness.run { http in
            let identifier = "pv-race-\(UUID().uuidString.prefix(8).lowercased())@example.com"
            _ = try await http.post("/api/auth/otp/send", ["identifier": identifier, "projectId": "t"])
            let code = try #require(harness.capture.lastCode(to: identifier))
            let statuses = try await concurrently(8) { _ in
                try await http.post("/api/auth/otp/verify", ["identifier": identifier, "otp": code, "projectId": "t"]).status
            }
            #expect(statuses.filter { $0 == 200 }.count == 1)
            #expect(statuses.filter { $0 == 401 }.count == 7)
        }
    }
}
