import Foundation
import Synchronization
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import OTPCore
import OTPTestSupport
import RedisClient
import Testing
import Yams

@testable import OTPServer

/// The shipped development configuration, pointed at the given Redis.
func testConfiguration(redisURL: String = TestRedis.url, environment: [String: String] = [:]) throws -> Configuration {
    var env = environment
    env["OTPD_REDIS_URL"] = redisURL
    env["OTPD_KEY_PREFIX"] = env["OTPD_KEY_PREFIX"] ?? TestRedis.uniquePrefix("srv")
    return try ConfigLoader.parse(try shippedConfigText(), environment: env).0
}

/// The router otpd builds, for tests that inspect it or add a route to it.
func testRouter(configuration: Configuration) throws -> Router<OTPRequestContext> {
    let redis = RedisClient(configuration: .init())
    let engine = OTPEngine(
        configuration: configuration, redis: redis, providers: configuration.deliveryProviders(logger: quietLogger),
        logger: quietLogger)
    return buildRouter(configuration: configuration, redis: redis, engine: engine, metrics: ServerMetrics())
}

let quietLogger: Logger = {
    var logger = Logger(label: "otpd.test")
    logger.logLevel = .critical
    return logger
}()

func body(_ response: TestResponse) -> String { String(buffer: response.body) }

/// The response body as a JSON object; empty (so expectations on it fail) when it is not one.
func json(_ response: TestResponse) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))) as? [String: Any] ?? [:]
}

