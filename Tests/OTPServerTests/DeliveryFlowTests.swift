import Foundation
import OTPTestSupport
import RedisClient
import Testing

@testable import OTPServer

/// Email through a webhook gateway (a real local server), SMS through the log gateway.
func deliveryYAML(redisURL: String, prefix: String, webhookURL: String, timeoutMilliseconds: Int, retries: Int) -> String {
    """
    mode: development
    redis: {url: "\(redisURL)", key_prefix: "\(prefix)", timeout_ms: 5000}
    security: {pepper: "test-pepper-0123456789abcdef"}
    delivery:
      email: {provider: webhook, url: "\(webhookURL)", secret: "hook-secret-0123"}
      sms: {provider: log}
      timeout_ms: \(timeoutMilliseconds)
      retries: \(retries)
    apps:
      - id: d
        name: Delivery
        channels: [email, sms]
        otp: {resend_cooldown_seconds: 60}
        limits: {sends_per_identifier_per_hour: 1}
        tokens: {keys: [{kid: k1, secret: "test-secret-0123456789abcdef0123456789abcdef"}]}
    """
}

@Suite("Delivery through HTTP: failures leave nothing usable; only an unreached gateway gives the quota back")
struct DeliveryFlowTests {
    func otpKeys(_ harness: V1Harness) async throws -> [String] {
        let redis = RedisClient(configuration: try RedisConfiguration(url: harness.redisURL))
        defer { redis.shutdown() }
        let reply = try await redis.send("KEYS", RedisArgument("\(harness.prefix):*:otp:*"))
        return reply.array?.compactMap(\.string) ?? []
    }

    @Test(arguments: ["500", "hang", "closed"])
    func aFailingGatewayIsA502AndLeavesNoUsableOTP(_ mode: String) async throws {
        try await FakeGateway.run { gateway in
            let timeout = 600
            let retries = 2
            let url = mode == "closed" ? "http://127.0.0.1:\(freePort())/hook" : gateway.url + "/hook"
            if mode == "500" { gateway.set(.answer(status: 500, body: "{}")) }
            if mode == "hang" { gateway.set(.hang) }
            let harness = try V1Harness {
                deliveryYAML(redisURL: $0, prefix: $1, webhookURL: url, timeoutMilliseconds: timeout, retries: retries)
            }
            try await harness.run { http in
                let email = "fail-\(mode)@example.com"
                let start = ContinuousClock.now
                let reply = try await http.post("/v1/apps/d/register/otp", ["identifier": email])
                let elapsed = ContinuousClock.now - start
                #expect(reply.status == 502 && reply.code == "delivery_failed")
                #expect(elapsed < .milliseconds(timeout * (retries + 1) + 700), "\(elapsed)")
                // No OTP left behind; no user created by a send that failed.
                #expect(try await otpKeys(harness).isEmpty)

                // A gateway never reached billed nothing: the quota (1 an hour) and the cooldown
                // come back, and the next send is tried again. A gateway that answered (500) or
                // took the request and went quiet (hang) may have billed it: the send counts.
                if mode == "closed" {
                    let again = try await http.post("/v1/apps/d/register/otp", ["identifier": email])
                    #expect(again.status == 502, "\(again.body)")
                    return
                }
                gateway.set(.answer(status: 200, body: "{}"))
                let retry = try await http.post("/v1/apps/d/register/otp", ["identifier": email])
                #expect(retry.status == 429 && retry.header("Retry-After") != nil, "\(retry.body)")
                #expect(gateway.requests.count == (mode == "500" ? retries + 1 : 1))
                let metrics = try await http.get("/metrics").body
                #expect(metrics.contains(#"otpd_delivery_messages_total{channel="email",provider="webhook",outcome="failed"} 1"#))
                #expect(metrics.contains("otpd_delivery_duration_seconds_bucket"))
            }
        }
    }

    @Test func otherRequestsAreServedWhileAGatewayHangs() async throws {
        try await FakeGateway.run { gateway in
            gateway.set(.hang)
            let harness = try V1Harness {
                deliveryYAML(redisURL: $0, prefix: $1, webhookURL: gateway.url + "/hook", timeoutMilliseconds: 3000, retries: 0)
            }
            try await harness.run { http in
                // Sign a phone user in through the log gateway first.
                let phone = "+4915112340000"
                let otpID = try #require(try await http.post("/v1/apps/d/register/otp", ["identifier": phone]).json["otp_id"] as? String)
                let code = try #require(harness.capture.lastCode(to: phone))
                // Start sends that hang on the email gateway for 3 s.
                async let hanging = concurrently(8) { i in
                    try await http.post("/v1/apps/d/register/otp", ["identifier": "hang\(i)@example.com"]).status
                }
                try await Task.sleep(for: .milliseconds(300))
                let start = ContinuousClock.now
                #expect(try await http.get("/healthz").status == 200)
                #expect(try await http.post("/v1/apps/d/otp/activate", ["otp_id": otpID, "otp": code]).status == 200)
                let elapsed = ContinuousClock.now - start
                #expect(gateway.requests.count == 8)  // all eight are hanging right now
                #expect(elapsed < .milliseconds(1000), "\(elapsed)")
                #expect(try await hanging.allSatisfy { $0 == 502 })
            }
        }
    }
}
