import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import OTPCore
import OTPTestSupport
import Testing

@testable import OTPServer

/// The hostile bodies of `BadInputTests` against project verify and the hub routes: each
/// answer is a 4xx in the surface's own error shape (413 keeps the shape every route shares:
/// the body limit answers before any surface sees the request) — never a 5xx.
@Suite("Bad input: project verify and the hub")
struct SurfaceBadInputTests {
    static let routes: [(path: String, fields: [String], shape: [String])] = [
        ("/api/auth/otp/send", ["identifier", "projectId", "channel"], ["message", "code"]),
        ("/api/auth/otp/verify", ["identifier", "otp", "projectId"], ["message", "code"]),
        ("/-/svc/otp.send", ["email", "socket_id", "method"], ["error", "message"]),
        ("/-/svc/otp.verify", ["email", "code", "secret", "socket_id"], ["error", "message"]),
        ("/-/svc/otp.set_password", ["uid", "code", "secret", "password", "socket_id"], ["error", "message"]),
    ]

    @Test func everySurfaceRouteAnswersBadBodiesWithA4xxInItsShape() async throws {
        let app = try buildApplication(configuration: try testConfiguration(), logger: quietLogger)
        try await app.test(.router) { client in
            var tried = 0
            for route in Self.routes {
                for (name, body) in BadInputTests.badBodies(fields: route.fields) {
                    let (status, text) = try await client.execute(
                        uri: route.path, method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(bytes: body)
                    ) { (Int($0.status.code), String(buffer: $0.body)) }
                    tried += 1
                    #expect((400..<500).contains(status), "\(route.path) \(name) answered \(status): \(text.prefix(200))")
                    if status != 413 {
                        let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
                        #expect(Set(object.keys) == Set(route.shape), "\(route.path) \(name): \(text.prefix(200))")
                    }
                }
            }
            #expect(tried > 90)
        }
    }
}
