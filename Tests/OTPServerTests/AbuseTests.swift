import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import OTPCore
import OTPTestSupport
import Testing

@testable import OTPServer

/// The tests an attacker would run against the guards of the v1 surface.
@Suite("Abuse: what an attacker tries")
struct AbuseTests {
    /// Every label value on /metrics must come from a bounded set: configured apps, known
    /// routes, known methods, known outcomes. A client choosing any of them grows memory forever.
    @Test func clientChosenValuesNeverBecomeMetricLabels() async throws {
        let app = try buildApplication(configuration: try testConfiguration(), logger: quietLogger)
        try await app.test(.router) { client in
            let body = ByteBuffer(string: #"{"otp_id": "x", "otp": "123456", "identifier": "a@example.com"}"#)
            for i in 0..<40 {
                let ghost = "ghost\(i)"
                for route in ["otp/activate", "login/otp", "register/otp", "tokens/refresh"] {
                    _ = try await client.execute(
                        uri: "/v1/apps/\(ghost)/\(route)", method: .post, headers: [.contentType: "application/json"],
                        body: body) { $0.status }
                }
                _ = try await client.execute(uri: "/healthz", method: HTTPRequest.Method("VERB\(i)")!) { $0.status }
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                let text = String(buffer: response.body)
                #expect(!text.contains("ghost"), "an unknown app id became a label")
                #expect(!text.contains("VERB"), "a client's method name became a label")
                let series = text.split(separator: "\n").filter { !$0.hasPrefix("#") }.count
                #expect(series < 400, "\(series) series after 200 requests with made-up labels")
            }
        }
    }
}
