import Delivery
import Foundation
import OTPTestSupport
import RedisClient
import Synchronization
import Testing

@testable import OTPCore

/// The store's scripts against the real test Redis, on a clock the test moves: hour
/// rollovers of the sliding windows and the exact Retry-After of every refusal.
///
/// "Exact" means both halves: one second before Retry-After the same request is still refused
/// (the answer is no longer than it must be), and at Retry-After it is accepted (the answer is
/// not too short).
@Suite("OTPStore: the scripts, on a test clock")
struct OTPStoreTests {
    static let hour: Int64 = 3_600_000

    /// A clock the test sets; the scripts read it instead of Redis's TIME.
    final class TestClock: Sendable {
        let milliseconds: Mutex<Int64>
        init(_ start: Int64) { milliseconds = Mutex(start) }
        var now: Int64 { milliseconds.withLock { $0 } }
        func set(_ value: Int64) { milliseconds.withLock { $0 = value } }
    }

    let redis: RedisClient
    let clock: TestClock
    let store: OTPStore
    let prefix = TestRedis.uniquePrefix("store")

    init() throws { try self.init(minute: 10) }

    /// Starts `minute` minutes (and some odd milliseconds) into an hour, far from the epoch.
    init(minute: Int64) throws {
        redis = try TestRedis.client(timeoutMilliseconds: 2000)
        clock = TestClock(493_000 * Self.hour + minute * 60_000 + 1234)
        let clock = self.clock
        store = OTPStore(redis: redis, keyPrefix: prefix, clock: { clock.now })
    }

    func newOTP(
        _ user: String, mode: OTPStore.SendMode = .register, ttl: Int = 600, cooldown: Int = 0, sendsPerHour: Int = 1000
    ) -> OTPStore.NewOTP {
        let suffix = "a" + String(repeating: "x", count: 14) + String(UUID().uuidString.prefix(8))
        return OTPStore.NewOTP(
            app: "t", userID: user, purpose: .auth, suffix: suffix, codeHash: Self.rightHash, channel: .email, mode: mode,
            identifier: .email("\(user)@example.com"), firstName: "Ada", lastName: "L", ttlSeconds: ttl,
            cooldownSeconds: cooldown, sendsPerHour: sendsPerHour, idempotencyKey: nil)
    }

    static let rightHash = [UInt8](repeating: 1, count: 32)
    static let wrongHash = [UInt8](repeating: 2, count: 32)

    func activation(
        _ otp: OTPStore.NewOTP, hash: [UInt8] = rightHash, failuresPerHour: Int = 1000, maxAttempts: Int = 100,
        maxConsecutive: Int = 1000
    ) -> OTPStore.Activation {
        OTPStore.Activation(
            app: otp.app, userID: otp.userID, purpose: .auth, suffix: otp.suffix, codeHash: hash,
            limits: OTPStore.CodeLimits(
                maxAttempts: maxAttempts, failuresPerHour: failuresPerHour, sendsPerHour: otp.sendsPerHour,
                maxConsecutiveFailures: maxConsecutive, lockoutSeconds: 86_400),
            refreshTokenHash: UUID().uuidString.lowercased(), familyID: UUID().uuidString,
            refreshTTLSeconds: 3600, sessionMaxSeconds: 7_776_000)
    }

    static func newUserID() -> String {
        String((UUID().uuidString + UUID().uuidString).lowercased().filter(\.isHexDigit).prefix(24))
    }

    /// Every key of the user's hash tag with its whole value, to prove a refusal changed nothing.
    func snapshot(_ user: String) async throws -> [String: RESPValue] {
        var state: [String: RESPValue] = [:]
        // Cluster-safe: the pattern carries the user's hash tag, so the client routes KEYS to the
        // one master that holds every key of that tag.
        let keys = try await redis.send("KEYS", RedisArgument("\(prefix):{t:\(user)}*")).array ?? []
        for key in keys.compactMap(\.string) {
            let type = try await redis.send("TYPE", RedisArgument(key)).string
            state[key] =
                type == "hash"
                ? try await redis.send("HGETALL", RedisArgument(key)) : try await redis.send("GET", RedisArgument(key))
            let ttl = try await redis.send("PTTL", RedisArgument(key)).int ?? -2
            state[key + " ttl>0"] = .integer(ttl > 0 ? 1 : Int64(ttl))
        }
        return state
    }

    // MARK: send quotas

