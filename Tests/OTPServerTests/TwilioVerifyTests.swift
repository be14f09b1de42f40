import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import OTPCore
import OTPTestSupport
import Testing

@testable import OTPServer

/// Twilio Verify v2 over HTTP against a real Redis, with the log gateway captured: the
/// adversarial points (concurrent checks, refusals that change nothing, credentials) and the
/// form decoder. The same surface driven by Twilio's own Python SDK: scripts/interop-twilio.sh.
@Suite("Twilio Verify: the Verify v2 surface and its form decoder")
struct TwilioVerifyTests {
    static let account = "AC0123456789abcdef0123456789abcdef"
    static let token = "verify-auth-token-0123456789"
    static let apiKey = "SK0123456789abcdef0123456789abcdef"
    static let apiSecret = "verify-key-secret-0123456789"
    static let service = "VA0123456789abcdef0123456789abcdef"
    static let coolService = "VAfedcba9876543210fedcba9876543210"

    static func harness() throws -> V1Harness {
        try V1Harness { redisURL, prefix in
            testYAMLHeader(redisURL: redisURL, prefix: prefix, trustedProxies: "10.9.0.0/16") + """
                apps:
                  - id: tv
                    name: Test App
                    channels: [email, sms, call]
                    otp: {length: 6, ttl_seconds: 600, max_attempts: 3, resend_cooldown_seconds: 0}
                    limits: {sends_per_identifier_per_hour: 1000, sends_per_ip_per_hour: 100000,
                             failed_attempts_per_identifier_per_hour: 1000, failed_attempts_per_ip_per_hour: 100000}
                    tokens: {keys: [\(testJWTKey)]}
                  - id: cool
                    channels: [email, sms]
                    otp: {resend_cooldown_seconds: 60}
                    limits: {sends_per_ip_per_hour: 1}
                    tokens: {keys: [\(testJWTKey)]}
                surfaces:
                  twilio_verify:
                    account_sid: \(account)
                    auth_token: "\(token)"
                    api_keys: {\(apiKey): "\(apiSecret)"}
                    services: {\(service): tv, \(coolService): cool}
                """
        }
    }

    static func basic(_ user: String = account, _ password: String = token) -> String {
        "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
    }

    /// A form POST (or a GET) with Basic credentials.
    static func fetch(_ http: HTTP, _ path: String) async throws -> HTTP.Reply {
        try await form(http, path, method: .GET)
    }

