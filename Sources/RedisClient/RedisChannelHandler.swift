import NIOCore

/// Commands on their way to the server: their encoded bytes and where each reply goes, in
/// order. Several commands in one request leave in one write: no other caller's command can
/// land between them (`ASKING` and the command it is for).
struct RedisRequest {
    var bytes: ByteBuffer
    var promises: [EventLoopPromise<RESPValue>]

    init(bytes: ByteBuffer, promise: EventLoopPromise<RESPValue>) {
        self.bytes = bytes
        self.promises = [promise]
    }

    init(bytes: ByteBuffer, promises: [EventLoopPromise<RESPValue>]) {
        self.bytes = bytes
        self.promises = promises
    }
}

/// One per connection: writes requests, keeps their promises in a FIFO and completes them
/// with replies in order, which is what lets many tasks pipeline over one connection.
///
/// A FIFO cannot skip a reply, so a command that times out (or a protocol error) fails every
/// pending command and closes the connection; the client then reconnects. A command whose caller
/// stopped waiting (its task was cancelled) keeps its place: its promise was failed already, and
/// completing it with the reply when it arrives changes nothing.
final class RedisChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        var promise: EventLoopPromise<RESPValue>
        var deadline: NIODeadline
    }

    private let decoder = RESPDecoder()
    private let timeout: TimeAmount
    private var pending = CircularBuffer<Pending>(initialCapacity: 16)
    /// One timer for the whole queue, aimed at the head's deadline (the earliest one).
    private var timer: Scheduled<Void>?
    private var flushPending = false
    private var closedError: RedisError?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    // MARK: outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        if let closedError {
            for reply in request.promises { reply.fail(closedError) }
            promise?.fail(closedError)
            return
        }
        let deadline = context.eventLoop.now + timeout
        for reply in request.promises { pending.append(Pending(promise: reply, deadline: deadline)) }
        context.write(wrapOutboundOut(request.bytes), promise: promise)
        armTimer(context: context)
    }

    /// Flushes once per event-loop tick, so commands submitted together leave in one syscall.
    func flush(context: ChannelHandlerContext) {
        guard !flushPending else { return }
        flushPending = true
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let (handler, context) = loopBound.value
            handler.flushPending = false
            context.flush()
        }
    }

    // MARK: inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        do {
            try decoder.feed(unwrapInboundIn(data))
            while let value = try decoder.next() {
                guard let head = pending.popFirst() else {
                    throw RedisError(.protocolError, "reply without a pending command")
                }
                if case .error(let message) = value {
                    head.promise.fail(RedisError(.server, message))
                } else {
                    head.promise.succeed(value)
                }
            }
        } catch let error as RedisError {
            closeAndFailAll(error, context: context)
        } catch {
            closeAndFailAll(RedisError(.protocolError, "\(error)"), context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(RedisError(.connectionClosed, "connection to Redis closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        closeAndFailAll(RedisError(.connectionClosed, "connection to Redis failed: \(error)"), context: context)
    }

    // MARK: timeout

    private func armTimer(context: ChannelHandlerContext) {
        guard timer == nil, let head = pending.first else { return }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: head.deadline) {
            let (handler, context) = loopBound.value
            handler.timerFired(context: context)
        }
    }

    private func timerFired(context: ChannelHandlerContext) {
        timer = nil
        guard let head = pending.first else { return }
        if head.deadline <= context.eventLoop.now {
            let ms = timeout.nanoseconds / 1_000_000
            closeAndFailAll(RedisError(.timeout, "no reply from Redis within \(ms) ms"), context: context)
        } else {
            armTimer(context: context)
        }
    }

    /// Closes the connection, then fails every pending command. In this order a caller resumed
    /// by the failure finds the connection inactive already, so its next command goes to a new
    /// connection instead of to this one, which would refuse it with the same error.
    private func closeAndFailAll(_ error: RedisError, context: ChannelHandlerContext) {
        if closedError == nil { closedError = error }
        var failing = CircularBuffer<Pending>()
        swap(&failing, &pending)
        context.close(promise: nil)
        for command in failing {
            command.promise.fail(error)
        }
        failAll(error)
    }

    private func failAll(_ error: RedisError) {
        if closedError == nil { closedError = error }
        timer?.cancel()
        timer = nil
        while let head = pending.popFirst() {
            head.promise.fail(error)
        }
    }
}
