import Foundation
import Logging
import NIOCore
import OTPCore
import OTPTestSupport
import RedisClient
import Testing

@testable import OTPServer

/// The built `otpd` binary (scripts/test.sh builds it before the tests run).
func otpdBinary() throws -> URL { try builtBinary("otpd") }

/// A built executable of this package, by product name.
func builtBinary(_ name: String) throws -> URL {
    for directory in [".build/debug", ".build/x86_64-unknown-linux-gnu/debug", ".build/aarch64-unknown-linux-gnu/debug"] {
        let url = repositoryRoot.appendingPathComponent("\(directory)/\(name)")
        if FileManager.default.isExecutableFile(atPath: url.path) { return url }
    }
    throw NSError(domain: "otpd", code: 1, userInfo: [NSLocalizedDescriptionKey: "\(name) binary not built (run swift build)"])
}

let shippedConfigPath = repositoryRoot.appendingPathComponent("config/otpd.yaml").path

struct ProcessResult {
    var status: Int32
    var output: String
}

/// Runs otpd to completion with the given arguments and environment additions. It waits on a
/// Dispatch thread, not on Swift's cooperative pool, which the parallel tests share.
func runOTPD(_ arguments: [String], environment: [String: String] = [:]) async throws -> ProcessResult {
    let binary = try otpdBinary()
    return await onOwnThread { blockingRunOTPD(binary: binary, arguments, environment: environment) }
}

/// Starts `otpd-bench` with `arguments` on a free port and waits until it accepts connections.
func startOTPDBench(_ subcommand: String) async throws -> (ChildProcess, port: Int) {
    let port = freePort()
    let process = try ChildProcess(try builtBinary("otpd-bench").path, [subcommand, "--port", String(port)])
    for _ in 0..<100 {
        if let fd = connectLoopback(port: port) {
            close(fd)
            return (process, port)
        }
        try await Task.sleep(for: .milliseconds(50))
    }
    process.terminate()
    throw NSError(domain: "otpd", code: 1, userInfo: [NSLocalizedDescriptionKey: "otpd-bench \(subcommand) did not start"])
}

func blockingRunOTPD(binary: URL, _ arguments: [String], environment: [String: String]) -> ProcessResult {
    let output = NSTemporaryDirectory() + "otpd-out-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: output) }
    guard
        let process = try? ChildProcess(
            binary.path, arguments, environment: ProcessInfo.processInfo.environment.merging(environment) { $1 },
            outputPath: output)
    else { return ProcessResult(status: -1, output: "cannot start \(binary.path)") }
    process.wait()
    let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
    return ProcessResult(status: process.exitCode ?? -1, output: text)
}

func writeTemporaryConfig(_ text: String) throws -> String {
    let path = NSTemporaryDirectory() + "otpd-test-\(UUID().uuidString).yaml"
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

/// One HTTP/1.1 GET over a fresh TCP connection; nil when the connection fails. The blocking
/// socket calls run on a thread of their own, started at once: blocking Swift's cooperative
/// pool (two threads here) would stall every other test, and Dispatch's pool may start a
/// request late — after the SIGTERM it was meant to precede.
func httpGet(port: Int, path: String) async -> (status: Int, body: String)? {
    await onOwnThread { blockingHTTPRequest(port: port, "GET \(path)") }
}

/// One HTTP/1.1 POST of a JSON body, like `httpGet`.
func httpPost(port: Int, path: String, json: String) async -> (status: Int, body: String)? {
    await onOwnThread { blockingHTTPRequest(port: port, "POST \(path)", json: json) }
}

/// Starts `otpd serve` on `port` and waits until it answers /healthz.
func serveOTPD(config: String, port: Int, redisURL: String, environment: [String: String] = [:]) async throws -> ChildProcess {
    let process = try ChildProcess(
        try otpdBinary().path, ["serve", "--config", config],
        environment: ProcessInfo.processInfo.environment.merging(
            ["OTPD_PORT": String(port), "OTPD_REDIS_URL": redisURL, "OTPD_LOG_LEVEL": "error"].merging(environment) { $1 }
        ) { $1 })
    var up = false
    for _ in 0..<100 where !up {
        up = await httpGet(port: port, path: "/healthz")?.status == 200
        if !up { try await Task.sleep(for: .milliseconds(50)) }
    }
    guard up else {
        process.terminate()
        throw NSError(domain: "ProcessTests", code: 1, userInfo: [NSLocalizedDescriptionKey: "otpd did not start on \(port)"])
    }
    return process
}

/// Runs blocking `work` on a new thread and awaits its result.
func onOwnThread<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: work()) }.start()
    }
}

