public import Logging
public import NIOCore
public import NIOPosix
public import ServiceLifecycle
import Synchronization

/// A small pool of pipelined connections to one Redis server.
///
/// Every command picks the next connection round-robin; many tasks share each connection.
/// A connection that closes is replaced on demand. While Redis is unreachable, commands fail
/// at once with `.unavailable` and reconnects are attempted with exponential backoff
/// (25 ms doubling to 1 s), so callers answer fast and service resumes by itself.
///
/// It is a `Service`: run it in a `ServiceGroup` before the HTTP server, and it closes its
/// connections on graceful shutdown.
public final class RedisClient: Service, Sendable {
    public let configuration: RedisConfiguration
    let logger: Logger
    private let slots: [ConnectionSlot]
    private let nextSlot = Atomic<Int>(0)

    public init(
        configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "otpd.redis")
    ) {
        self.configuration = configuration
        self.logger = logger
        // Spread the connections over the event loops, one per loop first.
        var loops = Array(eventLoopGroup.makeIterator())
        if loops.isEmpty { loops = [eventLoopGroup.next()] }
        self.slots = (0..<max(1, configuration.poolSize)).map { index in
            ConnectionSlot(configuration: configuration, eventLoop: loops[index % loops.count], logger: logger)
        }
    }

    /// Sends one command and returns its reply. An error reply throws `RedisError(.server)`.
    ///
    /// A caller running on an event loop uses that loop's connection, so the command, its reply
    /// and the caller's resumption stay on one thread; other callers go round-robin. A connection
    /// that cannot be had (waiting out a reconnect backoff, or refused) is skipped for the next
    /// one, so one bad connection does not fail requests while another works.
    public func send(_ arguments: [RedisArgument]) async throws(RedisError) -> RESPValue {
        let start = slots.firstIndex { $0.eventLoop.inEventLoop }
            ?? nextSlot.wrappingAdd(1, ordering: .relaxed).oldValue & Int.max
        var firstError: RedisError?
        for offset in 0..<slots.count {
            let connection: RedisConnection
            do {
                connection = try await slots[(start &+ offset) % slots.count].connection()
            } catch let error as RedisError where error.code == .unavailable {
                if firstError == nil { firstError = error }
                continue
            } catch let error as RedisError {
                throw error
            } catch {
                throw RedisError(.unavailable, "\(error)")
            }
            do {
                return try await connection.send(arguments)
            } catch let error as RedisError {
                throw error
            } catch {
                throw RedisError(.connectionClosed, "\(error)")
            }
        }
        throw firstError!
    }

    public func send(_ arguments: RedisArgument...) async throws(RedisError) -> RESPValue {
        try await send(arguments)
    }

    /// Runs the script with EVALSHA; when the server does not know it yet (NOSCRIPT, after a
    /// restart or SCRIPT FLUSH), loads it with SCRIPT LOAD and runs it again.
    public func evalScript(
        _ script: RedisScript, keys: [RedisArgument], arguments: [RedisArgument] = []
    ) async throws(RedisError) -> RESPValue {
        var command: [RedisArgument] = ["EVALSHA", RedisArgument(script.sha1), RedisArgument(keys.count)]
        command.append(contentsOf: keys)
        command.append(contentsOf: arguments)
        do {
            return try await send(command)
        } catch where error.serverErrorPrefix == "NOSCRIPT" {
            _ = try await send("SCRIPT", "LOAD", RedisArgument(script.source))
            return try await send(command)
        }
    }

    /// Loads scripts ahead of their first use (so the first request pays no extra round trip).
    public func load(_ scripts: [RedisScript]) async throws(RedisError) {
        for script in scripts {
            let sha = try await send("SCRIPT", "LOAD", RedisArgument(script.source))
            guard sha.string == script.sha1 else {
                throw RedisError(.protocolError, "SCRIPT LOAD returned \(sha), expected \(script.sha1)")
            }
        }
    }

    /// Waits for graceful shutdown, then closes every connection.
    public func run() async throws {
        try? await gracefulShutdown()
        shutdown()
    }

    /// Closes every connection; commands sent afterwards fail with `.shutdown`.
    public func shutdown() {
        for slot in slots { slot.shutdown() }
    }
}

