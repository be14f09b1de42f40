import Delivery
import Foundation
import OTPTestSupport
import RedisClient
import Synchronization
import Testing

@testable import OTPCore

/// Twilio Verify's rules where they live: `TwilioVerify` over the engine, against the real
/// test Redis on a clock the test moves (EngineTests' engine and webhook receiver). The wire
/// format is TwilioVerifyTests' and scripts/interop-twilio.sh's.
@Suite("TwilioVerify: one verification per To, under the app's rules, on a test clock")
struct TwilioVerifyRulesTests {
    static let service = "VA0123456789abcdef0123456789abcdef"

    static func create(_ verify: TwilioVerify, _ to: String, ip: String? = nil) async throws -> TwilioVerify.Verification {
        try await verify.create(.init(to: to, channel: "email", deviceIP: ip), service: service, appID: "rules").get()
    }

    static func check(_ verify: TwilioVerify, _ to: String, _ code: String) async throws -> TwilioVerify.Verification {
        try await verify.check(code: code, to: to, sid: nil, service: service, appID: "rules", deviceIP: nil).get()
    }

    @Test func cooldownAndHourlySendsGuardResendsWhichKeepTheSidAndTheCode() async throws {
        try await EngineTests.withEngine { engine, gateway, clock, observed in
            let verify = TwilioVerify(engine: engine)
            let to = EngineTests.email()
            let first = try await Self.create(verify, to)
            let code = try EngineTests.lastCode(gateway)
            // Within the app's 30 s cooldown: refused, and the verification is as it was.
            await EngineTests.expectError({ if case .resendCooldown = $0 { true } else { false } }) {
                _ = try await Self.create(verify, to)
            }
            #expect(try await verify.fetch(sid: first.sid, service: Self.service, appID: "rules")?.sendAttempts.count == 1)
            #expect(gateway.requests.count == 1)
            clock.advance(seconds: 30)
            let second = try await Self.create(verify, to)
            #expect(second.sid == first.sid && second.sendAttempts.count == 2)
            #expect(try EngineTests.lastCode(gateway) == code)
            clock.advance(seconds: 30)
            _ = try await Self.create(verify, to)
            clock.advance(seconds: 30)
            // sends_per_identifier_per_hour: 3
            await EngineTests.expectError({ if case .tooManySends = $0 { true } else { false } }) {
                _ = try await Self.create(verify, to)
            }
            #expect(observed.sent == [.email, .email, .email])
            #expect(try await Self.check(verify, to, code).status == .approved)
            #expect(observed.verdicts == [.success])
        }
    }

    /// Two creates race for one `To`: the first makes the verification and its delivery fails
    /// late, after the second re-sent it and its code went out. Undoing the first must not take
    /// the verification whose code the user now holds.
    @Test func aLateFailedFirstSendDoesNotUndoAResendThatWentOut() async throws {
        try await EngineTests.withEngine { engine, gateway, clock, _ in
            let verify = TwilioVerify(engine: engine)
            let to = EngineTests.email()
            let first = try await Self.create(verify, to)
            clock.advance(seconds: 30)
            let second = try await Self.create(verify, to)
            #expect(second.sid == first.sid && second.sendAttempts.count == 2)
            let code = try EngineTests.lastCode(gateway)
            // The first create's undo, as it runs when its delivery fails (no gateway reached).
            let identifier = try #require(Identifier(to))
            let undone = OTPStore.NewVerification(
                place: verify.place(app: "rules", service: Self.service, identifier: identifier), sid: first.sid,
                codeHash: [], to: to, channel: .email, attemptSID: first.sendAttempts[0].sid, ttlSeconds: 600,
                cooldownSeconds: 30, sendsPerHour: 3, maxAttempts: 3, maxSends: TwilioVerify.maxSends)
            await engine.store.unsendVerification(undone, sid: first.sid, giveBack: true)
            let kept = try #require(try await verify.fetch(sid: first.sid, service: Self.service, appID: "rules"))
            #expect(kept.sendAttempts.map(\.sid) == [second.sendAttempts[1].sid], "only the failed attempt is gone")
            #expect(try await Self.check(verify, to, code).status == .approved)
        }
    }

    @Test func spentAttemptsKillTheVerificationAndWrongCodesInARowLockTheTo() async throws {
        try await EngineTests.withEngine { engine, gateway, clock, observed in
            let verify = TwilioVerify(engine: engine)
            let to = EngineTests.email()
            let first = try await Self.create(verify, to)
            let code = try EngineTests.lastCode(gateway)
            for _ in 0..<3 {  // max_attempts: 3
                #expect(try await Self.check(verify, to, EngineTests.other(than: code)).status == .pending)
            }
            await EngineTests.expectError({ if case .otpExhausted = $0 { true } else { false } }) {
                _ = try await Self.check(verify, to, code)
            }
            #expect(try await verify.fetch(sid: first.sid, service: Self.service, appID: "rules")?.status == .maxAttemptsReached)
            // A create replaces the dead verification with a new one, and a new code.
            clock.advance(seconds: 30)
            let second = try await Self.create(verify, to)
            #expect(second.sid != first.sid)
            // The fourth wrong code in a row (max_consecutive_failures: 4) locks the To.
            #expect(try await Self.check(verify, to, EngineTests.other(than: try EngineTests.lastCode(gateway))).status == .pending)
            #expect(observed.events.withLock { $0 }.contains(.identifierLocked))
            clock.advance(seconds: 30)
            await EngineTests.expectError({ if case .identifierLocked = $0 { true } else { false } }) {
                _ = try await Self.create(verify, to)
            }
            #expect(observed.verdicts == [.invalid, .invalid, .invalid, .tooManyAttempts, .invalid])
        }
    }

    @Test func theDeviceIPsQuotaRefusesWithoutTouchingTheTo() async throws {
        try await EngineTests.withEngine { engine, gateway, _, _ in
            let verify = TwilioVerify(engine: engine)
            for _ in 0..<5 { _ = try await Self.create(verify, EngineTests.email(), ip: "203.0.113.9") }  // sends_per_ip_per_hour: 5
            let to = EngineTests.email()
            await EngineTests.expectError({ if case .tooManySendsFromIP = $0 { true } else { false } }) {
                _ = try await Self.create(verify, to, ip: "203.0.113.9")
            }
            // The To was never sent to: another client may create at once (no cooldown started).
            _ = try await Self.create(verify, to, ip: "203.0.113.10")
            #expect(gateway.requests.count == 6)
        }
    }

    @Test func theCodeIsDerivedFromTheSidAndStoredOnlyAsItsHash() async throws {
        try await EngineTests.withEngine { engine, gateway, _, _ in
            let verify = TwilioVerify(engine: engine)
            let created = try await Self.create(verify, EngineTests.email())
            let code = try EngineTests.lastCode(gateway)
            let app = try engine.app("rules")
            #expect(verify.code(app: app, sid: created.sid) == code)
            #expect(TwilioVerify.isSID(created.sid))
            let place = try #require(verify.place(app: "rules", service: Self.service, sid: created.sid))
            let key = engine.store.keys.twilioVerification("rules", service: Self.service, to: place.toHash)
            let fields = try await engine.store.redis.send(["HGETALL", .init(key)]).array ?? []
            let values = fields.compactMap(\.string)
            #expect(!values.isEmpty)
            #expect(!values.contains { $0.contains(code) }, "the code is in Redis")
        }
    }
}
