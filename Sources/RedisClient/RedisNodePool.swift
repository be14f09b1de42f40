import Logging
import NIOCore
import Synchronization

/// A small pool of pipelined connections to one Redis server: all of a standalone client's
/// connections, or a cluster client's connections to one node.
///
/// Every command picks the next connection round-robin; many tasks share each connection.
/// A connection that closes is replaced on demand. While the server is unreachable, commands
/// fail at once with `.unavailable` and reconnects are attempted with exponential backoff
/// (25 ms doubling to 1 s), so callers answer fast and service resumes by itself.
final class RedisNodePool: Sendable {
    let configuration: RedisConfiguration
    private let slots: [ConnectionSlot]
    private let nextSlot = Atomic<Int>(0)

    init(configuration: RedisConfiguration, eventLoopGroup: any EventLoopGroup, logger: Logger) {
        self.configuration = configuration
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
    func send(_ arguments: [RedisArgument]) async throws(RedisError) -> RESPValue {
        let connection = try await connection()
        return try await Self.send(arguments, on: connection)
    }

    /// Sends `ASKING` and then the command on one connection, pipelined, as an `ASK` redirect
    /// asks: the target node serves the migrating slot for the next command of that connection only.
    func sendAsking(_ arguments: [RedisArgument]) async throws(RedisError) -> RESPValue {
        let connection = try await connection()
        let reply = Self.writeAsking(arguments, on: connection)
        do {
            return try await reply.get()
        } catch let error as RedisError {
            throw error
        } catch {
            throw RedisError(.connectionClosed, "\(error)")
        }
    }

    /// Writes `ASKING` and the command on `connection` as one write, so no other caller's
    /// command can come between them (it would take the ASKING, and the command would be
    /// answered MOVED); the command's reply (ASKING's `+OK` is dropped).
    static func writeAsking(_ arguments: [RedisArgument], on connection: RedisConnection) -> EventLoopFuture<RESPValue> {
        connection.sendTogether([["ASKING"], arguments])[1]
    }

    /// Sends several commands pipelined on one connection (one write): Redis runs them in this
    /// order. Each reply (or error) in the order of the commands.
    func send(pipelined commands: [[RedisArgument]]) async throws(RedisError) -> [Result<RESPValue, RedisError>] {
        guard !Task.isCancelled else { throw RedisError(.cancelled, "task cancelled before the command was sent") }
        let connection = try await connection()
        let replies = commands.map { connection.sendFuture($0) }
        var results: [Result<RESPValue, RedisError>] = []
        results.reserveCapacity(replies.count)
        for reply in replies {
            do {
                results.append(.success(try await reply.get()))
            } catch let error as RedisError {
                results.append(.failure(error))
            } catch {
                results.append(.failure(RedisError(.connectionClosed, "\(error)")))
            }
        }
        return results
    }

    /// Writes a command on the connection of the caller's event loop (else the next one) when
    /// that connection is open, without waiting for its reply; the reply's future, or nil when no
    /// connection is open now (nothing was sent). On the caller's own connection the command
    /// runs after everything the caller sent before.
    func sendWithoutWaiting(_ arguments: [RedisArgument]) -> EventLoopFuture<RESPValue>? {
        let start = slots.firstIndex { $0.eventLoop.inEventLoop }
            ?? nextSlot.wrappingAdd(1, ordering: .relaxed).oldValue & Int.max
        for offset in 0..<slots.count {
            if let connection = slots[(start &+ offset) % slots.count].readyConnection() {
                return connection.sendFuture(arguments)
            }
        }
        return nil
    }

    private func connection() async throws(RedisError) -> RedisConnection {
        let start = slots.firstIndex { $0.eventLoop.inEventLoop }
            ?? nextSlot.wrappingAdd(1, ordering: .relaxed).oldValue & Int.max
        var firstError: RedisError?
        for offset in 0..<slots.count {
            do {
                return try await slots[(start &+ offset) % slots.count].connection()
            } catch where error.code == .unavailable {
                if firstError == nil { firstError = error }
            }
        }
        throw firstError!
    }

    private static func send(_ arguments: [RedisArgument], on connection: RedisConnection) async throws(RedisError) -> RESPValue {
        do {
            return try await connection.send(arguments)
        } catch let error as RedisError {
            throw error
        } catch {
            throw RedisError(.connectionClosed, "\(error)")
        }
    }

    /// Closes every connection; commands sent afterwards fail with `.shutdown`.
    func shutdown() {
        for slot in slots { slot.shutdown() }
    }
}
