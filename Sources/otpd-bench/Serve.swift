import ArgumentParser
import Foundation
import Hummingbird
import Logging
import OTPCore
import OTPServer
import RedisClient

/// `otpd-bench serve --config PATH`: otpd's real application, plus `POST /bench/echo` behind
/// the same middleware and decoded the same way as otpd's own routes — the ceiling of otpd's
/// HTTP stack with nothing of the engine, Redis or delivery in it — and `POST /bench/echo-redis`,
/// the same plus two Redis round trips: the floor of a route that waits on Redis twice.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve otpd's API plus POST /bench/echo (and /bench/echo-redis) through otpd's middleware.")

    @Option(help: "Configuration file (YAML or JSON). Default: $OTPD_CONFIG, else config/otpd.yaml.")
    var config: String?

    static let smallest = RedisScript("return 1")

    func run() async throws {
        let path = ConfigLoader.path(explicit: config)
        let configuration: Configuration
        do {
            configuration = try ConfigLoader.load(path: path).0
        } catch {
            FileHandle.standardError.write(Data("otpd-bench: invalid configuration in \(path): \(error)\n".utf8))
            throw ExitCode(2)
        }
        // The log gateway writes at notice: bench.sh reads the pool's codes from these lines.
        let logger = bootstrapLogging(levelName: configuration.logLevel, format: configuration.logFormat)
        // A client of its own (the same configuration) for the echo that also waits on Redis.
        let redis = try makeRedisClient(configuration.redis, logger: logger)
        let app = try buildApplication(configuration: configuration, logger: logger) { router in
            router.post("/bench/echo") { request, context in
                try await request.decodeJSON(as: EchoBody.self, context: context)
            }
            // The floor of a route that waits on Redis twice, as an activation does (take the
            // client's unit, then the script): the echo plus two round trips of the smallest
            // script, one after the other.
            router.post("/bench/echo-redis") { request, context in
                let body = try await request.decodeJSON(as: EchoBody.self, context: context)
                for _ in 0..<2 { _ = try await redis.evalScript(Self.smallest, keys: ["bench:{echo}"]) }
                return body
            }
        }
        defer { redis.shutdown() }
        try await app.runService()
    }
}