    @Test func cooldownRetryAfterIsExact() async throws {
        let user = Self.newUserID()
        let start = clock.now
        guard case .created = try await store.send(newOTP(user, cooldown: 30)) else { Issue.record("first send"); return }
        clock.set(start + 1_500)
        guard case .cooldown(let retryAfter) = try await store.send(newOTP(user, cooldown: 30)) else {
            Issue.record("the second send should be in the cooldown")
            return
        }
        #expect(retryAfter == 29)  // 28.5 s left, rounded up
        clock.set(start + 1_500 + Int64(retryAfter - 1) * 1000)
        #expect(try await store.send(newOTP(user, cooldown: 30)) == .cooldown(retryAfter: 1))
        clock.set(start + 1_500 + Int64(retryAfter) * 1000)
        guard case .created = try await store.send(newOTP(user, cooldown: 30)) else {
            Issue.record("accepted once Retry-After has passed")
            return
        }
    }

    @Test func hourlySendQuotaRetryAfterIsExactAcrossTheHourBoundary() async throws {
        // Five sends 50 minutes into an hour; the sixth is refused until the weighted count of
        // the next hour has room: 10 min to the boundary + 12 min (5 × (1 − 12/60) = 4).
        let fifty = try OTPStoreTests(minute: 50)
        let (store, clock) = (fifty.store, fifty.clock)
        let user = Self.newUserID()
        let start = clock.now
        for _ in 0..<5 {
            guard case .created = try await store.send(fifty.newOTP(user, sendsPerHour: 5)) else {
                Issue.record("five sends fit")
                return
            }
        }
        let before = try await fifty.snapshot(user)
        guard case .rateLimited(let retryAfter) = try await store.send(fifty.newOTP(user, sendsPerHour: 5)) else {
            Issue.record("the sixth send is over the quota")
            return
        }
        #expect(try await fifty.snapshot(user) == before, "a refused send changes nothing")
        #expect(retryAfter == 1320 - 1)  // 22 min from minute 50 (+1.234 s already gone)
        clock.set(start + Int64(retryAfter - 1) * 1000)
        guard case .rateLimited = try await store.send(fifty.newOTP(user, sendsPerHour: 5)) else {
            Issue.record("still refused one second before Retry-After")
            return
        }
        clock.set(start + Int64(retryAfter) * 1000)
        guard case .created = try await store.send(fifty.newOTP(user, sendsPerHour: 5)) else {
            Issue.record("accepted at Retry-After, in the next hour")
            return
        }
        // And the window keeps counting: the next one is refused again.
        guard case .rateLimited = try await store.send(fifty.newOTP(user, sendsPerHour: 5)) else {
            Issue.record("the sliding window still holds the previous hour's sends")
            return
        }
    }

    @Test func theSlidingWindowForgetsTheLastHourGradually() async throws {
        // Five sends at minute 10; at minute 0 of the next hour they weigh 5 × (1 − 0) = 5, and
        // one more fits once 5 × (1 − e/60) ≤ 4, i.e. at minute 12 of that hour.
        let user = Self.newUserID()
        let start = clock.now
        for _ in 0..<5 { _ = try await store.send(newOTP(user, sendsPerHour: 5)) }
        let nextHour = (start / Self.hour + 1) * Self.hour
        clock.set(nextHour + 1000)
        #expect(try await store.send(newOTP(user, sendsPerHour: 5)) == .rateLimited(retryAfter: 719))
        clock.set(nextHour + 719_000)
        #expect(try await store.send(newOTP(user, sendsPerHour: 5)) == .rateLimited(retryAfter: 1))
        clock.set(nextHour + 720_000)
        guard case .created = try await store.send(newOTP(user, sendsPerHour: 5)) else {
            Issue.record("one send fits at minute 12")
            return
        }
    }

