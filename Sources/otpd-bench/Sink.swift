import ArgumentParser
import NIOCore
import NIOHTTP1
import NIOPosix

/// `otpd-bench sink --port N`: the far end of the bench's login run — an HTTP server that
/// answers every request 200 with no routing, middleware or metrics, so that the gateway
/// otpd talks to costs the shared CPUs as little as a real remote provider would.
struct Sink: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Answer every HTTP request 200 (the webhook sink of the login run).")

    @Option(help: "Port on 127.0.0.1.")
    var port: Int

    func run() async throws {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Responder())
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
        try await channel.closeFuture.get()
    }

    /// One per connection: answers each request once its end arrives, and closes the
    /// connection after the answer when the request asked for that (`Connection: close`).
    final class Responder: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        private var keepAlive = true

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let request):
                keepAlive = request.isKeepAlive
            case .body:
                break
            case .end:
                var headers: HTTPHeaders = ["Content-Length": "0"]
                if !keepAlive { headers.add(name: "Connection", value: "close") }
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                if keepAlive {
                    context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                } else {
                    let channel = context.channel
                    context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
                }
            }
        }
    }
}