/// One place in the pool: a connection, the attempt to make one, or the wait before the next.
final class ConnectionSlot: Sendable {
    private enum State {
        case idle(attempt: Int)
        case connecting(EventLoopFuture<RedisConnection>, attempt: Int)
        case connected(RedisConnection)
        case backoff(until: NIODeadline, attempt: Int, error: RedisError)
        case shutdown
    }

    private enum Next {
        case ready(RedisConnection)
        case wait(EventLoopFuture<RedisConnection>)
        case started(EventLoopFuture<RedisConnection>, attempt: Int)
    }

    private let state = Mutex<State>(.idle(attempt: 0))
    private let configuration: RedisConfiguration
    let eventLoop: any EventLoop
    private let logger: Logger

    init(configuration: RedisConfiguration, eventLoop: any EventLoop, logger: Logger) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.logger = logger
    }

    func connection() async throws -> RedisConnection {
        let next = try state.withLock { state throws(RedisError) -> Next in
            switch state {
            case .connected(let connection) where connection.isActive:
                return .ready(connection)
            case .connecting(let future, _):
                return .wait(future)
            case .shutdown:
                throw RedisError(.shutdown, "Redis client is shut down")
            case .backoff(let until, let attempt, let error):
                let now = NIODeadline.now()
                if now < until {
                    let ms = (until - now).nanoseconds / 1_000_000
                    throw RedisError(.unavailable, "\(error.message) (next attempt in \(ms) ms)")
                }
                return start(&state, attempt: attempt)
            case .connected:
                return start(&state, attempt: 0)
            case .idle(let attempt):
                return start(&state, attempt: attempt)
            }
        }
        switch next {
        case .ready(let connection):
            return connection
        case .wait(let future):
            return try await future.get()
        case .started(let future, let attempt):
            // Registered outside the lock: the callback takes the lock itself.
            future.whenComplete { self.connectFinished($0, attempt: attempt) }
            return try await future.get()
        }
    }

    private func start(_ state: inout State, attempt: Int) -> Next {
        let future = RedisConnection.connect(configuration: configuration, eventLoop: eventLoop)
        state = .connecting(future, attempt: attempt)
        return .started(future, attempt: attempt)
    }

    private func connectFinished(_ result: Result<RedisConnection, any Error>, attempt: Int) {
        state.withLock { state in
            guard case .connecting = state else {
                // Shut down while connecting: nobody will use this connection.
                if case .success(let connection) = result { connection.channel.close(promise: nil) }
                return
            }
            switch result {
            case .success(let connection):
                state = .connected(connection)
                if attempt > 0 {
                    logger.info("reconnected to Redis", metadata: ["redis.host": "\(configuration.host):\(configuration.port)"])
                }
                connection.closeFuture.whenComplete { _ in self.connectionClosed(connection) }
            case .failure(let error):
                let redisError = error as? RedisError ?? RedisError(.unavailable, "\(error)")
                let delay = TimeAmount.milliseconds(min(25 << min(attempt, 6), 1000))
                state = .backoff(until: .now() + delay, attempt: attempt + 1, error: redisError)
                if attempt == 0 {
                    logger.warning("Redis unreachable", metadata: ["error": "\(redisError.message)"])
                }
            }
        }
    }

    private func connectionClosed(_ connection: RedisConnection) {
        state.withLock { state in
            if case .connected(let current) = state, current.channel === connection.channel {
                state = .idle(attempt: 0)
                logger.warning("connection to Redis closed")
            }
        }
    }

    func shutdown() {
        let connection = state.withLock { state -> RedisConnection? in
            defer { state = .shutdown }
            if case .connected(let connection) = state { return connection }
            return nil
        }
        connection?.channel.close(promise: nil)
    }
}
