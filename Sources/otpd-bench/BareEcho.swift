import ArgumentParser
import Hummingbird
import Logging

/// `otpd-bench bare-echo --port N`: the framework ceiling — a bare Hummingbird application
/// with one `POST /bench/echo` route that decodes the small JSON body and encodes it again,
/// with none of otpd's middleware (no metrics, request ids, error mapping or body limit).
struct BareEcho: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bare-echo", abstract: "Serve POST /bench/echo on a bare Hummingbird application.")

    @Option(help: "Port on 127.0.0.1.")
    var port: Int

    func run() async throws {
        let router = Router()
        router.post("/bench/echo") { request, context in
            try await request.decode(as: EchoBody.self, context: context)
        }
        var logger = Logger(label: "otpd-bench")
        logger.logLevel = .warning
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "otpd-bench"),
            logger: logger)
        try await app.runService()
    }
}