    @Test func clientQuotaRetryAfterIsExact() async throws {
        let counter = OTPStore.HourlyCounter.clientSends(app: "t", client: "198.51.100.\(Int.random(in: 1...254))-\(UUID().uuidString.prefix(6))")
        let start = clock.now
        for _ in 0..<3 { #expect(try await store.take(counter, limit: 3) == .taken) }
        guard case .overLimit(let retryAfter) = try await store.take(counter, limit: 3) else {
            Issue.record("the fourth send from the client is over its quota")
            return
        }
        clock.set(start + Int64(retryAfter - 1) * 1000)
        #expect(try await store.take(counter, limit: 3) == .overLimit(retryAfter: 1))
        clock.set(start + Int64(retryAfter) * 1000)
        #expect(try await store.take(counter, limit: 3) == .taken)
        // Given back, one fits again at once.
        await store.giveBack(counter)
        #expect(try await store.take(counter, limit: 3) == .taken)
    }

    @Test func countersTakenTogetherAnswerEachOnItsOwn() async throws {
        let client = "198.51.100.\(Int.random(in: 1...254))-\(UUID().uuidString.prefix(6))"
        let sends = OTPStore.HourlyCounter.clientSends(app: "t", client: client)
        let calls = OTPStore.HourlyCounter.appCalls(app: "t-\(client)")
        #expect(try await store.take(calls, limit: 1) == .taken)
        let outcomes = await store.take([(sends, 2), (calls, 1)])
        #expect(outcomes.count == 2)
        #expect(try outcomes[0].get() == .taken)
        guard case .overLimit(let retryAfter) = try outcomes[1].get() else {
            Issue.record("the app's counter was full: \(outcomes)")
            return
        }
        #expect(retryAfter > 0)
        // The first one was taken: one more fits, then it is full too.
        #expect(try await store.take(sends, limit: 2) == .taken)
        guard case .overLimit = try await store.take(sends, limit: 2) else {
            Issue.record("the client's counter holds the unit taken beside the refused one")
            return
        }
    }

    /// With `afterScriptFlush`, Redis has lost its scripts (a restart, SCRIPT FLUSH) in between:
    /// the give-back loads the script and still returns the unit.
    @Test(arguments: [false, true])
    func aGiveBackNobodyWaitsForStillReturnsTheUnit(afterScriptFlush: Bool) async throws {
        let counter = OTPStore.HourlyCounter.clientFailures(app: "t", client: "192.0.2.\(Int.random(in: 1...254))-\(UUID().uuidString.prefix(6))")
        #expect(try await store.take(counter, limit: 1) == .taken)
        guard case .overLimit = try await store.take(counter, limit: 1) else {
            Issue.record("a limit of one holds one unit")
            return
        }
        if afterScriptFlush { _ = try await store.redis.send("SCRIPT", "FLUSH") }
        if !store.giveBackWithoutWaiting(counter) { await store.giveBack(counter) }
        // Nobody waits for it, so look until it has happened (a refused take changes nothing).
        var taken = false
        for _ in 0..<200 where !taken {
            taken = try await store.take(counter, limit: 1) == .taken
            if !taken { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(taken, "the unit was never given back")
    }

    @Test func aUnitTakenLastHourIsNotGivenBackIntoThisOne() async throws {
        // Taken at minute 59, given back at minute 0 of the next hour: the current hour's count
        // stays 0 (never negative), and the last hour's weighs as it did.
        let late = try OTPStoreTests(minute: 59)
        let counter = OTPStore.HourlyCounter.clientSends(app: "t", client: "203.0.113.\(Int.random(in: 1...254))-\(UUID().uuidString.prefix(6))")
        for _ in 0..<3 { #expect(try await late.store.take(counter, limit: 3) == .taken) }
        let nextHour = (late.clock.now / Self.hour + 1) * Self.hour
        late.clock.set(nextHour + 30 * 60_000)
        await late.store.giveBack(counter)
        // Half an hour on, the three weigh 1.5: one fits, the next does not (had the give-back
        // taken one of the three, they would weigh 1 and two would fit).
        #expect(try await late.store.take(counter, limit: 3) == .taken)
        guard case .overLimit = try await late.store.take(counter, limit: 3) else {
            Issue.record("the give-back reached into the last hour's count")
            return
        }
    }

    // MARK: failed verifications

    @Test func failureLockoutRetryAfterIsExactAcrossTheHourBoundary() async throws {
        // Four wrong codes at minute 59 (limit 4 an hour): locked for 1 min + 15 min of the next
        // hour (4 × (1 − 15/60) = 3), and a new code does not reset it.
        let late = try OTPStoreTests(minute: 59)
        let (store, clock) = (late.store, late.clock)
        let user = Self.newUserID()
        let start = clock.now
        var otp = late.newOTP(user)
        _ = try await store.send(otp)
        for attempt in 0..<4 {
            if attempt == 2 {
                otp = late.newOTP(user)
                _ = try await store.send(otp)
            }
            guard case .refused(.invalid) = try await store.activate(late.activation(otp, hash: Self.wrongHash, failuresPerHour: 4)) else {
                Issue.record("wrong code \(attempt)")
                return
            }
        }
        guard case .refused(.locked(let retryAfter)) = try await store.activate(late.activation(otp, failuresPerHour: 4)) else {
            Issue.record("the identifier is locked after four failures, even for the right code")
            return
        }
        #expect(retryAfter == 960 - 1)
        clock.set(start + Int64(retryAfter - 1) * 1000)
        #expect(try await store.activate(late.activation(otp, failuresPerHour: 4)) == .refused(.locked(retryAfter: 1)))
        clock.set(start + Int64(retryAfter) * 1000)
        guard case .activated(let signedIn, _) = try await store.activate(late.activation(otp, failuresPerHour: 4)) else {
            Issue.record("the right code works at Retry-After")
            return
        }
        #expect(signedIn.id == user && signedIn.status == "active")
    }

    @Test func aDeadOTPAnswersWhenANewCodeMayBeSent() async throws {
        let user = Self.newUserID()
        let start = clock.now
        let otp = newOTP(user, cooldown: 60)
        _ = try await store.send(otp)
        clock.set(start + 1000)
        for remaining in [1, 0] {
            #expect(
                try await store.activate(activation(otp, hash: Self.wrongHash, maxAttempts: 2))
                    == .refused(.invalid(attemptsRemaining: remaining, lockedNow: false)))
        }
        guard case .refused(.exhausted(let retryAfter)) = try await store.activate(activation(otp, maxAttempts: 2)) else {
            Issue.record("the right code is refused once the attempts are spent")
            return
        }
        #expect(retryAfter == 59)
        clock.set(start + 1000 + Int64(retryAfter - 1) * 1000)
        #expect(try await store.send(newOTP(user, cooldown: 60)) == .cooldown(retryAfter: 1))
        clock.set(start + 1000 + Int64(retryAfter) * 1000)
        guard case .created = try await store.send(newOTP(user, cooldown: 60)) else {
            Issue.record("a new code may be sent at Retry-After")
            return
        }
    }

    // MARK: users

    @Test func anUnverifiedUserLivesAsLongAsItsNewestCode() async throws {
        let user = Self.newUserID()
        _ = try await store.send(newOTP(user))
        // The user is near the end of its life (its day is almost over) when a new code is sent.
        let userKey = "\(prefix):{t:\(user)}:user"
        _ = try await redis.send("PEXPIRE", RedisArgument(userKey), 2000)
        let late = newOTP(user, ttl: 6)
        guard case .created(_, let created, _) = try await store.send(late) else {
            Issue.record("a resend to an unverified user")
            return
        }
        #expect(!created)
        try await Task.sleep(for: .milliseconds(2300))
        guard case .activated(let activated, _) = try await store.activate(activation(late)) else {
            Issue.record("the late code must not outlive its user")
            return
        }
        #expect(activated.status == "active")
        #expect(try await redis.send("PTTL", RedisArgument(userKey)).int == -1, "an active user does not expire")
    }

    @Test func everySendOutcome() async throws {
        let user = Self.newUserID()
        #expect(try await store.send(newOTP(user, mode: .login)) == .userNotFound)
        guard case .decoy(let decoy) = try await store.send(newOTP(user, mode: .loginConcealed)) else {
            Issue.record("a concealed unknown user gets a decoy")
            return
        }
        #expect(decoy.hasPrefix(user + "."))
        var register = newOTP(user)
        register.idempotencyKey = "k-\(UUID().uuidString.prefix(8))"
        guard case .created(let otpID, true, nil) = try await store.send(register) else {
            Issue.record("register creates the user")
            return
        }
        register.suffix = "a" + String(repeating: "y", count: 22)
        #expect(try await store.send(register) == .replayed(otpID: otpID, userCreated: true))
        var telegram = newOTP(user, mode: .login)
        telegram.channel = .telegram
        #expect(try await store.send(telegram) == .telegramNotLinked)
        guard case .activated = try await store.activate(activation(newOTP(user)).with(suffix: String(otpID.dropFirst(25))))
        else {
            Issue.record("activate the registered user")
            return
        }
        #expect(try await store.send(newOTP(user)) == .userExists)
        #expect(try await store.user(app: "t", userID: user)?.email == "\(user)@example.com")
        #expect(try await store.user(app: "t", userID: Self.newUserID()) == nil)
    }

    @Test func unreachableRedisIsAStorageFailureNotARedisError() async throws {
        let redis = RedisClient(configuration: try RedisConfiguration(url: "redis://127.0.0.1:\(freePort())/0"))
        let store = OTPStore(redis: redis, keyPrefix: prefix)
        do {
            _ = try await store.send(newOTP(Self.newUserID()))
            Issue.record("a send without Redis must fail")
        } catch {
            guard case .storageFailed(let failure) = error else {
                Issue.record("expected storageFailed, got \(error)")
                return
            }
            #expect(failure.kind == .unavailable && failure.isTransient)
        }
    }
}

extension OTPStore.Activation {
    func with(suffix: String) -> Self {
        var copy = self
        copy.suffix = suffix
        return copy
    }
}
