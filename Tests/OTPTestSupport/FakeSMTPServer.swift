import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// A real SMTP server on 127.0.0.1 that accepts every message and records it: envelope and
/// DATA exactly as received. It offers no STARTTLS, so clients speak plain SMTP to it.
public final class FakeSMTPServer: Sendable {
    public struct Message: Sendable {
        public var mailFrom: String
        public var recipients: [String]
        /// The DATA section, dot-unstuffed, CRLF line endings kept.
        public var data: String

        /// The value of header `name` (unfolded), or nil.
        public func header(_ name: String) -> String? {
            let head = data.components(separatedBy: "\r\n\r\n").first ?? ""
            let unfolded = head.replacingOccurrences(of: "\r\n ", with: " ")
            for line in unfolded.components(separatedBy: "\r\n") where line.lowercased().hasPrefix(name.lowercased() + ":") {
                return String(line.dropFirst(name.count + 1)).trimmingCharacters(in: .whitespaces)
            }
            return nil
        }

        public var body: String {
            let parts = data.components(separatedBy: "\r\n\r\n")
            return parts.dropFirst().joined(separator: "\r\n\r\n")
        }

        /// The body as the recipient reads it (base64 decoded when the message says so).
        public var text: String {
            guard header("Content-Transfer-Encoding")?.lowercased() == "base64",
                let data = Data(base64Encoded: body.filter { !$0.isWhitespace })
            else { return body }
            return String(decoding: data, as: UTF8.self)
        }
    }

    private let messages = Mutex<[Message]>([])
    private let channel: any Channel
    public var port: Int { channel.localAddress?.port ?? 0 }
    public var received: [Message] { messages.withLock { $0 } }

    public init() async throws {
        let box = Mutex<FakeSMTPServer?>(nil)
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Session(record: { message in
                        box.withLock { $0 }?.messages.withLock { $0.append(message) }
                    }))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        box.withLock { $0 = self }
    }

    public func close() async {
        try? await channel.close()
    }

    final class Session: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let record: @Sendable (Message) -> Void
        var buffer = ""
        var inData = false
        var current = Message(mailFrom: "", recipients: [], data: "")

        init(record: @escaping @Sendable (Message) -> Void) { self.record = record }

        func channelActive(context: ChannelHandlerContext) {
            reply(context, "220 fake.smtp ESMTP ready")
        }

        func reply(_ context: ChannelHandlerContext, _ line: String) {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: line + "\r\n")), promise: nil)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = unwrapInboundIn(data)
            buffer += bytes.readString(length: bytes.readableBytes) ?? ""
            while let range = buffer.range(of: "\r\n") {
                let line = String(buffer[..<range.lowerBound])
                buffer.removeSubrange(..<range.upperBound)
                handle(line, context)
            }
        }

        func handle(_ line: String, _ context: ChannelHandlerContext) {
            if inData {
                if line == "." {
                    inData = false
                    record(current)
                    current = Message(mailFrom: "", recipients: [], data: "")
                    reply(context, "250 OK queued")
                } else {
                    current.data += (line.hasPrefix("..") ? String(line.dropFirst()) : line) + "\r\n"
                }
                return
            }
            let upper = line.uppercased()
            if upper.hasPrefix("EHLO") {
                reply(context, "250-fake.smtp\r\n250-8BITMIME\r\n250 SIZE 10485760")
            } else if upper.hasPrefix("HELO") {
                reply(context, "250 fake.smtp")
            } else if upper.hasPrefix("MAIL FROM:") {
                current.mailFrom = Self.address(line)
                reply(context, "250 OK")
            } else if upper.hasPrefix("RCPT TO:") {
                current.recipients.append(Self.address(line))
                reply(context, "250 OK")
            } else if upper == "DATA" {
                inData = true
                reply(context, "354 End data with <CR><LF>.<CR><LF>")
            } else if upper == "QUIT" {
                reply(context, "221 Bye")
                context.close(promise: nil)
            } else if upper == "RSET" || upper == "NOOP" {
                reply(context, "250 OK")
            } else {
                reply(context, "502 Command not implemented")
            }
        }

        static func address(_ line: String) -> String {
            guard let start = line.firstIndex(of: "<"), let end = line.firstIndex(of: ">") else { return "" }
            return String(line[line.index(after: start)..<end])
        }
    }
}
