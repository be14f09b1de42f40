import Logging
import NIOCore
import NIOEmbedded
import OTPTestSupport
import Synchronization
import Testing

@testable import RedisClient

/// Stands in for `RedisConnection.connect`: counts the attempts and answers with `next`.
final class ScriptedConnect: Sendable {
    private let attemptCount = Atomic<Int>(0)
    private let next: Mutex<@Sendable (any EventLoop) -> EventLoopFuture<RedisConnection>>

    init(_ next: @escaping @Sendable (any EventLoop) -> EventLoopFuture<RedisConnection>) {
        self.next = Mutex(next)
    }

    var attempts: Int { attemptCount.load(ordering: .relaxed) }

    func answer(with next: @escaping @Sendable (any EventLoop) -> EventLoopFuture<RedisConnection>) {
        self.next.withLock { $0 = next }
    }

    func slot(eventLoop: any EventLoop, logger: Logger = Logger(label: "otpd.test")) -> ConnectionSlot {
        ConnectionSlot(configuration: RedisConfiguration(), eventLoop: eventLoop, logger: logger) { _, eventLoop in
            self.attemptCount.add(1, ordering: .relaxed)
            return self.next.withLock { $0 }(eventLoop)
        }
    }
}

@Suite("ConnectionSlot over test channels")
struct ConnectionSlotTests {
    func connectedChannel() async throws -> NIOAsyncTestingChannel {
        let channel = NIOAsyncTestingChannel()
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 6379))
        return channel
    }

    /// The connect completes on the event loop with a channel that has closed already, so the
    /// close handler runs at once, inside the completion. Registered while the slot held its
    /// lock (as it once was), that handler took the lock again: the process trapped.
    @Test func connectionClosedBeforeItsConnectCompletesDoesNotDeadlock() async throws {
        let channel = try await connectedChannel()
        try await channel.close()
        let closed = RedisConnection(channel: channel)
        let log = LogCapture()
        let connect = ScriptedConnect { _ in channel.eventLoop.makeSucceededFuture(closed) }
        let slot = connect.slot(eventLoop: channel.eventLoop, logger: log.logger)
        defer { slot.shutdown() }

        let connection = try await slot.connection()
        #expect(!connection.isActive)
        #expect(log.all == ["connection to Redis closed"])
        // The slot is idle again: the next caller starts a new attempt.
        _ = try await slot.connection()
        #expect(connect.attempts == 2)
    }

    @Test func callersShareOneAttemptAndACancelledCallerStopsWaiting() async throws {
        let channel = try await connectedChannel()
        let pending = channel.eventLoop.makePromise(of: RedisConnection.self)
        let connect = ScriptedConnect { _ in pending.futureResult }
        let slot = connect.slot(eventLoop: channel.eventLoop)
        defer { slot.shutdown() }

        let first = Task { try await slot.connection() }
        let second = Task { try await slot.connection() }
        let cancelled = Task { try await slot.connection() }
        try await Task.sleep(for: .milliseconds(100))

        let cancelledAt = ContinuousClock.now
        cancelled.cancel()
        do {
            _ = try await cancelled.value
            Issue.record("a cancelled caller must stop waiting")
        } catch let error as RedisError {
            #expect(error.code == .cancelled)
        }
        #expect(ContinuousClock.now - cancelledAt < .milliseconds(500))

        pending.succeed(RedisConnection(channel: channel))
        #expect(try await first.value.channel === channel)
        #expect(try await second.value.channel === channel)
        #expect(connect.attempts == 1)
    }

    @Test func shutdownFailsTheWaitersAndClosesTheConnectionThatArrivesLater() async throws {
        let channel = try await connectedChannel()
        let pending = channel.eventLoop.makePromise(of: RedisConnection.self)
        let connect = ScriptedConnect { _ in pending.futureResult }
        let slot = connect.slot(eventLoop: channel.eventLoop)

        let waiter = Task { try await slot.connection() }
        try await Task.sleep(for: .milliseconds(100))
        slot.shutdown()
        do {
            _ = try await waiter.value
            Issue.record("a shut-down slot has no connection to give")
        } catch let error as RedisError {
            #expect(error.code == .shutdown)
        }

        pending.succeed(RedisConnection(channel: channel))
        try await channel.closeFuture.get()
        await #expect(throws: ConnectionSlot.StateMachine.shutdownError) { try await slot.connection() }
    }

    @Test func logsUnreachableAndReconnectedOncePerOutage() async throws {
        let channels = [try await connectedChannel(), try await connectedChannel()]
        let log = LogCapture()
        var logger = log.logger
        logger.logLevel = .info
        let refused = RedisError(.unavailable, "cannot connect to Redis at 127.0.0.1:1: refused")
        let connect = ScriptedConnect { $0.makeFailedFuture(refused) }
        let slot = connect.slot(eventLoop: channels[0].eventLoop, logger: logger)
        defer { slot.shutdown() }

        await #expect(throws: refused) { try await slot.connection() }
        // Within the 25 ms backoff: no attempt, a fast failure.
        do {
            _ = try await slot.connection()
            Issue.record("backing off")
        } catch {
            #expect(error.code == .unavailable && error.message.hasSuffix(" ms)"))
        }
        #expect(connect.attempts == 1)
        try await Task.sleep(for: .milliseconds(30))
        await #expect(throws: refused) { try await slot.connection() }
        #expect(connect.attempts == 2)

        connect.answer { _ in channels[0].eventLoop.makeSucceededFuture(RedisConnection(channel: channels[0])) }
        try await Task.sleep(for: .milliseconds(60))
        #expect(try await slot.connection().channel === channels[0])
        #expect(log.all == ["Redis unreachable", "reconnected to Redis"])

        // A closed connection is replaced by the next caller; that is no reconnection after an outage.
        connect.answer { _ in channels[1].eventLoop.makeSucceededFuture(RedisConnection(channel: channels[1])) }
        try await channels[0].close()
        #expect(try await slot.connection().channel === channels[1])
        #expect(log.all == ["Redis unreachable", "reconnected to Redis", "connection to Redis closed"])
    }
}
