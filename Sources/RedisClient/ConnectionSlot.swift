import Logging
import NIOCore
import Synchronization

/// One place in the pool: a connection, the attempt to make one, or the wait before the next.
///
/// The decisions are `ConnectionSlotStateMachine`'s. Each event runs the machine inside the
/// lock and acts on the returned action after the lock is released: callbacks are registered,
/// channels closed, waiters resumed and lines logged with no lock held, so a callback that runs
/// at once (a future that has completed already) may take the lock again.
final class ConnectionSlot: Sendable {
    /// A caller waiting for a connection attempt: resumed with the connection or the error.
    typealias Waiter = CheckedContinuation<Result<RedisConnection, RedisError>, Never>
    typealias StateMachine = ConnectionSlotStateMachine<RedisConnection, Waiter>
    /// Makes a new connection: `RedisConnection.connect`, or a stand-in in tests.
    typealias Connect = @Sendable (RedisConfiguration, any EventLoop) -> EventLoopFuture<RedisConnection>

    private let stateMachine = Mutex(StateMachine())
    private let nextWaiterID = Atomic<Int>(0)
    private let configuration: RedisConfiguration
    let eventLoop: any EventLoop
    private let logger: Logger
    private let connect: Connect

    init(
        configuration: RedisConfiguration, eventLoop: any EventLoop, logger: Logger,
        connect: @escaping Connect = { RedisConnection.connect(configuration: $0, eventLoop: $1) }
    ) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.logger = logger
        self.connect = connect
    }

    /// The slot's connection, once connected. Callers arriving while an attempt is under way
    /// share it; while backing off after a failed attempt this fails at once with `.unavailable`.
    /// A caller whose task is cancelled stops waiting with `.cancelled`.
    func connection() async throws(RedisError) -> RedisConnection {
        while true {
            switch stateMachine.withLock({ $0.connectionRequested(now: .now()) }) {
            case .useConnection(let connection, let id):
                if connection.isActive { return connection }
                // Closed, and its close handler has not run yet: count it closed now and ask
                // again, which starts a new attempt. The handler's report then changes nothing.
                connectionClosed(id)
            case .startConnecting(let id):
                return try await waitForConnection(startingAttempt: id)
            case .waitForConnection:
                return try await waitForConnection(startingAttempt: nil)
            case .fail(let error):
                throw error
            }
        }
    }

    /// The slot's connection when it is connected and open now; nil otherwise (nothing is
    /// started). For commands whose reply nobody waits for.
    func readyConnection() -> RedisConnection? {
        guard case .connected(let connection, _) = stateMachine.withLock({ $0.state }), connection.isActive else { return nil }
        return connection
    }

    /// Waits for the attempt under way, having started it first when `attempt` is given.
    ///
    /// The caller that reserved an attempt starts it even when its own task is cancelled, since
    /// others may be waiting for it already. It starts it only after adding itself as a waiter,
    /// so an attempt that completes at once still finds it.
    private func waitForConnection(
        startingAttempt attempt: StateMachine.ConnectionID?
    ) async throws(RedisError) -> RedisConnection {
        let waiterID = nextWaiterID.wrappingAdd(1, ordering: .relaxed).oldValue
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { (waiter: Waiter) in
                switch stateMachine.withLock({ $0.addWaiter(waiter, id: waiterID, now: .now()) }) {
                case .wait:
                    break
                case .useConnection(let connection):
                    waiter.resume(returning: .success(connection))
                case .fail(let error):
                    waiter.resume(returning: .failure(error))
                }
                if let attempt { startConnecting(attempt) }
                // Cancelled before the waiter was added, the handler below found nothing to resume.
                if Task.isCancelled { waiterCancelled(waiterID) }
            }
        } onCancel: {
            waiterCancelled(waiterID)
        }
        return try result.get()
    }

    private func startConnecting(_ id: StateMachine.ConnectionID) {
        connect(configuration, eventLoop).whenComplete { result in
            switch result {
            case .success(let connection):
                self.connectSucceeded(connection, id: id)
            case .failure(let error):
                self.connectFailed(id: id, error: error as? RedisError ?? RedisError(.unavailable, "\(error)"))
            }
        }
    }

    private func connectSucceeded(_ connection: RedisConnection, id: StateMachine.ConnectionID) {
        switch stateMachine.withLock({ $0.connectSucceeded(connection, id: id) }) {
        case .registerCloseHandler(let connection, let id, let waiters, let reconnected):
            if reconnected {
                logger.info("reconnected to Redis", metadata: ["redis.host": "\(configuration.host):\(configuration.port)"])
            }
            // Runs at once when the channel has closed already; no lock is held here.
            connection.closeFuture.whenComplete { _ in self.connectionClosed(id) }
            for waiter in waiters { waiter.resume(returning: .success(connection)) }
        case .closeConnection(let connection):
            connection.channel.close(promise: nil)
        }
    }

    private func connectFailed(id: StateMachine.ConnectionID, error: RedisError) {
        switch stateMachine.withLock({ $0.connectFailed(id: id, error: error, now: .now()) }) {
        case .failWaiters(let waiters, let error, let firstFailure):
            if firstFailure {
                logger.warning("Redis unreachable", metadata: ["error": "\(error.message)"])
            }
            for waiter in waiters { waiter.resume(returning: .failure(error)) }
        case .none:
            break
        }
    }

    private func connectionClosed(_ id: StateMachine.ConnectionID) {
        switch stateMachine.withLock({ $0.connectionClosed(id: id) }) {
        case .logClosed:
            logger.warning("connection to Redis closed")
        case .none:
            break
        }
    }

    private func waiterCancelled(_ id: StateMachine.WaiterID) {
        switch stateMachine.withLock({ $0.waiterCancelled(id: id) }) {
        case .fail(let waiter, let error):
            waiter.resume(returning: .failure(error))
        case .none:
            break
        }
    }

    /// Closes the connection and fails the callers waiting for one; later requests fail with
    /// `.shutdown`. An attempt under way is closed when it completes.
    func shutdown() {
        switch stateMachine.withLock({ $0.shutdown() }) {
        case .closeConnection(let connection):
            connection.channel.close(promise: nil)
        case .failWaiters(let waiters, let error):
            for waiter in waiters { waiter.resume(returning: .failure(error)) }
        case .none:
            break
        }
    }
}
