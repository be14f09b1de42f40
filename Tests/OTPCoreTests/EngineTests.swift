import Delivery
import Foundation
import Logging
import OTPTestSupport
import Synchronization
import Testing
import Yams

@testable import OTPCore

/// The engine's rules where they live: `OTPEngine` and its surface types against the real
/// test Redis on a clock the test moves, codes delivered to a real local HTTP server (the
/// webhook gateway's wire format), no HTTP server of ours. The HTTP suites keep the wire
/// formats; these keep the rules — attempts, resend, quotas, lockout, rotation — and what the
/// engine tells its observers.
@Suite("OTPEngine: the rules, on a test clock")
struct EngineTests {
    /// A clock the test sets: the scripts' `clock` argument and the tokens' `iat`.
    final class TestClock: Sendable {
        let milliseconds: Mutex<Int64>
        init(_ start: Int64) { milliseconds = Mutex(start) }
        var now: Int64 { milliseconds.withLock { $0 } }
        func advance(seconds: Int) { milliseconds.withLock { $0 += Int64(seconds) * 1000 } }
    }

    /// What the engine told its observers.
    final class Observed: Sendable {
        let outcomes = Mutex<[EngineOutcome]>([])
        let events = Mutex<[SecurityEvent.Kind]>([])
        var verdicts: [EngineOutcome.Verdict] {
            outcomes.withLock {
                $0.compactMap { if case .verificationJudged(_, let verdict) = $0 { verdict } else { nil } }
            }
        }
        var sent: [DeliveryChannel] {
            outcomes.withLock { $0.compactMap { if case .codeSent(_, let channel) = $0 { channel } else { nil } } }
        }
    }

    static let config = """
        mode: development
        redis: {url: "redis://127.0.0.1:1/0", key_prefix: PREFIX}
        security: {pepper: "engine-tests-pepper-0123456789"}
        delivery: {email: {provider: log}, sms: {provider: log}}
        apps:
          - id: rules
            name: Rules
            channels: [email, sms]
            registration: open
            otp: {length: 6, alphabet: digits, ttl_seconds: 600, max_attempts: 3, resend_cooldown_seconds: 30}
            limits:
              sends_per_identifier_per_hour: 3
              sends_per_ip_per_hour: 5
              failed_attempts_per_identifier_per_hour: 100
              failed_attempts_per_ip_per_hour: 100
              max_consecutive_failures: 4
              lockout_seconds: 900
              refreshes_per_session_per_hour: 60
            tokens:
              issuer: otpd-tests
              access_ttl_seconds: 900
              reuse_interval_seconds: 10
              keys: [{kid: k1, secret: "engine-tests-secret-0123456789abcdef"}]
        """

    /// Runs `body` with an engine whose email and SMS go to a local webhook receiver.
    static func withEngine(
        _ body: @Sendable (OTPEngine, FakeGateway, TestClock, Observed) async throws -> Void
    ) async throws {
        let prefix = TestRedis.uniquePrefix("engine")
        let configuration = try YAMLDecoder().decode(
            Configuration.self, from: config.replacingOccurrences(of: "PREFIX", with: prefix))
        _ = try configuration.validate()
        // Far from the epoch and 10 minutes into an hour, as the store's tests.
        let clock = TestClock(493_000 * 3_600_000 + 600_000 + 1234)
        let observed = Observed()
        try await FakeGateway.run { gateway in
            let policy = GatewayPolicy(timeoutMilliseconds: 2000, retries: 0)
            let hook = WebhookProvider(url: gateway.url + "/hook", secret: "engine-tests", policy: policy)
            var logger = Logger(label: "engine-tests")
            logger.logLevel = .critical
            let engine = OTPEngine(
                configuration: configuration,
                store: OTPStore(redis: try TestRedis.client(), keyPrefix: prefix, clock: { clock.now }),
                providers: [.email: hook, .sms: hook], logger: logger,
                onSecurityEvent: { event in observed.events.withLock { $0.append(event.kind) } },
                onOutcome: { outcome in observed.outcomes.withLock { $0.append(outcome) } })
            try await body(engine, gateway, clock, observed)
        }
    }

    /// The code of the last message the gateway received.
    static func lastCode(_ gateway: FakeGateway) throws -> String {
        let text = try #require(gateway.requests.last).text
        let match = try #require(text.firstMatch(of: /\b(\d{6})\b/))
        return String(match.1)
    }

    static func email() -> String { "u\(UUID().uuidString.prefix(8).lowercased())@example.com" }

    static func other(than code: String) -> String {
        String(format: "%06d", (Int(code)! + 1) % 1_000_000)
    }

