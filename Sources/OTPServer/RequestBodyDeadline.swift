import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Closes the connection when a request body is still unfinished `timeout` after the server
/// began waiting for it (slowloris): from its head, or, for a request that arrived pipelined
/// behind another, from the end of the response before it. A head that never finishes is
/// `RequestHeadDeadline`'s (WebSocket server) or the idle timeout's (plain HTTP/1.1).
///
/// One timer per connection, not one per request: it is armed when a wait begins and none is
/// pending, and when it fires it either closes the connection (the wait it finds is `timeout`
/// old), re-arms itself for the wait in progress, or lapses. A keep-alive connection serving
/// thousands of requests a second schedules about one timer per `timeout`, where a timer per
/// request cost a scheduled task (and its cancellation) on the event loop for every body.
final class RequestBodyDeadline: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let timeout: TimeAmount
    /// Request heads and request ends read, response ends written, on this connection.
    private var heads = 0
    private var bodiesEnded = 0
    private var responsesEnded = 0
    /// When the server began waiting for the body outstanding now; nil while it waits for none.
    private var waitingSince: NIODeadline?
    private var timer: Scheduled<Void>?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            heads += 1
            update(context: context)
        case .body:
            break
        case .end:
            bodiesEnded += 1
            waitingSince = nil  // a wait that goes on now is for the next request's body
            update(context: context)
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            responsesEnded += 1
            update(context: context)
        }
        context.write(data, promise: promise)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    /// The server waits for a body when a request's head has come and its end has not, and
    /// every response before it has been written (the application serves one request of a
    /// connection at a time; one pipelined behind a busy one is not yet read by anybody).
    private func update(context: ChannelHandlerContext) {
        guard bodiesEnded < heads, responsesEnded >= bodiesEnded else {
            waitingSince = nil
            return
        }
        if waitingSince == nil { waitingSince = .now() }
        if timer == nil { arm(at: waitingSince! + timeout, context: context) }
    }

    private func arm(at deadline: NIODeadline, context: ChannelHandlerContext) {
        let channel = context.channel
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            timer = nil
            guard let since = waitingSince else { return }  // no wait in progress: lapse
            let due = since + timeout
            if NIODeadline.now() >= due {
                channel.close(promise: nil)
            } else {
                arm(at: due, context: context)
            }
        }
    }
}
