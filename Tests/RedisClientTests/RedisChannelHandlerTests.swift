import NIOCore
import NIOEmbedded
import Testing

@testable import RedisClient

@Suite("RedisChannelHandler, driven byte by byte")
struct RedisChannelHandlerTests {
    func request(_ channel: EmbeddedChannel, _ arguments: [RedisArgument]) -> EventLoopFuture<RESPValue> {
        let promise = channel.eventLoop.makePromise(of: RESPValue.self)
        let bytes = RESPEncoder.encode(arguments, allocator: channel.allocator)
        channel.writeAndFlush(RedisRequest(bytes: bytes, promise: promise), promise: nil)
        return promise.futureResult
    }

    @Test func encodesBinarySafeArgv() throws {
        let buffer = RESPEncoder.encode(["SET", "k", RedisArgument(bytes: [0, 13, 10])], allocator: .init())
        #expect(Array(buffer.readableBytesView) == Array("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\n".utf8) + [0, 13, 10] + Array("\r\n".utf8))
    }

    @Test func matchesPipelinedRepliesInOrderFromSplitBytes() throws {
        let channel = EmbeddedChannel(handler: RedisChannelHandler(timeout: .seconds(5)))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 6379)).wait()
        defer { _ = try? channel.finish() }
        let first = request(channel, ["GET", "a"])
        let second = request(channel, ["LRANGE", "l", "0", "-1"])
        let third = request(channel, ["BAD"])
        channel.embeddedEventLoop.run()  // the deferred flush
        var written = ByteBuffer()
        while var chunk = try channel.readOutbound(as: ByteBuffer.self) { written.writeBuffer(&chunk) }
        #expect(String(buffer: written).hasPrefix("*2\r\n$3\r\nGET\r\n$1\r\na\r\n*4\r\n$6\r\nLRANGE"))

        // Three replies, delivered one byte at a time.
        let replies = Array("$5\r\nhello\r\n*2\r\n:1\r\n$-1\r\n-ERR unknown command\r\n".utf8)
        for byte in replies {
            try channel.writeInbound(ByteBuffer(bytes: [byte]))
        }
        #expect(try first.wait() == .bulkString(Array("hello".utf8)))
        #expect(try second.wait() == .array([.integer(1), .null]))
        #expect(throws: RedisError(.server, "ERR unknown command")) { try third.wait() }
    }

    /// An ASK redirect's `ASKING` and the command it is for leave as one write: no other
    /// caller's command on the connection can land between them (it would take the ASKING,
    /// and the command would be answered MOVED instead).
    @Test func askingAndItsCommandLeaveAsOneWrite() throws {
        let channel = EmbeddedChannel(handler: RedisChannelHandler(timeout: .seconds(5)))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 6379)).wait()
        defer { _ = try? channel.finish() }
        let reply = RedisNodePool.writeAsking(["GET", "k"], on: RedisConnection(channel: channel))
        let other = request(channel, ["GET", "other"])
        channel.embeddedEventLoop.run()
        var writes: [String] = []
        while let chunk = try channel.readOutbound(as: ByteBuffer.self) { writes.append(String(buffer: chunk)) }
        #expect(writes.first == "*1\r\n$6\r\nASKING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", "\(writes)")
        #expect(writes.count == 2 && writes.last?.hasSuffix("other\r\n") == true)
        // ASKING's +OK is consumed; the command gets its own reply, the other caller its own.
        try channel.writeInbound(ByteBuffer(string: "+OK\r\n$1\r\nv\r\n$1\r\nw\r\n"))
        #expect(try reply.wait() == .bulkString(Array("v".utf8)))
        #expect(try other.wait() == .bulkString(Array("w".utf8)))
    }

    @Test func garbageFailsEveryPendingCommandAndCloses() throws {
        let channel = EmbeddedChannel(handler: RedisChannelHandler(timeout: .seconds(5)))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 6379)).wait()
        let first = request(channel, ["PING"])
        let second = request(channel, ["PING"])
        channel.embeddedEventLoop.run()
        try? channel.writeInbound(ByteBuffer(string: "?garbage\r\n"))
        #expect(throws: RedisError.self) { try first.wait() }
        #expect(throws: RedisError.self) { try second.wait() }
        #expect(!channel.isActive)
    }

    @Test func timeoutFailsThePendingCommandsAndClosesTheConnection() throws {
        let channel = EmbeddedChannel(handler: RedisChannelHandler(timeout: .milliseconds(100)))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 6379)).wait()
        let pending = request(channel, ["BLPOP", "q", "0"])
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(50))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(60))
        do {
            _ = try pending.wait()
            Issue.record("should have timed out")
        } catch let error as RedisError {
            #expect(error.code == .timeout)
        }
        #expect(!channel.isActive)
    }
}