/// `requestLine` is the method and path, e.g. `GET /healthz`.
func blockingHTTPRequest(port: Int, _ requestLine: String, json: String? = nil) -> (status: Int, body: String)? {
    guard let fd = connectLoopback(port: port) else { return nil }
    defer { close(fd) }
    var request = "\(requestLine) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    if let json {
        request += "Content-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\n\r\n\(json)"
    } else {
        request += "\r\n"
    }
    _ = request.withCString { send(fd, $0, strlen($0), 0) }
    var data = [UInt8]()
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = recv(fd, &chunk, chunk.count, 0)
        if n <= 0 { break }
        data.append(contentsOf: chunk[0..<n])
    }
    let text = String(decoding: data, as: UTF8.self)
    guard text.hasPrefix("HTTP/1.1 "), let status = Int(text.dropFirst(9).prefix(3)) else { return nil }
    let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
    return (status, body)
}

@Suite("The otpd executable", .serialized)
struct ProcessTests {
    @Test func checkConfigAcceptsTheShippedConfig() async throws {
        let result = try await runOTPD(["check-config", "--config", shippedConfigPath])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("OK"))
    }

    @Test func aWrongKeyStopsStartupNamingIt() async throws {
        let path = try writeTemporaryConfig(try shippedConfigText().replacingOccurrences(of: "max_attempts: 5, resend", with: "max_attempt: 5, resend"))
        for command in ["check-config", "serve"] {
            let result = try await runOTPD([command, "--config", path])
            #expect(result.status != 0)
            #expect(result.output.contains("apps[0].otp.max_attempt: unknown key"), "\(result.output)")
        }
    }

    /// `otpd check-config` refuses a number that would overflow at run time, naming its key.
    @Test func checkConfigRefusesOverflowingNumbers() async throws {
        let path = try writeTemporaryConfig(
            try shippedConfigText().replacingOccurrences(of: "ttl_seconds: 600", with: "ttl_seconds: 4611686018427387904"))
        let result = try await runOTPD(["check-config", "--config", path])
        #expect(result.status != 0)
        #expect(result.output.contains("apps[0].otp.ttl_seconds"), "\(result.output)")
    }

    /// `otpd user unlock` reaches the identifier's node when the configuration names a Redis
    /// Cluster (it used to open a standalone client at `redis.url` whatever the mode).
    @Test func userUnlockWorksInClusterMode() async throws {
        let prefix = TestRedis.uniquePrefix("unlock")
        let nodes = TestRedis.clusterNodes.map { "\"\($0)\"" }.joined(separator: ", ")
        let yaml = """
            mode: development
            redis: {mode: cluster, nodes: [\(nodes)], key_prefix: "\(prefix)", timeout_ms: 5000}
            security: {pepper: "test-pepper-0123456789abcdef"}
            delivery:
              email: {provider: log}
            apps:
              - id: locky
                channels: [email]
                limits: {max_consecutive_failures: 1}
                tokens: {keys: [{kid: k1, secret: "test-secret-0123456789abcdef0123456789abcdef"}]}
            """
        let path = try writeTemporaryConfig(yaml)
        let configuration = try ConfigLoader.parse(yaml, environment: [:]).0
        let redis = try makeRedisClient(configuration.redis, logger: Logger(label: "test"))
        defer { redis.shutdown() }
        try await redis.start()
        let engine = OTPEngine(
            configuration: configuration, redis: redis, providers: configuration.deliveryProviders(logger: Logger(label: "test")),
            logger: Logger(label: "test"))
        let email = "locked-\(UUID().uuidString.prefix(8).lowercased())@example.com"
        let sent = try await engine.send(.init(identifier: email), appID: "locky", mode: .register)
        await #expect(throws: OTPError.self) { try await engine.activate(appID: "locky", otpID: sent.otpID, code: "000000x") }
        let result = try await runOTPD(["user", "unlock", "--config", path, "--app", "locky", email])
        #expect(result.status == 0 && result.output.contains("unlocked"), "\(result.output)")
        #expect(try await engine.unlock(appID: "locky", identifier: email) == false, "the CLI left the lockout in place")
    }

    @Test func aBadRedisURLStopsStartupNamingIt() async throws {
        let result = try await runOTPD(["serve", "--config", shippedConfigPath], environment: ["OTPD_REDIS_URL": "redis://127.0.0.1:notaport"])
        #expect(result.status != 0)
        #expect(result.output.contains("redis.url"), "\(result.output)")
        let missing = try await runOTPD(["check-config", "--config", "/nonexistent/otpd.yaml"])
        #expect(missing.status != 0)
        #expect(missing.output.contains("/nonexistent/otpd.yaml"))
    }

    @Test func configPathComesFromTheEnvironment() async throws {
        let result = try await runOTPD(["check-config"], environment: ["OTPD_CONFIG": "/nonexistent/from-env.yaml"])
        #expect(result.status != 0)
        #expect(result.output.contains("from-env.yaml"))
    }

    /// Bench routes and servers live in otpd-bench; the shipped binary knows none of them.
    @Test func theShippedBinaryHasNoBenchSurface() async throws {
        let flag = try await runOTPD(["serve", "--config", shippedConfigPath, "--bench-routes"])
        #expect(flag.status != 0)
        #expect(flag.output.contains("--bench-routes"), "\(flag.output)")
        let sink = try await runOTPD(["bench-sink", "--port", String(freePort())])
        #expect(sink.status != 0)
    }

    @Test func benchBareEchoAndSinkAnswer() async throws {
        let body = #"{"otp":"123456","otp_id":"0123456789abcdef01234567.a"}"#
        let (echo, echoPort) = try await startOTPDBench("bare-echo")
        defer { echo.terminate() }
        let echoed = await httpPost(port: echoPort, path: "/bench/echo", json: body)
        #expect(echoed?.status == 200)
        let json = try #require(try JSONSerialization.jsonObject(with: Data((echoed?.body ?? "").utf8)) as? [String: String])
        #expect(json == ["otp_id": "0123456789abcdef01234567.a", "otp": "123456"])
        #expect(await httpPost(port: echoPort, path: "/bench/echo", json: #"{"otp":1}"#)?.status == 400)

        let (sink, sinkPort) = try await startOTPDBench("sink")
        defer { sink.terminate() }
        #expect(await httpPost(port: sinkPort, path: "/anything", json: body)?.status == 200)
    }

    /// Connections beyond `server.max_connections` wait until one closes: three idle ones hold
    /// every place, and a fourth is served only once the idle timeout (1 s) has closed them.
    @Test func connectionsBeyondTheCapWait() async throws {
        let redisServer = try RedisServerProcess()
        let port = freePort()
        let config = try writeTemporaryConfig(
            try shippedConfigText().replacingOccurrences(
                of: "max_body_bytes: 65536", with: "max_body_bytes: 65536\n  idle_timeout_seconds: 1\n  max_connections: 3"))
        let process = try await serveOTPD(config: config, port: port, redisURL: redisServer.url)
        defer { process.terminate() }
        try await Task.sleep(for: .milliseconds(200))
        let held = (0..<3).compactMap { _ in connectLoopback(port: port) }
        defer { held.forEach { close($0) } }
        #expect(held.count == 3)
        try await Task.sleep(for: .milliseconds(100))
        let start = Date()
        let reply = await httpGet(port: port, path: "/healthz")
        let waited = Date().timeIntervalSince(start)
        #expect(reply?.status == 200)
        #expect(waited > 0.5, "served after \(waited) s while three connections held every place")
    }

    /// SIGTERM while requests are in flight: they all finish with 200, then otpd exits 0.
    @Test func sigtermFinishesInFlightRequestsAndExitsZero() async throws {
        let redisServer = try RedisServerProcess()
        let port = freePort()
        let process = try await serveOTPD(
            config: repositoryRoot.appendingPathComponent("config/otpd.yaml").path, port: port, redisURL: redisServer.url,
            environment: ["OTPD_REDIS_TIMEOUT_MS": "5000"])
        defer { process.terminate() }
        #expect(await httpGet(port: port, path: "/readyz")?.status == 200)

        // Pause Redis so /readyz requests stay in flight for ~1.5 s.
        let admin = RedisClient(configuration: try RedisConfiguration(url: redisServer.url))
        defer { admin.shutdown() }
        _ = try await admin.send("CLIENT", "PAUSE", "1500", "ALL")

        let statuses = try await withThrowingTaskGroup(of: Int?.self) { group in
            for _ in 0..<20 {
                group.addTask { await httpGet(port: port, path: "/readyz")?.status }
            }
            try await Task.sleep(for: .milliseconds(400))
            process.signal(SIGTERM)
            return try await group.reduce(into: [Int?]()) { $0.append($1) }
        }
        #expect(statuses.count == 20)
        #expect(statuses.allSatisfy { $0 == 200 }, "\(statuses)")

        for _ in 0..<100 where process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!process.isRunning)
        #expect(process.exitCode == 0)
        #expect(await httpGet(port: port, path: "/healthz") == nil)
    }
}
