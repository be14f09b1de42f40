public import Logging
public import NIOCore
public import NIOPosix
public import ServiceLifecycle

/// A Redis client for one server or for a Redis Cluster, with one API for both.
///
/// - Standalone: a small pool of pipelined connections to one server (`RedisNodePool`).
/// - Cluster: one such pool per node, commands routed by the hash slot of their first key,
///   redirects followed and the slot map refreshed as the cluster changes (`RedisClusterClient`).
///
/// While Redis is unreachable, commands fail at once with `.unavailable` and reconnects are
/// attempted with exponential backoff (25 ms doubling to 1 s), so callers answer fast and
/// service resumes by itself.
///
/// It is a `Service`: run it in a `ServiceGroup` before the HTTP server, and it closes its
/// connections on graceful shutdown.
public final class RedisClient: Service, Sendable {
    private enum Backend: Sendable {
        case standalone(RedisNodePool)
        case cluster(RedisClusterClient)
    }

    private let backend: Backend

    /// A client of one Redis server.
    public init(
        configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "otpd.redis")
    ) {
        self.backend = .standalone(RedisNodePool(configuration: configuration, eventLoopGroup: eventLoopGroup, logger: logger))
    }

    /// A client of a Redis Cluster. `onEvent` is told of every redirect and map refresh
    /// (for metrics); it is called on the task that saw it and must return quickly.
    public init(
        cluster configuration: RedisClusterConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "otpd.redis"),
        onEvent: @escaping @Sendable (RedisClusterEvent) -> Void = { _ in }
    ) {
        self.backend = .cluster(
            RedisClusterClient(configuration: configuration, eventLoopGroup: eventLoopGroup, logger: logger, onEvent: onEvent))
    }

    /// Sends one command and returns its reply. An error reply throws `RedisError(.server)`.
    ///
    /// In a cluster the command goes to the master of its first key's slot (its first argument;
    /// `EVAL`/`EVALSHA` use their keys, which must share a slot). Keyless commands go to any
    /// master, except `PING`, `SCRIPT` and `FLUSHALL`/`FLUSHDB`, which go to every master: so
    /// `PING` succeeds only while every one of the 16384 slots has a master that answers.
    ///
    /// A caller whose task is cancelled stops waiting, for a connection or for the reply, and
    /// gets `RedisError(.cancelled)`; a task cancelled before the command is sent sends nothing.
    public func send(_ arguments: [RedisArgument]) async throws(RedisError) -> RESPValue {
        switch backend {
        case .standalone(let pool):
            return try await pool.send(arguments)
        case .cluster(let cluster):
            return try await cluster.send(arguments, route: try RedisCommandRoute(arguments))
        }
    }

    public func send(_ arguments: RedisArgument...) async throws(RedisError) -> RESPValue {
        try await send(arguments)
    }

    /// Runs the script with EVALSHA; when the server does not know it yet (NOSCRIPT, after a
    /// restart, a SCRIPT FLUSH or a failover), runs it with EVAL and its source, which also
    /// caches it there: one more round trip, and no window between loading and running in
    /// which another flush could lose it again.
    ///
    /// The keys must all hash to one cluster slot — in standalone mode too, so a script that
    /// could not run on a cluster fails in every test. Otherwise this throws `.crossSlot`
    /// before anything is sent.
    public func evalScript(
        _ script: RedisScript, keys: [RedisArgument], arguments: [RedisArgument] = []
    ) async throws(RedisError) -> RESPValue {
        let slot = try RedisCommandRoute.commonSlot(of: keys, command: "script \(script.sha1.prefix(12))")
        var command: [RedisArgument] = ["EVALSHA", RedisArgument(script.sha1), RedisArgument(keys.count)]
        command.append(contentsOf: keys)
        command.append(contentsOf: arguments)
        let route = slot.map(RedisCommandRoute.slot) ?? .anyMaster
        do {
            return try await send(command, route: route)
        } catch where error.serverErrorPrefix == "NOSCRIPT" {
            // In a cluster the NOSCRIPT may come from a node the command was redirected to (a
            // slot migrating, a failover): EVAL follows the same redirects, and whichever node
            // runs it knows the script from then on.
            command[0] = "EVAL"
            command[1] = RedisArgument(script.source)
            return try await send(command, route: route)
        }
    }

    /// Runs several scripts and returns each one's reply (or error), in order. Standalone: they
    /// are pipelined on one connection (one write, one round trip) and Redis runs them in this
    /// order. In a cluster their keys may live on different nodes, so they run one after the
    /// other. Each script's keys must share a slot, as for `evalScript`. Once sent, the scripts'
    /// replies are waited for even if the task is cancelled (the command timeout bounds the wait).
    public func evalScripts(_ calls: [RedisScriptCall]) async -> [Result<RESPValue, RedisError>] {
        guard case .standalone(let pool) = backend else {
            var results: [Result<RESPValue, RedisError>] = []
            for call in calls {
                do {
                    results.append(.success(try await evalScript(call.script, keys: call.keys, arguments: call.arguments)))
                } catch {
                    results.append(.failure(error))
                }
            }
            return results
        }
        var commands: [[RedisArgument]] = []
        commands.reserveCapacity(calls.count)
        for call in calls {
            do {
                _ = try RedisCommandRoute.commonSlot(of: call.keys, command: "script \(call.script.sha1.prefix(12))")
            } catch {
                return calls.map { _ in .failure(error) }
            }
            commands.append(Self.evalCommand(call))
        }
        let results: [Result<RESPValue, RedisError>]
        do {
            results = try await pool.send(pipelined: commands)
        } catch {
            return calls.map { _ in .failure(error) }
        }
        var answered: [Result<RESPValue, RedisError>] = []
        answered.reserveCapacity(results.count)
        for (call, result) in zip(calls, results) {
            if case .failure(let error) = result, error.serverErrorPrefix == "NOSCRIPT" {
                do {
                    answered.append(.success(try await evalScript(call.script, keys: call.keys, arguments: call.arguments)))
                } catch {
                    answered.append(.failure(error))
                }
            } else {
                answered.append(result)
            }
        }
        return answered
    }

    /// Runs a script without waiting for its reply, for a best-effort write nobody needs the
    /// answer of: written at once on the open connection of the caller's event loop (so it runs
    /// after the commands the caller sent on it before). A `NOSCRIPT` reply (Redis lost its
    /// scripts) loads the script and runs it again, on that connection and still without
    /// waiting; other errors are dropped. Returns false, having sent nothing, when it cannot be
    /// written at once (cluster mode, or no open connection): the caller then awaits
    /// `evalScript`. No task is left running.
    @discardableResult
    public func evalScriptWithoutWaiting(_ call: RedisScriptCall) -> Bool {
        guard case .standalone(let pool) = backend, Self.shareASlot(call.keys),
            let reply = pool.sendWithoutWaiting(Self.evalCommand(call))
        else { return false }
        reply.whenFailure { error in
            guard (error as? RedisError)?.serverErrorPrefix == "NOSCRIPT" else { return }
            // This callback runs on the connection's event loop, so both go out on it, in order.
            _ = pool.sendWithoutWaiting(["SCRIPT", "LOAD", RedisArgument(call.script.source)])
            _ = pool.sendWithoutWaiting(Self.evalCommand(call))
        }
        return true
    }

    private static func shareASlot(_ keys: [RedisArgument]) -> Bool {
        do {
            _ = try RedisCommandRoute.commonSlot(of: keys, command: "script")
            return true
        } catch {
            return false
        }
    }

    private static func evalCommand(_ call: RedisScriptCall) -> [RedisArgument] {
        var command: [RedisArgument] = ["EVALSHA", RedisArgument(call.script.sha1), RedisArgument(call.keys.count)]
        command.reserveCapacity(3 + call.keys.count + call.arguments.count)
        command.append(contentsOf: call.keys)
        command.append(contentsOf: call.arguments)
        return command
    }

    /// Loads scripts ahead of their first use (so the first request pays no extra round trip);
    /// in a cluster, on every master.
    public func load(_ scripts: [RedisScript]) async throws(RedisError) {
        for script in scripts {
            let sha = try await send(["SCRIPT", "LOAD", RedisArgument(script.source)], route: .everyMaster)
            guard sha.string == script.sha1 else {
                throw RedisError(.protocolError, "SCRIPT LOAD returned \(sha), expected \(script.sha1)")
            }
        }
    }

    /// Connects before the first request. Standalone: nothing to do (connections are made on
    /// demand). Cluster: reads the slot map from the seeds, and fails with a message when no
    /// seed answers (`.unavailable`) or a slot has no master (`.clusterDown`).
    public func start() async throws(RedisError) {
        if case .cluster(let cluster) = backend { try await cluster.start() }
    }

    private func send(_ arguments: [RedisArgument], route: RedisCommandRoute) async throws(RedisError) -> RESPValue {
        switch backend {
        case .standalone(let pool):
            return try await pool.send(arguments)
        case .cluster(let cluster):
            return try await cluster.send(arguments, route: route)
        }
    }

    /// Changes the cluster client's slot map (tests make it wrong, to see a redirect followed).
    func withClusterMap(_ body: (inout RedisClusterMap) -> Void) {
        if case .cluster(let cluster) = backend { cluster.withMap(body) }
    }

    /// Waits for graceful shutdown, then closes every connection.
    public func run() async throws {
        try? await gracefulShutdown()
        shutdown()
    }

    /// Closes every connection; commands sent afterwards fail with `.shutdown`.
    public func shutdown() {
        switch backend {
        case .standalone(let pool): pool.shutdown()
        case .cluster(let cluster): cluster.shutdown()
        }
    }
}