    static func form(
        _ http: HTTP, _ path: String, _ fields: [(String, String)] = [], method: HTTPMethod = .POST,
        raw: String? = nil, authorization: String? = basic(), contentType: String = "application/x-www-form-urlencoded"
    ) async throws -> HTTP.Reply {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(http.port)\(path)")
        request.method = method
        if let authorization { request.headers.add(name: "Authorization", value: authorization) }
        if method == .POST {
            request.headers.add(name: "Content-Type", value: contentType)
            var allowed = CharacterSet.alphanumerics
            allowed.insert(charactersIn: "-._~")
            let body = raw ?? fields.map {
                "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed)!)"
            }.joined(separator: "&")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await HTTP.client.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        return HTTP.Reply(
            status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) }, body: String(buffer: body))
    }

    static func path(_ rest: String, service: String = service) -> String { "/v2/Services/\(service)/\(rest)" }

    /// The Twilio error shape, and never RFC 9457's fields.
    static func expectTwilioError(_ reply: HTTP.Reply, status: Int, code: Int, mentions: String? = nil) {
        #expect(reply.status == status, "\(reply.body)")
        #expect(reply.json["code"] as? Int == code, "\(reply.body)")
        #expect(reply.json["status"] as? Int == status)
        #expect(reply.json["more_info"] as? String == "https://www.twilio.com/docs/errors/\(code)")
        #expect(reply.json["type"] == nil && reply.json["title"] == nil)
        if let mentions { #expect((reply.json["message"] as? String ?? "").contains(mentions), "\(reply.body)") }
        if status == 429 { #expect(reply.header("Retry-After") != nil) }
    }

    @Test func twentyConcurrentRightChecksApproveExactlyOnce() async throws {
        let harness = try Self.harness()
        try await harness.run { http in
            let to = "+15005550101"
            let created = try await Self.form(http, Self.path("Verifications"), [("To", to), ("Channel", "sms")])
            #expect(created.status == 201, "\(created.body)")
            let code = try #require(harness.capture.lastCode(to: to))
            let replies = try await withThrowingTaskGroup(of: HTTP.Reply.self) { group in
                for _ in 0..<20 {
                    group.addTask { try await Self.form(http, Self.path("VerificationCheck"), [("To", to), ("Code", code)]) }
                }
                return try await group.reduce(into: [HTTP.Reply]()) { $0.append($1) }
            }
            let approved = replies.filter { $0.status == 200 && $0.json["status"] as? String == "approved" }
            #expect(approved.count == 1, "\(replies.map(\.body))")
            #expect(approved.first?.json["valid"] as? Bool == true)
            for reply in replies where reply.status != 200 { Self.expectTwilioError(reply, status: 404, code: 20404) }
        }
    }

    @Test func aResendKeepsTheSidAndTheCodeAndAWrongCodeIsPending() async throws {
        let harness = try Self.harness()
        try await harness.run { http in
            let to = "+15005550102"
            let first = try await Self.form(http, Self.path("Verifications"), [("To", to), ("Channel", "sms")])
            let code = try #require(harness.capture.lastCode(to: to))
            let second = try await Self.form(http, Self.path("Verifications"), [("To", to), ("Channel", "call")])
            #expect(second.status == 201)
            #expect(second.json["sid"] as? String == first.json["sid"] as? String)
            #expect((second.json["send_code_attempts"] as? [Any])?.count == 2)
            #expect(harness.capture.lastCode(to: to) == code)
            let sid = try #require(first.json["sid"] as? String)
            // A sid and another To name no verification.
            let mismatched = try await Self.form(
                http, Self.path("VerificationCheck"), [("VerificationSid", sid), ("To", "+15005550199"), ("Code", code)])
            Self.expectTwilioError(mismatched, status: 404, code: 20404)
            let wrong = try await Self.form(http, Self.path("VerificationCheck"), [("VerificationSid", sid), ("Code", "000000")])
            #expect(wrong.status == 200 && wrong.json["status"] as? String == "pending" && wrong.json["valid"] as? Bool == false)
            // Checked by sid, right: approved once, then gone.
            let right = try await Self.form(http, Self.path("VerificationCheck"), [("VerificationSid", sid), ("Code", code)])
            #expect(right.json["status"] as? String == "approved", "\(right.body)")
            Self.expectTwilioError(try await Self.fetch(http, Self.path("Verifications/\(sid)")), status: 404, code: 20404)
        }
    }

    @Test func maxCheckAttemptsAndMaxSends() async throws {
        let harness = try Self.harness()
        try await harness.run { http in
            let to = "dead@example.com"
            _ = try await Self.form(http, Self.path("Verifications"), [("To", to), ("Channel", "email")])
            for _ in 0..<3 {
                let wrong = try await Self.form(http, Self.path("VerificationCheck"), [("To", to), ("Code", "000000")])
                #expect(wrong.status == 200, "\(wrong.body)")
            }
            let dead = try await Self.form(http, Self.path("VerificationCheck"), [("To", to), ("Code", "000000")])
            Self.expectTwilioError(dead, status: 429, code: 60202)
            // Five sends, then 60203.
            let other = "many@example.com"
            for _ in 0..<5 { #expect(try await Self.form(http, Self.path("Verifications"), [("To", other), ("Channel", "email")]).status == 201) }
            let sixth = try await Self.form(http, Self.path("Verifications"), [("To", other), ("Channel", "email")])
            Self.expectTwilioError(sixth, status: 429, code: 60203)
            #expect(harness.capture.deliveries(to: other).count == 5)
        }
    }

    @Test func aRefusedCreateChangesNothing() async throws {
        let harness = try Self.harness()
        try await harness.run { http in
            let to = "+15005550103"
            let created = try await Self.form(
                http, Self.path("Verifications", service: Self.coolService), [("To", to), ("Channel", "sms"), ("DeviceIp", "192.0.2.1")])
            #expect(created.status == 201, "\(created.body)")
            let sid = try #require(created.json["sid"] as? String)
            let before = try await Self.fetch(http, Self.path("Verifications/\(sid)", service: Self.coolService))
            // The cooldown refuses a re-send: nothing is appended, nothing delivered.
            let cooldown = try await Self.form(http, Self.path("Verifications", service: Self.coolService), [("To", to), ("Channel", "sms")])
            Self.expectTwilioError(cooldown, status: 429, code: 20429)
            // The DeviceIp's quota (1 send an hour) refuses another To: no verification is made,
            // and that To's cooldown has not started.
            let other = "+15005550104"
            let perIP = try await Self.form(
                http, Self.path("Verifications", service: Self.coolService), [("To", other), ("Channel", "sms"), ("DeviceIp", "192.0.2.1")])
            Self.expectTwilioError(perIP, status: 429, code: 20429)
            let unknownChannel = try await Self.form(http, Self.path("Verifications", service: Self.coolService), [("To", other), ("Channel", "pigeon")])
            Self.expectTwilioError(unknownChannel, status: 400, code: 60200, mentions: "`Channel`")
            let badTo = try await Self.form(http, Self.path("Verifications", service: Self.coolService), [("To", "12"), ("Channel", "sms")])
            Self.expectTwilioError(badTo, status: 400, code: 60200, mentions: "`To`")
            let after = try await Self.fetch(http, Self.path("Verifications/\(sid)", service: Self.coolService))
            #expect(after.body == before.body)
            #expect(harness.capture.deliveries(to: to).count == 1)
            #expect(harness.capture.deliveries(to: other).isEmpty)
            let otherIP = try await Self.form(
                http, Self.path("Verifications", service: Self.coolService), [("To", other), ("Channel", "sms"), ("DeviceIp", "192.0.2.2")])
            #expect(otherIP.status == 201, "\(otherIP.body)")
        }
    }

    @Test func credentialsServicesAndCancel() async throws {
        let harness = try Self.harness()
        try await harness.run { http in
            let fields = [("To", "+15005550105"), ("Channel", "sms")]
            for authorization in [
                nil, Self.basic(Self.account, "wrong-token-0123456789"), Self.basic(Self.apiKey, Self.token), "Bearer x", "Basic !!!",
            ] {
                let refused = try await Self.form(http, Self.path("Verifications"), fields, authorization: authorization)
                Self.expectTwilioError(refused, status: 401, code: 20003)
                #expect(refused.header("WWW-Authenticate") == #"Basic realm="Twilio API""#)
            }
            #expect(harness.capture.deliveries(to: "+15005550105").isEmpty)
            let unknown = try await Self.form(http, Self.path("Verifications", service: "VA00000000000000000000000000000009"), fields)
            Self.expectTwilioError(unknown, status: 404, code: 20404)
            let created = try await Self.form(http, Self.path("Verifications"), fields, authorization: Self.basic(Self.apiKey, Self.apiSecret))
            #expect(created.status == 201, "\(created.body)")
            let sid = try #require(created.json["sid"] as? String)
            let fetched = try await Self.fetch(http, Self.path("Verifications/\(sid)"))
            #expect(fetched.json["status"] as? String == "pending")
            let canceled = try await Self.form(http, Self.path("Verifications/\(sid)"), [("Status", "canceled")])
            #expect(canceled.json["status"] as? String == "canceled", "\(canceled.body)")
            Self.expectTwilioError(try await Self.form(http, Self.path("Verifications/\(sid)"), [("Status", "canceled")]), status: 404, code: 20404)
            Self.expectTwilioError(try await Self.fetch(http, Self.path("Verifications/VEnot-a-sid")), status: 404, code: 20404)
            let json = try await Self.form(http, Self.path("Verifications"), raw: "{}", contentType: "application/json")
            Self.expectTwilioError(json, status: 415, code: 60200)
            let malformed = try await Self.form(http, Self.path("Verifications"), raw: "To=%2&Channel=sms")
            Self.expectTwilioError(malformed, status: 400, code: 60200, mentions: "'%'")
            let huge = try await Self.form(http, Self.path("Verifications"), raw: "To=" + String(repeating: "1", count: 20_000))
            #expect(huge.status == 413, "\(huge.body)")
        }
    }

    @Test func aFailedDeliveryLeavesNoVerificationAndNoCooldown() async throws {
        // An SMS gateway nobody listens on: never reached, so nothing is spent.
        let harness = try V1Harness { redisURL, prefix in
            """
            mode: development
            redis: \(TestRedis.configurationYAML(url: redisURL, keyPrefix: prefix, timeoutMilliseconds: 5000))
            security: {pepper: "test-pepper-0123456789abcdef"}
            delivery:
              sms: {provider: twilio, base_url: "http://127.0.0.1:9", account_sid: "AC0123", auth_token: "twilio-token", from: "+15005550006"}
              email: {provider: log}
              timeout_ms: 1000
              retries: 0
            apps:
              - id: cool
                channels: [email, sms]
                otp: {resend_cooldown_seconds: 60}
                tokens: {keys: [\(testJWTKey)]}
            surfaces:
              twilio_verify: {account_sid: \(Self.account), auth_token: "\(Self.token)", services: {\(Self.service): cool}}
            """
        }
        try await harness.run { http in
            let to = "+15005550106"
            for _ in 0..<2 {
                let failed = try await Self.form(http, Self.path("Verifications"), [("To", to), ("Channel", "sms")])
                Self.expectTwilioError(failed, status: 502, code: 20500)
            }
            // Nothing pending: a check finds nothing; and the cooldown did not start (the
            // second create above reached the gateway again instead of a 429).
            let check = try await Self.form(http, Self.path("VerificationCheck"), [("To", to), ("Code", "123456")])
            Self.expectTwilioError(check, status: 404, code: 20404)
        }
    }

    @Test func configurationChecksSIDsSecretsAndApps() throws {
        func refusal(_ block: String) -> String? {
            let yaml = testYAMLHeader(redisURL: TestRedis.url, prefix: "cfg", trustedProxies: "10.9.0.0/16") + """
                apps:
                  - id: tv
                    channels: [sms]
                    tokens: {keys: [\(testJWTKey)]}
                surfaces:
                  twilio_verify: \(block)
                """
            do {
                _ = try ConfigLoader.parse(yaml, environment: [:])
                return nil
            } catch {
                return error.key
            }
        }
        let good = "{account_sid: \(Self.account), auth_token: \"\(Self.token)\", services: {\(Self.service): tv}}"
        #expect(refusal(good) == nil)
        #expect(refusal("{account_sid: AC01, auth_token: \"\(Self.token)\", services: {\(Self.service): tv}}") == "surfaces.twilio_verify.account_sid")
        #expect(refusal("{account_sid: \(Self.account), auth_token: short, services: {\(Self.service): tv}}") == "surfaces.twilio_verify.auth_token")
        #expect(refusal("{account_sid: \(Self.account), auth_token: \"\(Self.token)\", services: {\(Self.service): nope}}") == "surfaces.twilio_verify.services.\(Self.service)")
        #expect(refusal("{account_sid: \(Self.account), auth_token: \"\(Self.token)\", services: {VA12: tv}}") == "surfaces.twilio_verify.services")
        #expect(refusal("{account_sid: \(Self.account), auth_token: \"\(Self.token)\", services: {}}") == "surfaces.twilio_verify.services")
        #expect(refusal("{account_sid: \(Self.account), auth_token: \"\(Self.token)\", api_keys: {SK1: \"\(Self.apiSecret)\"}, services: {\(Self.service): tv}}") == "surfaces.twilio_verify.api_keys")
    }

    // MARK: the form decoder

    @Test func formDecoderEdgeCases() throws {
        let form = try FormBody(Array("To=%2B1%20500+555&Channel=sms&&x&To=again&e=%C3%A9&empty=".utf8))
        #expect(form.values("To") == ["+1 500 555", "again"])
        #expect(try form.value("Channel") == "sms")
        #expect(try form.value("x") == "")
        #expect(try form.value("e") == "é")
        #expect(try form.value("empty") == "")
        #expect(try form.value("missing") == nil)
        #expect(throws: FormBody.Malformed.repeated("To")) { try form.value("To") }
        #expect(try FormBody(Array("a=1=2".utf8)).value("a") == "1=2")
        #expect(try FormBody(Array("".utf8)).pairs.isEmpty)
        #expect(try FormBody(Array("%41%62=%7e".utf8)).value("Ab") == "~")
        #expect(throws: FormBody.Malformed.badEscape(offset: 2)) { try FormBody(Array("a=%".utf8)) }
        #expect(throws: FormBody.Malformed.badEscape(offset: 2)) { try FormBody(Array("a=%4".utf8)) }
        #expect(throws: FormBody.Malformed.badEscape(offset: 6)) { try FormBody(Array("b=1&a=%g0".utf8)) }
        #expect(throws: FormBody.Malformed.notUTF8(name: "a")) { try FormBody(Array("a=%FF".utf8)) }
        #expect(throws: FormBody.Malformed.notUTF8(name: nil)) { try FormBody(Array("%C3=1".utf8)) }
        #expect(throws: FormBody.Malformed.tooLarge) { try FormBody([UInt8](repeating: 0x61, count: FormBody.maxBytes + 1)) }
    }
}
