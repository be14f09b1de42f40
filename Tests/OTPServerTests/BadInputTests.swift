import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import OTPCore
import OTPTestSupport
import Testing

@testable import OTPServer

/// Every v1 route against what a fuzzer or an attacker sends: each answer is a clear 4xx
/// naming the problem — never a 500, never a hang, never a crash.
@Suite("Bad input: every route, every field")
struct BadInputTests {
    static let routes: [(path: String, fields: [String], method: HTTPRequest.Method)] = [
        ("/v1/apps/demo/register/otp", ["identifier", "channel", "language", "first_name", "last_name"], .post),
        ("/v1/apps/demo/login/otp", ["identifier", "channel", "language"], .post),
        ("/v1/apps/demo/otp/activate", ["otp_id", "otp"], .post),
        ("/v1/apps/demo/tokens/refresh", ["refresh_token"], .post),
        ("/v1/apps/demo/tokens/revoke", ["refresh_token"], .post),
        // The channel API and Telegram (sent with the shipped config's Basic credentials).
        ("/sms", ["phone", "password", "lifetime", "message"], .post),
        ("/email", ["email", "password", "lifetime", "subject", "text"], .post),
        ("/telegram", ["chat_id", "password", "lifetime", "message"], .post),
        ("/sms/check", ["phone", "password"], .get),
        ("/telegram/check", ["chat_id", "password"], .get),
        ("/target", ["password"], .get),
        ("/telegram/webhook", ["update_id", "message"], .post),
        ("/v1/apps/demo/login/password", ["identifier", "password"], .post),
    ]

    /// `surfaces.channel_api.basic_auth` of config/otpd.yaml.
    static let basic = "Basic " + Data("otp:insecure-dev-basic-password".utf8).base64EncodedString()

    static let valid: [String: String] = [
        "identifier": "fuzz@example.com", "channel": "email", "language": "en", "first_name": "Ada", "last_name": "L",
        "otp_id": "0123456789abcdef01234567.aAAAAAAAAAAAAAAAAAAAAAA", "otp": "123456",
        "refresh_token": "0123456789abcdef01234567.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "phone": "+4915112345678", "email": "fuzz@example.com", "password": "a-password", "lifetime": "60", "message": "m",
        "subject": "s", "text": "t", "chat_id": "42", "update_id": "1", "action": "validate", "new_password": "a-new-password",
    ]

