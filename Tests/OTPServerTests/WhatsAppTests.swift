import Foundation
import NIOHTTP1
import OTPCrypto
import OTPTestSupport
import Testing

@testable import OTPServer

/// The whatsapp channel against a real local fake of the WhatsApp Cloud API (and of Twilio for
/// the SMS fallback): one HTTP server on 127.0.0.1 that checks the Bearer token and records
/// every request.
@Suite("WhatsApp: the Cloud API, the SMS fallback and the status webhook")
struct WhatsAppTests {
    static let accessToken = "wa-access-token-0123456789"
    static let appSecret = "wa-app-secret-0123456789abcdef"
    static let verifyToken = "wa-verify-token-0123456789"
    static let basic = ["Authorization": "Basic " + Data("otp:channel-password-123".utf8).base64EncodedString()]
    /// Numbers the fake says are not on WhatsApp (error 131026).
    static let notOnWhatsApp = "1999"

    static func yaml(redisURL: String, prefix: String, gateway: String) -> String {
        """
        mode: development
        redis: \(TestRedis.configurationYAML(url: redisURL, keyPrefix: prefix, timeoutMilliseconds: 5000))
        security: {pepper: "test-pepper-0123456789abcdef"}
        delivery:
          sms: {provider: twilio, base_url: "\(gateway)", account_sid: "AC0123", auth_token: "twilio-token", from: "+15005550006"}
          whatsapp:
            provider: whatsapp_cloud
            base_url: "\(gateway)/graph"
            api_version: v21.0
            phone_number_id: "1234567890"
            access_token: "\(accessToken)"
            template: otp_code
            languages: {en: en_US, es: es_MX}
            app_secret: "\(appSecret)"
            verify_token: "\(verifyToken)"
          timeout_ms: 2000
          retries: 0
        apps:
          - id: wa
            channels: [sms, whatsapp]
            fallback: {whatsapp: sms}
            otp: {length: 6, resend_cooldown_seconds: 0}
            limits: {sends_per_ip_per_hour: 10000}
            tokens: {keys: [\(testJWTKey)]}
          - id: nofallback
            channels: [whatsapp]
            otp: {resend_cooldown_seconds: 0}
            tokens: {keys: [\(testJWTKey)]}
          - id: uk
            channels: [whatsapp]
            limits: {allowed_country_codes: ["44"]}
            tokens: {keys: [\(testJWTKey)]}
        surfaces:
          channel_api: {basic_auth: {username: otp, password: "channel-password-123"}, max_attempts: 3}
        """
    }

