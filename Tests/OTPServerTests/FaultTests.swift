import Foundation
import OTPCore
import OTPTestSupport
import RedisClient
import Testing

@testable import OTPServer

/// Redis failing under load: answers are fast 503s, never hangs; service resumes by itself;
/// with AOF (fsync always) nothing that was answered 2xx is lost.
@Suite("Faults: Redis killed, restarted and paused under load", .serialized)
struct FaultTests {
    static func email() -> String { "f-\(UUID().uuidString.prefix(8).lowercased())@example.com" }

    @Test func redisKilledUnderLoadLosesNothingThatAnswered2xx() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("otpd-aof-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let redis = try RedisServerProcess(arguments: ["--appendonly", "yes", "--appendfsync", "always", "--dir", dir.path])
        let harness = try V1Harness { _, prefix in
            v1YAML(redisURL: redis.url, prefix: prefix).replacingOccurrences(of: "timeout_ms: 5000", with: "timeout_ms: 500")
        }
        try await harness.run { http in
            let emails = (0..<60).map { _ in Self.email() }
            // Sixty sends, twenty at a time; Redis is killed in the middle and restarted. The first
            // twenty are answered before the kill (so the test always has codes to check; on a
            // loaded machine the kill could otherwise come before any of them ran).
            let results = try await withThrowingTaskGroup(of: (String, Int, String?, Double).self) { group in
                var results: [(String, Int, String?, Double)] = []
                for (i, email) in emails.enumerated() {
                    if i == 20 {
                        for _ in 0..<20 { if let result = try await group.next() { results.append(result) } }
                    }
                    if i == 30 {
                        redis.kill()
                    }
                    if i == 40 { try redis.start() }
                    group.addTask {
                        let start = Date()
                        let reply = try await http.post("/v1/apps/t/register/otp", ["identifier": email])
                        return (email, reply.status, reply.json["otp_id"] as? String, Date().timeIntervalSince(start))
                    }
                    if i % 20 == 19 { try await Task.sleep(for: .milliseconds(50)) }
                }
                return try await group.reduce(into: results) { $0.append($1) }
            }
            #expect(results.allSatisfy { $0.1 == 201 || $0.1 == 503 }, "\(results.map(\.1))")
            #expect(results.allSatisfy { $0.3 < 2 }, "a request took \(results.map(\.3).max() ?? 0) s")
            #expect(results.contains { $0.1 == 503 }, "the kill should have been seen")
            // Every code that was answered 201 still activates after the restart.
            var activated = 0
            for (email, status, otpID, _) in results where status == 201 {
                let code = try #require(harness.capture.lastCode(to: email))
                let reply = try await http.post("/v1/apps/t/otp/activate", ["otp_id": try #require(otpID), "otp": code])
                #expect(reply.status == 200, "\(email): \(reply.body)")
                activated += 1
            }
            // At least the twenty answered before the kill.
            #expect(activated >= 20)
            // And service resumed by itself.
            #expect(try await http.post("/v1/apps/t/register/otp", ["identifier": Self.email()]).status == 201)
        }
    }

    @Test func redisPausedPastItsTimeoutIsAFast503ThenServiceResumes() async throws {
        let redis = try RedisServerProcess(arguments: ["--enable-debug-command", "yes"])
        let harness = try V1Harness { _, prefix in
            v1YAML(redisURL: redis.url, prefix: prefix).replacingOccurrences(of: "timeout_ms: 5000", with: "timeout_ms: 300")
        }
        try await harness.run { http in
            let admin = RedisClient(configuration: try RedisConfiguration(url: redis.url, timeoutMilliseconds: 5000))
            defer { admin.shutdown() }
            let sleeper = Task { try? await admin.send("DEBUG", "SLEEP", "1.5") }
            try await Task.sleep(for: .milliseconds(100))
            let start = Date()
            let reply = try await http.post("/v1/apps/t/register/otp", ["identifier": Self.email()])
            let took = Date().timeIntervalSince(start)
            #expect(reply.status == 503 && reply.code == "service_unavailable" && reply.header("Retry-After") != nil)
            #expect(took < 1.0, "503 after \(took) s")
            _ = await sleeper.value
            var recovered = false
            for _ in 0..<20 where !recovered {
                recovered = try await http.post("/v1/apps/t/register/otp", ["identifier": Self.email()]).status == 201
                if !recovered { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(recovered)
        }
    }
}