@Suite("Server: operations routes, errors, limits")
struct ServerTests {
    @Test func healthAndReadiness() async throws {
        let app = try buildApplication(configuration: try testConfiguration(), logger: quietLogger)
        try await app.test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
                #expect(body(response) == #"{"status":"ok"}"#)
            }
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
            }
        }
    }

    @Test func readinessFollowsRedisDownAndUp() async throws {
        let server = try RedisServerProcess()
        // A 5 s Redis timeout: a 503 that came from waiting it out would be slow.
        let configuration = try testConfiguration(redisURL: server.url, environment: ["OTPD_REDIS_TIMEOUT_MS": "5000"])
        let app = try buildApplication(configuration: configuration, logger: quietLogger)
        try await app.test(.live) { client in
            try await client.execute(uri: "/readyz", method: .get) { #expect($0.status == .ok) }
            server.kill()
            let start = ContinuousClock.now
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(json(response)["code"] as? String == "service_unavailable")
                #expect(response.headers[.retryAfter] != nil)
            }
            // The acceptance bound: 503 within 2 s of Redis going away (alone it takes milliseconds).
            #expect(ContinuousClock.now - start < .seconds(2))
            try server.start()
            var status: HTTPResponse.Status = .serviceUnavailable
            for _ in 0..<30 where status != .ok {
                try await Task.sleep(for: .milliseconds(100))
                status = try await client.execute(uri: "/readyz", method: .get) { $0.status }
            }
            #expect(status == .ok)
        }
    }

    @Test func unknownRouteIsAJSON404() async throws {
        let app = try buildApplication(configuration: try testConfiguration(), logger: quietLogger)
        try await app.test(.router) { client in
            try await client.execute(uri: "/nope", method: .post, body: ByteBuffer(string: "{")) { response in
                #expect(response.status == .notFound)
                #expect(json(response)["code"] as? String == "not_found")
            }
        }
    }

    @Test func oversizedBodiesAre413() async throws {
        let app = try buildApplication(configuration: try testConfiguration(), logger: quietLogger)
        let big = ByteBuffer(repeating: UInt8(ascii: "a"), count: 100 * 1024)
        try await app.test(.live) { client in
            for uri in ["/healthz", "/nope"] {
                try await client.execute(
                    uri: uri, method: .post, headers: [.contentType: "application/json"], body: big
                ) { response in
                    #expect(response.status == .contentTooLarge)
                    #expect(json(response)["code"] as? String == "payload_too_large")
                }
            }
        }
    }

    @Test func requestIDIsEchoedOrGenerated() async throws {
        let app = try buildApplication(configuration: try testConfiguration(), logger: quietLogger)
        try await app.test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get, headers: [ObservabilityMiddleware.requestIDHeader: "abc-123"]) {
                #expect($0.headers[ObservabilityMiddleware.requestIDHeader] == "abc-123")
            }
            try await client.execute(uri: "/healthz", method: .get, headers: [ObservabilityMiddleware.requestIDHeader: "bad id\u{7}"]) {
                let id = $0.headers[ObservabilityMiddleware.requestIDHeader]
                #expect(id != nil && id != "bad id\u{7}")
            }
        }
    }

    @Test func metricsCountRequestsByRouteAndStatus() async throws {
        let app = try buildApplication(configuration: try testConfiguration(), logger: quietLogger)
        try await app.test(.router) { client in
            for _ in 0..<3 { _ = try await client.execute(uri: "/healthz", method: .get) { $0.status } }
            _ = try await client.execute(uri: "/nope", method: .get) { $0.status }
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.status == .ok)
                let text = body(response)
                #expect(text.contains(#"otpd_http_requests_total{route="/healthz",method="GET",status="200"} 3"#))
                #expect(text.contains(#"status="404""#))
                #expect(text.contains("otpd_http_request_duration_seconds_bucket"))
            }
        }
    }

    @Test func redisErrorsAreCounted() async throws {
        let app = try buildApplication(
            configuration: try testConfiguration(redisURL: "redis://127.0.0.1:\(freePort())/0"), logger: quietLogger)
        try await app.test(.router) { client in
            _ = try await client.execute(uri: "/readyz", method: .get) { $0.status }
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(body(response).contains(#"otpd_redis_errors_total{kind="unavailable"} 1"#))
            }
        }
    }

    @Test func openAPIDocumentIsServedAndListsEveryRoute() async throws {
        let app = try buildApplication(configuration: try testConfiguration(), logger: quietLogger)
        let onDisk = try String(contentsOf: repositoryRoot.appendingPathComponent("openapi.yaml"), encoding: .utf8)
        try await app.test(.router) { client in
            try await client.execute(uri: "/openapi.yaml", method: .get) { response in
                #expect(response.status == .ok)
                #expect(body(response) == onDisk)
            }
        }
        let document = try #require(try Yams.load(yaml: onDisk) as? [String: Any])
        #expect((document["openapi"] as? String)?.hasPrefix("3.1") == true)
        let paths = try #require(document["paths"] as? [String: Any])
        let router = try testRouter(configuration: try testConfiguration())
        #expect(router.routes.count >= 10)
        for route in router.routes {
            // Hummingbird writes parameters as ":name"; OpenAPI as "{name}".
            let path = route.path.description.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }
                .joined(separator: "/")
            let operations = paths["/" + path] as? [String: Any]
            #expect(operations?["\(route.method)".lowercased()] != nil, "\(route.method) /\(path) is not in openapi.yaml")
        }
    }

    /// A route that decodes JSON, to check the decoding errors every JSON route shares.
    struct Greeting: Decodable {
        var name: String
        var times: Int
    }

    @Test func malformedOrMistypedJSONIsAClear400() async throws {
        let configuration = try testConfiguration()
        let router = try testRouter(configuration: configuration)
        router.post("/test/greet") { request, context in
            let greeting = try await request.decodeJSON(as: Greeting.self, context: context)
            return "\(greeting.name) × \(greeting.times)"
        }
        let app = Application(router: router, logger: quietLogger)
        try await app.test(.router) { client in
            func check(_ text: String, code: String, mentions: String) async throws {
                try await client.execute(
                    uri: "/test/greet", method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: text)
                ) { response in
                    #expect(response.status == .badRequest, "\(text)")
                    let object = json(response)
                    #expect(object["code"] as? String == code, "\(text)")
                    #expect((object["error"] as? String)?.contains(mentions) == true, "\(text): \(object)")
                }
            }
            try await check("{", code: "invalid_json", mentions: "not valid JSON")
            try await check("", code: "invalid_json", mentions: "empty")
            try await check("[1,2]", code: "invalid_field", mentions: "JSON object")
            try await check(#"{"times": 2}"#, code: "invalid_field", mentions: "'name'")
            try await check(#"{"name": 5, "times": 2}"#, code: "invalid_field", mentions: "'name' must be a string")
            try await check(#"{"name": "x", "times": "two"}"#, code: "invalid_field", mentions: "'times' must be an integer")
            try await check(#"{"name": null, "times": 1}"#, code: "invalid_field", mentions: "'name'")
            try await client.execute(
                uri: "/test/greet", method: .post, headers: [.contentType: "application/json"],
                body: ByteBuffer(string: #"{"name": "otp", "times": 2, "extra": true}"#)
            ) { response in
                #expect(response.status == .ok)
                #expect(body(response) == "otp × 2")
            }
            // The same body without saying it is JSON: 415, as a cross-site form post gets.
            try await client.execute(
                uri: "/test/greet", method: .post, headers: [.contentType: "text/plain"],
                body: ByteBuffer(string: #"{"name": "otp", "times": 2}"#)
            ) { response in
                #expect(response.status == .unsupportedMediaType)
                #expect(json(response)["code"] as? String == "unsupported_media_type")
            }
        }
    }
}

/// Everything a `LogOutput` wrote, for tests to read.
final class CapturedOutput: Sendable {
    private let bytes = Mutex<[UInt8]>([])
    var text: String { String(decoding: bytes.withLock { $0 }, as: UTF8.self) }
    var lines: [Substring] { text.split(separator: "\n") }
    func write(_ batch: UnsafeRawBufferPointer) { bytes.withLock { $0.append(contentsOf: batch) } }
}

@Suite("Logging: one line per request, written off the event loops")
struct LoggingTests {
    /// A logger writing through `OutputLogHandler` to `output`.
    func logger(_ format: Configuration.LogFormat, _ output: LogOutput) -> Logger {
        var logger = Logger(label: "otpd") { label in OutputLogHandler(label: label, format: format, output: output) }
        logger.logLevel = .info
        return logger
    }

    /// Serves two requests (one with a query string that carries a code) and returns the
    /// access-log lines written for them.
    func accessLines(_ format: Configuration.LogFormat) async throws -> [Substring] {
        let captured = CapturedOutput()
        let output = LogOutput { captured.write($0) }
        defer { output.close() }
        let app = try buildApplication(configuration: try testConfiguration(), logger: logger(format, output))
        try await app.test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
            try await client.execute(
                uri: "/healthz?code=493817", method: .get, headers: [ObservabilityMiddleware.requestIDHeader: "caller-id-1"]
            ) { #expect($0.status == .ok) }
        }
        output.flush()
        #expect(!captured.text.contains("493817"), "the query string is never logged")
        return captured.lines.filter { $0.contains("/healthz") }
    }

    @Test func aTextLinePerRequest() async throws {
        let lines = try await accessLines(.text)
        #expect(lines.count == 2, "\(lines)")
        for line in lines {
            #expect(line.contains(" info otpd:"))
            #expect(line.contains("http.method=GET"))
            #expect(line.contains("http.path=/healthz "))
            #expect(line.contains("http.status=200"))
            #expect(line.contains("hb.request.id="))
            #expect(line.hasSuffix("] request"))
        }
        #expect(lines.last?.contains("hb.request.id=caller-id-1") == true)
    }

    @Test func aJSONObjectPerRequest() async throws {
        let lines = try await accessLines(.json)
        #expect(lines.count == 2, "\(lines)")
        for line in lines {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(object["msg"] as? String == "request")
            #expect(object["level"] as? String == "info")
            #expect((object["ts"] as? String)?.hasSuffix("Z") == true)
            #expect(object["http.method"] as? String == "GET")
            #expect(object["http.path"] as? String == "/healthz")
            #expect(object["http.route"] as? String == "/healthz")
            #expect(object["http.status"] as? String == "200")
            #expect(object["duration_ms"] is String)
            #expect(object["hb.request.id"] is String)
        }
        let last = try JSONSerialization.jsonObject(with: Data(lines[1].utf8)) as? [String: Any]
        #expect(last?["hb.request.id"] as? String == "caller-id-1")
    }

    @Test func jsonEscapesWhatCouldForgeALine() throws {
        let captured = CapturedOutput()
        let output = LogOutput { captured.write($0) }
        logger(.json, output).warning("two\nlines \"quoted\"", metadata: ["nested": ["a": "1", "b": ["x", "y"]]])
        output.close()
        #expect(captured.lines.count == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(captured.lines[0].utf8)) as? [String: Any])
        #expect(object["msg"] as? String == "two\nlines \"quoted\"")
        #expect((object["nested"] as? [String: Any])?["b"] as? [String] == ["x", "y"])
    }

    @Test func aFullBufferDropsAndCountsInsteadOfBlocking() async throws {
        // The sink blocks until the gate opens: standard output stuck behind a slow reader.
        let gate = DispatchSemaphore(value: 0)
        let captured = CapturedOutput()
        let output = LogOutput(capacity: 2048) { batch in
            gate.wait()
            gate.signal()
            captured.write(batch)
        }
        let configuration = try testConfiguration()
        let redis = RedisClient(configuration: .init())
        let engine = OTPEngine(
            configuration: configuration, redis: redis, providers: configuration.deliveryProviders(logger: quietLogger),
            logger: quietLogger)
        let router = buildRouter(
            configuration: configuration, redis: redis, engine: engine, metrics: ServerMetrics(logOutput: output))
        let app = Application(router: router, logger: logger(.text, output))
        let started = ContinuousClock.now
        let exposition = try await app.test(.router) { client in
            for _ in 0..<100 {
                try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
            }
            return try await client.execute(uri: "/metrics", method: .get) { body($0) }
        }
        #expect(ContinuousClock.now - started < .seconds(10), "requests never wait for the output")
        let dropped = output.droppedLines
        #expect(dropped > 50, "2 KiB holds a handful of lines; the rest are dropped")
        let counted = exposition.split(separator: "\n").first { $0.hasPrefix("otpd_log_lines_dropped_total ") }
        let value = counted.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
        #expect(value > 50 && value <= dropped, "\(counted ?? "no otpd_log_lines_dropped_total")")
        gate.signal()
        output.close()
        #expect(captured.lines.count + dropped >= 100)
    }

    @Test func closeWritesEverythingBuffered() {
        let captured = CapturedOutput()
        let output = LogOutput { batch in
            Thread.sleep(forTimeInterval: 0.01)  // a slow output: lines pile up behind it
            captured.write(batch)
        }
        let log = logger(.text, output)
        for index in 0..<1000 { log.info("line \(index)") }
        output.close()
        #expect(captured.lines.count == 1000)
        #expect(captured.lines.last?.hasSuffix("line 999") == true)
        log.info("after close")
        #expect(output.droppedLines == 1)
    }

    @Test func flushWaitsForWhatWasAppended() {
        let captured = CapturedOutput()
        let output = LogOutput { batch in
            Thread.sleep(forTimeInterval: 0.01)
            captured.write(batch)
        }
        defer { output.close() }
        let log = logger(.json, output)
        for index in 0..<200 { log.notice("line \(index)") }
        output.flush()
        #expect(captured.lines.count == 200)
    }
}
