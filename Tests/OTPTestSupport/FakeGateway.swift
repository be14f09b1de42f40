public import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A real HTTP server on 127.0.0.1 standing in for Twilio, Telegram or a webhook receiver:
/// it records every request and answers as told (a status, or never).
public final class FakeGateway: Sendable {
    public struct Recorded: Sendable {
        public var method: String
        public var path: String
        public var headers: [String: String]
        public var body: [UInt8]
        public var text: String { String(decoding: body, as: UTF8.self) }

        /// A header's value, by case-insensitive name.
        public func header(_ name: String) -> String? { headers[name.lowercased()] }

        /// The body as `application/x-www-form-urlencoded` fields.
        public var form: [String: String] {
            var fields: [String: String] = [:]
            for pair in text.split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1).map {
                    String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
                }
                fields[parts[0]] = parts.count > 1 ? parts[1] : ""
            }
            return fields
        }
    }

    public enum Behavior: Sendable {
        case answer(status: Int, body: String)
        /// Accepts the request and never answers.
        case hang
        /// Answers 200 after a while, as a real gateway far away does.
        case answerAfter(milliseconds: Int)
        /// Answers what the function makes of the request: a status and a JSON body.
        case respond(@Sendable (Recorded) -> (status: Int, body: String))
    }

    private let recorded = Mutex<[Recorded]>([])
    private let behavior = Mutex<Behavior>(.answer(status: 200, body: "{\"ok\":true}"))
    public let port: Int

    public var requests: [Recorded] { recorded.withLock { $0 } }
    public func set(_ newBehavior: Behavior) { behavior.withLock { $0 = newBehavior } }

    private init(port: Int) { self.port = port }

    public var url: String { "http://127.0.0.1:\(port)" }

    /// Runs a fake gateway for the duration of `body`.
    public static func run<T: Sendable>(_ body: @Sendable (FakeGateway) async throws -> T) async throws -> T {
        let portPromise = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: Int.self)
        let gatewayBox = Mutex<FakeGateway?>(nil)
        let router = Router()
        let handler: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, context in
            let gateway = gatewayBox.withLock { $0 }!
            let body = try await request.body.collect(upTo: 1 << 20)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName.lowercased()] = field.value }
            let recorded = Recorded(method: "\(request.method)", path: request.uri.path, headers: headers, body: Array(body.readableBytesView))
            gateway.recorded.withLock { $0.append(recorded) }
            switch gateway.behavior.withLock({ $0 }) {
            case .respond(let answer):
                let (status, text) = answer(recorded)
                return Response(
                    status: .init(code: status), headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(string: text)))
            case .answer(let status, let text):
                return Response(
                    status: .init(code: status), headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(string: text)))
            case .hang:
                try await Task.sleep(for: .seconds(60))
                return Response(status: .ok)
            case .answerAfter(let milliseconds):
                try await Task.sleep(for: .milliseconds(milliseconds))
                return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{}")))
            }
        }
        router.on("/", method: .post, use: handler)
        router.on("**", method: .post, use: handler)
        var logger = Logger(label: "fake-gateway")
        logger.logLevel = .critical
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in portPromise.succeed(channel.localAddress?.port ?? 0) }, logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.run() }
            let gateway = FakeGateway(port: try await portPromise.futureResult.get())
            gatewayBox.withLock { $0 = gateway }
            defer { group.cancelAll() }
            return try await body(gateway)
        }
    }
}