    /// As Meta answers: 401 without the token, 400 error 131026 for a number not on WhatsApp,
    /// else 200 with the message's id. Twilio's Messages.json: 201.
    static func answer(_ request: FakeGateway.Recorded) -> (status: Int, body: String) {
        guard request.path.hasSuffix("/messages") else { return (201, #"{"sid":"SM1"}"#) }
        guard request.header("Authorization") == "Bearer \(accessToken)" else {
            return (401, #"{"error":{"message":"Invalid OAuth access token","type":"OAuthException","code":190,"fbtrace_id":"A"}}"#)
        }
        if (json(request)["to"] as? String ?? "").hasPrefix(notOnWhatsApp) {
            return (400, #"{"error":{"message":"Recipient not on WhatsApp","type":"OAuthException","code":131026,"fbtrace_id":"B"}}"#)
        }
        return (200, #"{"messaging_product":"whatsapp","contacts":[{"input":"x","wa_id":"x"}],"messages":[{"id":"wamid.HBgL"}]}"#)
    }

    static func json(_ request: FakeGateway.Recorded) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(request.body))) as? [String: Any] ?? [:]
    }

    /// The template's language and the code in its body parameter and its button, which must agree.
    static func template(_ request: FakeGateway.Recorded) throws -> (language: String, code: String) {
        let template = try #require(json(request)["template"] as? [String: Any])
        #expect(template["name"] as? String == "otp_code")
        let language = try #require((template["language"] as? [String: Any])?["code"] as? String)
        let components = try #require(template["components"] as? [[String: Any]])
        let texts = components.compactMap { ($0["parameters"] as? [[String: Any]])?.first?["text"] as? String }
        #expect(components.map { $0["type"] as? String } == ["body", "button"])
        #expect(components.last?["sub_type"] as? String == "url")
        #expect(texts.count == 2 && texts[0] == texts[1], "the code in the body and in the copy-code button")
        return (language, try #require(texts.first))
    }

    static func phone(_ prefix: String = "4915112") -> String { "+\(prefix)\(Int.random(in: 100_000...999_999))" }

    func run(_ body: @escaping @Sendable (HTTP, FakeGateway) async throws -> Void) async throws {
        try await FakeGateway.run { gateway in
            gateway.set(.respond(Self.answer))
            let harness = try V1Harness { url, prefix in Self.yaml(redisURL: url, prefix: prefix, gateway: gateway.url) }
            try await harness.run { http in try await body(http, gateway) }
        }
    }

    // MARK: sending

    @Test func registerAndLogInOverWhatsAppThenActivateWithTheCodeTheAPIReceived() async throws {
        try await run { http, gateway in
            let phone = Self.phone()
            let register = try await http.post(
                "/v1/apps/wa/register/otp", ["identifier": phone, "channel": "whatsapp", "language": "es"])
            #expect(register.status == 201, "\(register.body)")
            #expect(register.json["channel"] as? String == "whatsapp")
            let sent = try #require(gateway.requests.last)
            #expect(sent.path == "/graph/v21.0/1234567890/messages")
            #expect(Self.json(sent)["to"] as? String == String(phone.dropFirst()))
            #expect(Self.json(sent)["messaging_product"] as? String == "whatsapp")
            let (language, code) = try Self.template(sent)
            #expect(language == "es_MX", "the app's language picks the template's")
            let activate = try await http.post(
                "/v1/apps/wa/otp/activate", ["otp_id": try #require(register.json["otp_id"] as? String), "otp": code])
            #expect(activate.status == 200, "\(activate.body)")

            let login = try await http.post("/v1/apps/wa/login/otp", ["identifier": phone, "channel": "whatsapp"])
            #expect(login.status == 200, "\(login.body)")
            let again = try Self.template(try #require(gateway.requests.last))
            #expect(again.language == "en_US", "no language: the app's default, English")
            let second = try await http.post(
                "/v1/apps/wa/otp/activate", ["otp_id": try #require(login.json["otp_id"] as? String), "otp": again.code])
            #expect(second.status == 200, "\(second.body)")
            #expect(!gateway.requests.contains { $0.path.hasSuffix("Messages.json") }, "no SMS went out")
        }
    }

    @Test func aNumberNotOnWhatsAppGetsTheSameCodeBySMS() async throws {
        try await run { http, gateway in
            let phone = Self.phone(Self.notOnWhatsApp)
            let send = try await http.post("/v1/apps/wa/register/otp", ["identifier": phone, "channel": "whatsapp"])
            #expect(send.status == 201, "\(send.body)")
            #expect(send.json["channel"] as? String == "sms", "the response says which channel carried it")
            let refused = try #require(gateway.requests.first { $0.path.hasSuffix("/messages") })
            let sms = try #require(gateway.requests.first { $0.path.hasSuffix("Messages.json") })
            let code = try Self.template(refused).code
            #expect(sms.form["To"] == phone && sms.form["Body"]?.contains(code) == true, "the same code, by SMS")
            let activate = try await http.post("/v1/apps/wa/otp/activate", ["otp_id": try #require(send.json["otp_id"] as? String), "otp": code])
            #expect(activate.status == 200, "\(activate.body)")
        }
    }

    @Test func withoutAFallbackARefusedNumberIs502AndLeavesNoUsableCode() async throws {
        try await run { http, gateway in
            let phone = Self.phone(Self.notOnWhatsApp)
            let send = try await http.post("/v1/apps/nofallback/register/otp", ["identifier": phone, "channel": "whatsapp"])
            #expect(send.status == 502 && send.code == "delivery_failed", "\(send.body)")
            #expect(!gateway.requests.contains { $0.path.hasSuffix("Messages.json") })
            // The user the send created is gone with its code: the project-verify path finds no live code.
            let code = try Self.template(try #require(gateway.requests.last)).code
            let verify = try await http.post("/verify", ["projectId": "nofallback", "identifier": phone, "otp": code])
            #expect(verify.status == 401 || verify.status == 404, "\(verify.body)")
        }
    }

    @Test func aPaidChannelKeepsToTheAppsCountries() async throws {
        try await run { http, gateway in
            let us = try await http.post("/v1/apps/uk/register/otp", ["identifier": Self.phone("1415555"), "channel": "whatsapp"])
            #expect(us.status == 400 && us.code == "country_not_allowed", "\(us.body)")
            #expect(gateway.requests.isEmpty, "nothing sent")
            let uk = try await http.post("/v1/apps/uk/register/otp", ["identifier": Self.phone("447700"), "channel": "whatsapp"])
            #expect(uk.status == 201, "\(uk.body)")
        }
    }

    // MARK: the webhook

    @Test func theSubscriptionCheckAnswersTheChallengeOnlyForTheRightToken() async throws {
        try await run { http, _ in
            let right = try await http.get(
                "/whatsapp/webhook?hub.mode=subscribe&hub.verify_token=\(Self.verifyToken)&hub.challenge=1158201444")
            #expect(right.status == 200 && right.body == "1158201444", "\(right.body)")
            let wrong = try await http.get("/whatsapp/webhook?hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1")
            #expect(wrong.status == 403)
            let noMode = try await http.get("/whatsapp/webhook?hub.verify_token=\(Self.verifyToken)&hub.challenge=1")
            #expect(noMode.status == 403)
        }
    }

    @Test func statusesCountOnlyWithTheRightSignature() async throws {
        try await run { http, _ in
            let body = #"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"statuses":[{"id":"wamid.HBgL","status":"delivered","timestamp":"1700000000","recipient_id":"4915112"},{"id":"wamid.X","status":"deleted"}]}}]}]}"#
            let signature = "sha256=" + Digest.hex(Digest.hmacSHA256(key: Array(Self.appSecret.utf8), message: Array(body.utf8)))
            let missing = try await http.request(.POST, "/whatsapp/webhook", raw: body)
            #expect(missing.status == 401)
            let forged = "sha256=" + Digest.hex(Digest.hmacSHA256(key: Array("another-secret".utf8), message: Array(body.utf8)))
            #expect(try await http.request(.POST, "/whatsapp/webhook", raw: body, headers: ["X-Hub-Signature-256": forged]).status == 401)
            let tampered = body.replacingOccurrences(of: "delivered", with: "read")
            #expect(try await http.request(.POST, "/whatsapp/webhook", raw: tampered, headers: ["X-Hub-Signature-256": signature]).status == 401)
            var metrics = try await http.get("/metrics").body
            #expect(!metrics.contains("otpd_whatsapp_statuses_total"), "a refused body counts nothing")
            let good = try await http.request(.POST, "/whatsapp/webhook", raw: body, headers: ["X-Hub-Signature-256": signature])
            #expect(good.status == 200, "\(good.body)")
            metrics = try await http.get("/metrics").body
            #expect(metrics.contains(#"otpd_whatsapp_statuses_total{status="delivered"} 1"#), "\(metrics)")
            #expect(metrics.contains(#"otpd_whatsapp_statuses_total{status="other"} 1"#), "an unknown status is other")
        }
    }

    // MARK: the channel API

    @Test func theChannelAPIsWhatsAppCodeChecksOnce() async throws {
        try await run { http, gateway in
            let phone = String(Self.phone().dropFirst())
            let create = try await http.post(
                "/whatsapp", ["phone": phone, "password": "482913", "lifetime": 120, "message": "unused by WhatsApp"],
                headers: Self.basic)
            #expect(create.status == 201, "\(create.body)")
            #expect(try Self.template(try #require(gateway.requests.last)).code == "482913")
            let check = "/whatsapp/check?phone=\(phone)&password=482913"
            #expect(try await http.get(check, headers: Self.basic).status == 200)
            #expect(try await http.get(check, headers: Self.basic).status == 404, "a code answers once")
        }
    }
}