    static func expectError(_ expected: (OTPError) -> Bool, _ work: () async throws -> Void) async {
        do {
            try await work()
            Issue.record("expected a refusal")
        } catch let error as OTPError {
            #expect(expected(error), "unexpected \(error)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    // MARK: attempts

    /// otp ids and refresh tokens are read by bytes: anything but the exact shape is refused.
    @Test func otpIDsAndRefreshTokensParseOnlyInTheirExactShape() {
        let user = "0123456789abcdef01234567"
        let random22 = String(repeating: "A", count: 21) + "_"
        #expect(OTPEngine.parseOTPID("\(user).a\(random22)")! == (user, .auth))
        #expect(OTPEngine.parseOTPID("\(user).r\(random22)")! == (user, .reset))
        for bad in [
            "\(user)a\(random22)", "\(user).a\(random22)x", "\(user).a\(random22.dropLast())", "\(user).z\(random22)",
            "\(user.uppercased()).a\(random22)", "\(user.dropLast()).a\(random22)x", "\(user).a\(random22.dropLast())é",
            "\(user).a\(random22.dropLast()).", ".\(user).a\(random22)", "", ".",
        ] {
            #expect(OTPEngine.parseOTPID(bad) == nil, "\(bad)")
        }
        let secret43 = String(repeating: "b", count: 42) + "-"
        #expect(OTPEngine.parseRefreshToken("\(user).\(secret43)") == user)
        for bad in ["\(user).\(secret43)b", "\(user)\(secret43)", "\(user).\(secret43.dropLast())=", "é\(user.dropFirst()).\(secret43)"] {
            #expect(OTPEngine.parseRefreshToken(bad) == nil, "\(bad)")
        }
    }

    @Test func wrongCodesSpendTheAttemptsThenTheCodeIsDeadEvenWhenRight() async throws {
        try await Self.withEngine { engine, gateway, _, observed in
            let sent = try await engine.send(.init(identifier: Self.email()), appID: "rules", mode: .register)
            let code = try Self.lastCode(gateway)
            for remaining in [2, 1, 0] {
                await Self.expectError({ $0 == .invalidOTP(attemptsRemaining: remaining) }) {
                    _ = try await engine.activate(appID: "rules", otpID: sent.otpID, code: Self.other(than: code))
                }
            }
            await Self.expectError({ if case .otpExhausted = $0 { true } else { false } }) {
                _ = try await engine.activate(appID: "rules", otpID: sent.otpID, code: code)
            }
            #expect(observed.verdicts == [.invalid, .invalid, .invalid, .tooManyAttempts])
        }
    }

    @Test func aRightCodeSignsInOnceWithTokensStampedByTheClock() async throws {
        try await Self.withEngine { engine, gateway, clock, observed in
            let sent = try await engine.send(.init(identifier: Self.email()), appID: "rules", mode: .register)
            let result = try await engine.activate(appID: "rules", otpID: sent.otpID, code: try Self.lastCode(gateway))
            #expect(result.expiresIn == 900)
            #expect(result.user.status == "active")
            let claims = try JSONSerialization.jsonObject(
                with: try #require(Data(base64URL: String(result.authToken.split(separator: ".")[1])))) as? [String: Any]
            #expect(claims?["iat"] as? Int == Int(clock.now / 1000))
            await Self.expectError({ $0 == .otpNotFound }) {
                _ = try await engine.activate(appID: "rules", otpID: sent.otpID, code: try Self.lastCode(gateway))
            }
            #expect(observed.verdicts == [.success, .notFound])
            #expect(observed.sent == [.email])
        }
    }

    // MARK: resend

    @Test func aResendWaitsForTheCooldownAndReplacesTheEarlierCode() async throws {
        try await Self.withEngine { engine, gateway, clock, _ in
            let email = Self.email()
            let first = try await engine.send(.init(identifier: email), appID: "rules", mode: .register)
            let firstCode = try Self.lastCode(gateway)
            await Self.expectError({ $0 == .resendCooldown(retryAfter: 30) }) {
                _ = try await engine.send(.init(identifier: email), appID: "rules", mode: .register)
            }
            #expect(gateway.requests.count == 1, "a refused resend delivers nothing")
            clock.advance(seconds: 30)
            let second = try await engine.send(.init(identifier: email), appID: "rules", mode: .register)
            #expect(second.otpID != first.otpID)
            await Self.expectError({ $0 == .otpNotFound }) {
                _ = try await engine.activate(appID: "rules", otpID: first.otpID, code: firstCode)
            }
            _ = try await engine.activate(appID: "rules", otpID: second.otpID, code: try Self.lastCode(gateway))
        }
    }

    // MARK: quotas

    @Test func theIdentifiersHourlySendsAreCappedUntilTheWindowMoves() async throws {
        try await Self.withEngine { engine, gateway, clock, _ in
            let email = Self.email()
            for _ in 0..<3 {
                _ = try await engine.send(.init(identifier: email), appID: "rules", mode: .register)
                clock.advance(seconds: 30)
            }
            await Self.expectError({ if case .tooManySends = $0 { true } else { false } }) {
                _ = try await engine.send(.init(identifier: email), appID: "rules", mode: .register)
            }
            #expect(gateway.requests.count == 3)
            clock.advance(seconds: 2 * 3600)
            _ = try await engine.send(.init(identifier: email), appID: "rules", mode: .register)
            #expect(gateway.requests.count == 4)
        }
    }

    @Test func oneClientsSendsAreCappedAcrossIdentifiersAndARefusalCostsTheOthersNothing() async throws {
        try await Self.withEngine { engine, gateway, _, observed in
            for _ in 0..<5 {
                _ = try await engine.send(.init(identifier: Self.email(), clientIP: "192.0.2.7"), appID: "rules", mode: .register)
            }
            let victim = Self.email()
            await Self.expectError({ if case .tooManySendsFromIP = $0 { true } else { false } }) {
                _ = try await engine.send(.init(identifier: victim, clientIP: "192.0.2.7"), appID: "rules", mode: .register)
            }
            #expect(observed.events.withLock { $0 } == [.ipQuotaExceeded])
            // The refusal took nothing of the victim's: three sends from elsewhere still fit.
            _ = try await engine.send(.init(identifier: victim, clientIP: "198.51.100.1"), appID: "rules", mode: .register)
            #expect(gateway.requests.count == 6)
        }
    }

    // MARK: lockout

    @Test func wrongCodesInARowLockTheIdentifierForLockoutSeconds() async throws {
        try await Self.withEngine { engine, gateway, clock, observed in
            let email = Self.email()
            // Four wrong codes in a row, over two codes (three attempts each).
            var sent = try await engine.send(.init(identifier: email), appID: "rules", mode: .register)
            for _ in 0..<2 {
                _ = try? await engine.activate(appID: "rules", otpID: sent.otpID, code: Self.other(than: try Self.lastCode(gateway)))
            }
            clock.advance(seconds: 30)
            sent = try await engine.send(.init(identifier: email), appID: "rules", mode: .register)
            let code = try Self.lastCode(gateway)
            _ = try? await engine.activate(appID: "rules", otpID: sent.otpID, code: Self.other(than: code))
            await Self.expectError({ $0 == .invalidOTP(attemptsRemaining: 1) }) {
                _ = try await engine.activate(appID: "rules", otpID: sent.otpID, code: Self.other(than: code))
            }
            #expect(observed.events.withLock { $0 } == [.identifierLocked])
            await Self.expectError({ $0 == .identifierLocked(retryAfter: 900) }) {
                _ = try await engine.activate(appID: "rules", otpID: sent.otpID, code: code)
            }
            clock.advance(seconds: 900)
            _ = try await engine.activate(appID: "rules", otpID: sent.otpID, code: code)
        }
    }

    // MARK: rotation

    @Test func aRefreshRotatesARetryWithinTheIntervalGetsTheSameTokenAndALaterReuseEndsTheSession() async throws {
        try await Self.withEngine { engine, gateway, clock, _ in
            let sent = try await engine.send(.init(identifier: Self.email()), appID: "rules", mode: .register)
            let signedIn = try await engine.activate(appID: "rules", otpID: sent.otpID, code: try Self.lastCode(gateway))
            let rotated = try await engine.refresh(appID: "rules", refreshToken: signedIn.refreshToken)
            #expect(rotated.refreshToken != signedIn.refreshToken)
            clock.advance(seconds: 5)
            let retried = try await engine.refresh(appID: "rules", refreshToken: signedIn.refreshToken)
            #expect(retried.refreshToken == rotated.refreshToken, "a retry within reuse_interval_seconds")
            clock.advance(seconds: 10)
            await Self.expectError({ $0 == .refreshTokenReused }) {
                _ = try await engine.refresh(appID: "rules", refreshToken: signedIn.refreshToken)
            }
            await Self.expectError({ $0 == .invalidRefreshToken }) {
                _ = try await engine.refresh(appID: "rules", refreshToken: rotated.refreshToken)
            }
        }
    }

    // MARK: the surface types use the same rules

    @Test func aPasswordResetCodeIsJudgedAndCountedLikeAnyOther() async throws {
        try await Self.withEngine { engine, gateway, clock, observed in
            let email = Self.email()
            let signUp = try await engine.send(.init(identifier: email), appID: "rules", mode: .register)
            _ = try await engine.activate(appID: "rules", otpID: signUp.otpID, code: try Self.lastCode(gateway))
            let passwords = Passwords(engine: engine)
            // A password the policy refuses judges no code: no verdict.
            await Self.expectError({ if case .invalidPassword = $0 { true } else { false } }) {
                try await passwords.reset(appID: "rules", email: email, code: "000000", newPassword: "short")
            }
            clock.advance(seconds: 30)  // the resend cooldown is the identifier's, whatever the purpose
            _ = try await passwords.sendReset(appID: "rules", email: email, clientIP: nil)
            try await passwords.reset(appID: "rules", email: email, code: try Self.lastCode(gateway), newPassword: "a-long-password")
            _ = try await passwords.signIn(appID: "rules", identifier: email, password: "a-long-password")
            #expect(observed.verdicts == [.success, .success])
            #expect(observed.sent == [.email, .email])
        }
    }
}

extension Data {
    /// base64url without padding, as in a JWT.
    init?(base64URL text: String) {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        self.init(base64Encoded: base64)
    }
}
