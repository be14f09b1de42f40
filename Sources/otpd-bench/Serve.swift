import ArgumentParser
import Foundation
import Hummingbird
import Logging
import OTPCore
import OTPServer

/// `otpd-bench serve --config PATH`: otpd's real application, plus `POST /bench/echo` behind
/// the same middleware and decoded the same way as otpd's own routes — the ceiling of otpd's
/// HTTP stack with nothing of the engine, Redis or delivery in it.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve otpd's API plus POST /bench/echo through otpd's middleware.")

    @Option(help: "Configuration file (YAML or JSON). Default: $OTPD_CONFIG, else config/otpd.yaml.")
    var config: String?

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
        let app = try buildApplication(configuration: configuration, logger: logger) { router in
            router.post("/bench/echo") { request, context in
                try await request.decodeJSON(as: EchoBody.self, context: context)
            }
        }
        try await app.runService()
    }
}
