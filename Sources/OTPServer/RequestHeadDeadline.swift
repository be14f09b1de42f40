import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore

/// The WebSocket-capable server, with the slow-client rule of the plain one: a connection whose
/// first request head is not complete within `idle_timeout_seconds` is closed.
///
/// hummingbird-websocket installs its idle-timeout handler only once the first head has been
/// read (when it knows the connection stays HTTP), so without this a client that connects and
/// sends nothing, or trickles its first head, would hold a place of `max_connections` forever.
struct HeadDeadlineChannel: ServerChildChannel {
    typealias Value = HTTP1WebSocketUpgradeChannel.Value
    let base: HTTP1WebSocketUpgradeChannel
    let timeout: TimeAmount

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        do {
            try channel.pipeline.syncOperations.addHandler(RequestHeadDeadline(timeout: timeout), position: .first)
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        return base.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

/// Closes the connection unless the bytes of a complete request head (up to the blank line)
/// arrive within `timeout`; from then on it only passes bytes through.
///
/// A head counts only once a byte other than CR or LF came before its CRLF CRLF: llhttp skips
/// blank lines before a request line, so `\r\n\r\n` (or a trickle of line breaks) is no
/// head, and must not stop the deadline. One pass over each byte, with two words of state, so
/// a head split across reads anywhere is still found and nothing is ever rescanned.
final class RequestHeadDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    let timeout: TimeAmount
    private var deadline: Scheduled<Void>?
    private var scanner = HeadScanner()

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !scanner.complete {
            let buffer = unwrapInboundIn(data)
            if scanner.scan(buffer.readableBytesView) {
                deadline?.cancel()
                deadline = nil
            }
        }
        context.fireChannelRead(data)
    }
}

/// Finds the end of the first request head in a stream of bytes: the first CRLF CRLF after a
/// byte that is neither CR nor LF (the blank lines llhttp skips before a request line are not
/// a head). Fed the bytes in order, split anywhere; each byte is looked at once.
struct HeadScanner {
    /// A byte other than CR or LF was seen: the request line has begun.
    private(set) var started = false
    /// How much of CR LF CR LF the last bytes matched (0-3).
    private var matched = 0
    /// The head is complete; the bytes after it are not looked at.
    private(set) var complete = false

    /// Feeds bytes; true once the head is complete.
    mutating func scan<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> Bool {
        guard !complete else { return true }
        for byte in bytes {
            switch byte {
            case 13:
                matched = matched == 2 ? 3 : 1
            case 10:
                if matched == 3 {
                    if started {
                        complete = true
                        return true
                    }
                    matched = 0
                } else {
                    matched = matched == 1 ? 2 : 0
                }
            default:
                started = true
                matched = 0
            }
        }
        return false
    }
}
