import ArgumentParser
import Delivery
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import OTPCore
import OTPServer
import RedisClient

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@main
struct OTPD: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "otpd",
        abstract: "A self-hosted one-time-passcode service.",
        subcommands: [
            Serve.self, CheckConfig.self, UserCommand.self, TelegramCommand.self, ImportCommand.self, KeysCommand.self, Lua.self,
        ],
        defaultSubcommand: Serve.self)

    static func main() async {
        // Run Swift Concurrency's jobs on NIO's event loop threads rather than a second thread
        // pool: a request handler then resumes on the thread that does its I/O, without a hop
        // per await. First thing, before any job reaches the global executor.
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        await main(nil)
    }
}

struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "Configuration file (YAML or JSON). Default: $OTPD_CONFIG, else config/otpd.yaml.")
    var config: String?

    /// Loads the configuration or exits with status 2 and a message naming the key at fault.
    func load() throws -> (Configuration, [String], String) {
        let path = ConfigLoader.path(explicit: config)
        do {
            let (configuration, warnings) = try ConfigLoader.load(path: path)
            return (configuration, warnings, path)
        } catch {
            var stderr = StandardError()
            print("otpd: invalid configuration in \(path): \(error)", to: &stderr)
            throw ExitCode(2)
        }
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the API.")

    @OptionGroup var options: ConfigOption

    func run() async throws {
        let (configuration, warnings, path) = try options.load()
        let logger = bootstrapLogging(levelName: configuration.logLevel, format: configuration.logFormat)
        if configuration.mode == .development {
            logger.warning("DEVELOPMENT MODE: this configuration is not safe for production")
        }
        for warning in warnings { logger.warning("\(warning)") }
        logger.info(
            "starting otpd",
            metadata: [
                "config": "\(path)", "address": "\(configuration.server.host):\(configuration.server.port)",
                "apps": "\(configuration.apps.map(\.id).joined(separator: ","))",
            ])
        let app = try buildApplication(configuration: configuration, logger: logger)
        try await app.runService()
    }
}

struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user", abstract: "Administer users.", subcommands: [Unlock.self])

    struct Unlock: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Lift the lockout of an identifier (after too many wrong codes in a row) before it ends.")

        @OptionGroup var options: ConfigOption
        @Option(help: "The app's id.") var app: String
        @Argument(help: "The email address or phone number.") var identifier: String

        func run() async throws {
            let (configuration, _, _) = try options.load()
            // Standalone or cluster, as the configuration says (a lockout lives on its slot's node).
            let logger = Logger(label: "otpd")
            let redis = try makeRedisClient(configuration.redis, logger: logger)
            defer { redis.shutdown() }
            let engine = OTPEngine(configuration: configuration, redis: redis, providers: [:], logger: logger)
            do {
                try await redis.start()
                let wasLocked = try await engine.unlock(appID: app, identifier: identifier)
                print(wasLocked ? "unlocked" : "was not locked")
            } catch {
                var stderr = StandardError()
                print("otpd: \(error)", to: &stderr)
                throw ExitCode(1)
            }
        }
    }
}

struct TelegramCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "telegram", abstract: "Put the Telegram bot online, and see Telegram's view of it.",
        subcommands: [SetWebhook.self, WebhookInfo.self])

    /// The Bot API of `delivery.telegram`, which must use the telegram provider.
    static func botAPI(_ options: ConfigOption) throws -> (TelegramBotAPI, Configuration.Gateway.Telegram) {
        let (configuration, _, path) = try options.load()
        guard case .telegram(let bot) = configuration.delivery.telegram else {
            var stderr = StandardError()
            print("otpd: \(path): delivery.telegram must use provider: telegram (with its bot_token)", to: &stderr)
            throw ExitCode(2)
        }
        return (
            TelegramBotAPI(
                apiBaseURL: bot.apiBaseURL, botToken: bot.botToken, timeoutMilliseconds: configuration.delivery.timeoutMilliseconds),
            bot
        )
    }

    static func fail(_ error: any Error) -> ExitCode {
        var stderr = StandardError()
        print("otpd: \(error)", to: &stderr)
        return ExitCode(1)
    }

    struct SetWebhook: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-webhook",
            abstract: "Point the bot's updates at otpd (Bot API setWebhook), with delivery.telegram.webhook_secret.")

        @OptionGroup var options: ConfigOption
        @Option(help: "The public https URL of otpd's POST /telegram/webhook.") var url: String

        func run() async throws {
            let (api, bot) = try TelegramCommand.botAPI(options)
            guard url.hasPrefix("https://") || url.hasPrefix("http://") else {
                throw ValidationError("--url must be an https:// URL (Telegram accepts https only)")
            }
            if let secret = bot.webhookSecret, !TelegramBotAPI.isValidSecretToken(secret) {
                throw ValidationError("delivery.telegram.webhook_secret must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
            }
            do {
                _ = try await api.setWebhook(url: url, secretToken: bot.webhookSecret)
            } catch {
                throw TelegramCommand.fail(error)
            }
            print("webhook set to \(url)\(bot.webhookSecret == nil ? " (no secret token: set delivery.telegram.webhook_secret)" : " with the secret token")")
        }
    }

    struct WebhookInfo: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "webhook-info", abstract: "Show Telegram's view of the webhook (Bot API getWebhookInfo).")

        @OptionGroup var options: ConfigOption

        func run() async throws {
            let (api, _) = try TelegramCommand.botAPI(options)
            let info: [String: any Sendable]
            do {
                info = try await api.webhookInfo()
            } catch {
                throw TelegramCommand.fail(error)
            }
            for key in ["url", "pending_update_count", "last_error_date", "last_error_message", "max_connections", "ip_address"] {
                if let value = info[key] { print("\(key): \(value)") }
            }
        }
    }
}

struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import", abstract: "Import data from another service.", subcommands: [Users.self])

    struct Users: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the users of an export (CSV with a header row, or JSON Lines) as if they had registered.",
            discussion: """
                Fields: email, phone, first_name, last_name, created_at (RFC 3339), status (active or unverified); \
                other columns are ignored. An existing user is left as it is, so running an import again changes \
                nothing. Each rejected record is reported as 'line N: reason', then 'created C, existing E, \
                rejected R'. Exit status 0 when nothing was rejected, 1 otherwise.
                """)

        @OptionGroup var options: ConfigOption
        @Option(help: "The app's id.") var app: String
        @Argument(help: "The export file.") var file: String

        func run() async throws {
            let (configuration, _, _) = try options.load()
            var stderr = StandardError()
            guard let data = FileManager.default.contents(atPath: file) else {
                print("otpd: cannot read '\(file)'", to: &stderr)
                throw ExitCode(2)
            }
            let logger = Logger(label: "otpd")
            let redis = try makeRedisClient(configuration.redis, logger: logger)
            defer { redis.shutdown() }
            let engine = OTPEngine(configuration: configuration, redis: redis, providers: [:], logger: logger)
            let summary: ImportSummary
            do {
                try await redis.start()
                summary = try await UserImporter(engine: engine).run(appID: app, file: [UInt8](data)) { line, reason in
                    print("line \(line): \(reason)")
                }
            } catch OTPError.appNotFound(let id) {
                print("otpd: no app has the id '\(id)'", to: &stderr)
                throw ExitCode(2)
            } catch {
                print("otpd: the import stopped: \(error). What was stored stays; run the import again to finish it.", to: &stderr)
                throw ExitCode(1)
            }
            print(summary)
            if summary.rejected > 0 { throw ExitCode(1) }
        }
    }
}

struct CheckConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config", abstract: "Validate the configuration and exit (0 when valid).")

    @OptionGroup var options: ConfigOption

    func run() async throws {
        let (configuration, warnings, path) = try options.load()
        for warning in warnings { print("warning: \(warning)") }
        print("\(path): OK (mode \(configuration.mode.rawValue), \(configuration.apps.count) app(s))")
    }
}

struct Lua: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print one of otpd's Lua scripts (to load or benchmark it with redis-cli).",
        discussion: """
            The text printed is what EVALSHA runs: a preamble that names KEYS and ARGV, the shared \
            helpers, and the script. --keys and --arguments print the names of its KEYS and ARGV \
            instead, one a line in order (ARGV[1] is always `clock`: '' for Redis's own), so a \
            caller such as scripts/bench.sh builds its call from the script's declaration.
            """)

    @Argument(help: "One of: \(Scripts.named.keys.sorted().joined(separator: ", ")).")
    var name: String

    @Flag(help: "Print the names of the script's KEYS, in order.")
    var keys = false

    @Flag(help: "Print the names of the script's ARGV, in order.")
    var arguments = false

    func run() throws {
        guard let contract = Scripts.named[name] else {
            throw ValidationError("no script named '\(name)'; one of \(Scripts.named.keys.sorted().joined(separator: ", "))")
        }
        if keys { print(contract.keys.joined(separator: "\n")) }
        if arguments { print(contract.argv.joined(separator: "\n")) }
        if !keys && !arguments { print(contract.script.source) }
    }
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) { _ = string.withCString { Glibc.write(2, $0, strlen($0)) } }
}
