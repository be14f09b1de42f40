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
    ///
    /// A caller whose task is cancelled stops waiting, for a connection or for the reply, and
    /// gets `RedisError(.cancelled)`; a task cancelled before the command is sent sends nothing.
    public func send(_ arguments: [RedisArgument]) async throws(RedisError) -> RESPValue {
        let start = slots.firstIndex { $0.eventLoop.inEventLoop }
            ?? nextSlot.wrappingAdd(1, ordering: .relaxed).oldValue & Int.max
        var firstError: RedisError?
        for offset in 0..<slots.count {
            let connection: RedisConnection
            do {
                connection = try await slots[(start &+ offset) % slots.count].connection()
            } catch where error.code == .unavailable {
                if firstError == nil { firstError = error }
                continue
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
