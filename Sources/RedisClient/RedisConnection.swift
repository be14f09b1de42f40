public import NIOCore
import NIOPosix

/// One TCP connection to Redis with a `RedisChannelHandler`: any number of tasks may send on it
/// at once; their commands are pipelined and their replies matched in order.
public struct RedisConnection: Sendable {
    let channel: any Channel

    public var isActive: Bool { channel.isActive }
    public var eventLoop: any EventLoop { channel.eventLoop }
    var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    /// Connects, then authenticates and selects the database before anyone else may use it.
    public static func connect(
        configuration: RedisConfiguration, eventLoop: any EventLoop
    ) -> EventLoopFuture<RedisConnection> {
        let timeout = TimeAmount.milliseconds(Int64(configuration.timeoutMilliseconds))
        let connected = ClientBootstrap(group: eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RedisChannelHandler(timeout: timeout))
                }
            }
            .connect(host: configuration.host, port: configuration.port)
            .map { RedisConnection(channel: $0) }
            .flatMapErrorThrowing { error in
                throw RedisError(
                    .unavailable, "cannot connect to Redis at \(configuration.host):\(configuration.port): \(error)")
            }
        return connected.flatMap { connection in
            var handshake: [[RedisArgument]] = []
            if let password = configuration.password {
                if let username = configuration.username {
                    handshake.append(["AUTH", RedisArgument(username), RedisArgument(password)])
                } else {
                    handshake.append(["AUTH", RedisArgument(password)])
                }
            }
            if configuration.database != 0 {
                handshake.append(["SELECT", RedisArgument(configuration.database)])
            }
            let replies = handshake.map { connection.sendFuture($0) }
            return EventLoopFuture.andAllSucceed(replies, on: eventLoop)
                .map { connection }
                .flatMapError { error in
                    connection.channel.close(promise: nil)
                    return eventLoop.makeFailedFuture(error)
                }
        }
    }

    /// Sends one command; the reply arrives in order with every other command on this connection.
    ///
    /// When the task is cancelled, this stops waiting and throws `RedisError(.cancelled)`; a task
    /// cancelled already sends nothing. The command itself cannot be taken back once written:
    /// its place in the handler's FIFO stays, and its reply, when it arrives, completes the
    /// promise failed already, which ignores it. The commands pipelined behind it keep their
    /// replies and their connection (closing the connection instead would fail all of them).
    /// A cancelled command that never gets a reply is ended by the command timeout, as any other.
    public func send(_ arguments: [RedisArgument]) async throws -> RESPValue {
        guard !Task.isCancelled else {
            throw RedisError(.cancelled, "task cancelled before the command was sent")
        }
        let promise = channel.eventLoop.makePromise(of: RESPValue.self)
        write(arguments, promise: promise)
        return try await withTaskCancellationHandler {
            try await promise.futureResult.get()
        } onCancel: {
            promise.fail(RedisError(.cancelled, "task cancelled while waiting for the reply from Redis"))
        }
    }

    func sendFuture(_ arguments: [RedisArgument]) -> EventLoopFuture<RESPValue> {
        let promise = channel.eventLoop.makePromise(of: RESPValue.self)
        write(arguments, promise: promise)
        return promise.futureResult
    }

    /// Sends several commands as one write: they reach Redis back to back, with no other
    /// caller's command between them. Each reply's future, in the order of the commands.
    func sendTogether(_ commands: [[RedisArgument]]) -> [EventLoopFuture<RESPValue>] {
        var bytes = channel.allocator.buffer(capacity: 0)
        for command in commands {
            var encoded = RESPEncoder.encode(command, allocator: channel.allocator)
            bytes.writeBuffer(&encoded)
        }
        let promises = commands.map { _ in channel.eventLoop.makePromise(of: RESPValue.self) }
        write(RedisRequest(bytes: bytes, promises: promises))
        return promises.map(\.futureResult)
    }

    private func write(_ arguments: [RedisArgument], promise: EventLoopPromise<RESPValue>) {
        write(RedisRequest(bytes: RESPEncoder.encode(arguments, allocator: channel.allocator), promise: promise))
    }

    private func write(_ request: RedisRequest) {
        // A write that never reaches the handler (the channel already closed) fails the replies
        // too; completing a promise a second time is a no-op.
        channel.writeAndFlush(request).whenFailure { _ in
            for promise in request.promises { promise.fail(RedisError(.connectionClosed, "connection to Redis closed")) }
        }
    }

    public func close() async {
        try? await channel.close()
    }
}