    /// Raw bodies that are not what the route expects.
    static func badBodies(fields: [String]) -> [(String, [UInt8])] {
        var bodies: [(String, [UInt8])] = [
            ("empty", []),
            ("truncated", Array(#"{"identifier": "a@b.c"#.utf8)),
            ("not an object", Array("[1, 2, 3]".utf8)),
            ("a string", Array(#""hello""#.utf8)),
            ("null", Array("null".utf8)),
            // Under max_body_bytes (64 KiB), so they reach the JSON parser.
            ("deeply nested arrays", Array((String(repeating: "[", count: 30_000) + String(repeating: "]", count: 30_000)).utf8)),
            ("deeply nested objects", Array((String(repeating: #"{"a":"#, count: 10_000) + "1" + String(repeating: "}", count: 10_000)).utf8)),
            ("invalid UTF-8", [0x7b, 0x22, 0x69, 0x64, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xc3, 0x28, 0x22, 0x7d]),
            ("1 MB string", Array(("{\"identifier\": \"" + String(repeating: "a", count: 1 << 20) + "\"}").utf8)),
            ("huge number", Array(#"{"otp": 1e999999, "otp_id": 123456789012345678901234567890}"#.utf8)),
        ]
        for field in fields {
            var wrongType = valid.filter { fields.contains($0.key) } as [String: Any]
            wrongType[field] = ["nested": [1, 2]]
            bodies.append(("\(field) as an object", try! JSONSerialization.data(withJSONObject: wrongType).map { $0 }))
            for (name, poison) in [("NUL", "a\u{0}b"), ("CR/LF", "a\r\nX-Injected: 1"), ("10 kB", String(repeating: "z", count: 10_000))] {
                var body = valid.filter { fields.contains($0.key) } as [String: Any]
                body[field] = poison
                bodies.append(("\(field) with \(name)", try! JSONSerialization.data(withJSONObject: body).map { $0 }))
            }
        }
        return bodies
    }

    @Test func everyRouteAnswersBadBodiesWithA4xx() async throws {
        let app = try buildApplication(configuration: try testConfiguration(), logger: quietLogger)
        try await app.test(.router) { client in
            var tried = 0
            for route in Self.routes {
                for (name, body) in Self.badBodies(fields: route.fields) {
                    let status = try await client.execute(
                        uri: route.path, method: route.method,
                        headers: [.contentType: "application/json", .authorization: Self.basic],
                        body: ByteBuffer(bytes: body)
                    ) { response -> Int in
                        let text = String(buffer: response.body)
                        if response.status.code >= 400 && response.status.code < 500 {
                            #expect(text.contains("\"code\"") && text.contains("\"error\""), "\(route.path) \(name): \(text.prefix(200))")
                        }
                        return Int(response.status.code)
                    }
                    tried += 1
                    // A poisoned but well-formed value may be a refusal of the identifier (4xx) or,
                    // for a field that is free text, an accepted send; never a 5xx.
                    #expect(status < 500, "\(route.path) \(name) answered \(status)")
                    if name.hasPrefix("identifier") || ["empty", "truncated", "not an object", "a string", "null", "invalid UTF-8", "deeply nested arrays", "deeply nested objects", "1 MB string"].contains(name) {
                        #expect((400..<500).contains(status), "\(route.path) \(name) answered \(status)")
                    }
                }
            }
            #expect(tried > 90)
        }
    }

    /// `POST /auth/otp` answers the same bodies in its own shape, `{"success": false, "message"}`
    /// (a body over `max_body_bytes` is refused before any surface reads it: 413 in the common shape).
    @Test func passwordResetAnswersBadBodiesInItsShape() async throws {
        let app = try buildApplication(configuration: try testConfiguration(), logger: quietLogger)
        try await app.test(.router) { client in
            var tried = 0
            for (name, body) in Self.badBodies(fields: ["action", "email", "otp", "new_password"]) {
                let (status, text) = try await client.execute(
                    uri: "/auth/otp", method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(bytes: body)
                ) { (Int($0.status.code), String(buffer: $0.body)) }
                tried += 1
                #expect(status < 500, "\(name) answered \(status): \(text.prefix(200))")
                if status == 413 { continue }
                let json = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
                #expect(json?["success"] as? Bool == (status == 200) && json?["message"] is String, "\(name): \(text.prefix(200))")
                if ["empty", "truncated", "not an object", "a string", "null", "invalid UTF-8", "deeply nested arrays", "deeply nested objects"].contains(name) {
                    #expect(status == 400, "\(name) answered \(status)")
                }
            }
            #expect(tried > 15)
        }
    }

    @Test(arguments: [
        "a@b@example.com", "+49 151 1234x678", "+", "++4915112345678", "+0049151123456", "ada@", "@example.com",
        "ada@example..com", "a\u{0}@example.com", "ada@exa mple.com", String(repeating: "a", count: 65) + "@example.com",
    ])
    func malformedIdentifiersAre400(_ identifier: String) async throws {
        let app = try buildApplication(configuration: try testConfiguration(), logger: quietLogger)
        try await app.test(.router) { client in
            let body = try JSONSerialization.data(withJSONObject: ["identifier": identifier])
            try await client.execute(
                uri: "/v1/apps/demo/register/otp", method: .post, headers: [.contentType: "application/json"],
                body: ByteBuffer(bytes: body)
            ) { response in
                #expect(response.status == .badRequest && String(buffer: response.body).contains("invalid_identifier"))
            }
        }
    }

    @Test func hostileBearerTokensAre401() async throws {
        let app = try buildApplication(configuration: try testConfiguration(), logger: quietLogger)
        try await app.test(.router) { client in
            let unknownKid = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6Im5vcGUifQ.eyJzdWIiOiIwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1NjcifQ.c2ln"
            let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4In0."
            for token in [String(repeating: "A", count: 60_000), unknownKid, none, "a.b", "....", "\u{0}"] {
                let status = try await client.execute(
                    uri: "/v1/apps/demo/currentuser", method: .get, headers: [.authorization: "Bearer \(token)"]
                ) { Int($0.status.code) }
                #expect((400..<500).contains(status), "Bearer \(token.prefix(20))… answered \(status)")
            }
        }
    }
}
