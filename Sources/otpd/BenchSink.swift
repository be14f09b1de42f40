import ArgumentParser
import NIOCore
import NIOHTTP1
import NIOPosix

/// `otpd bench-sink --port N`: the far end of the bench's login run — an HTTP server that
/// answers every request 200 with no routing, middleware or metrics, so that the gateway
/// otpd talks to costs the shared CPUs as little as a real remote provider would.
struct BenchSink: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-sink", abstract: "Answer every HTTP request 200 (a webhook sink for scripts/bench.sh).",
        shouldDisplay: false)

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

    final class Responder: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .end = unwrapInboundIn(data) else { return }
            let head = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Length": "0"])
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
