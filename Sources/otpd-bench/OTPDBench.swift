import ArgumentParser
import NIOCore
import NIOPosix

/// `otpd-bench`: the servers `scripts/bench.sh` measures otpd against. Not shipped: `otpd`
/// itself has no route or subcommand that exists only for measuring.
@main
struct OTPDBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "otpd-bench",
        abstract: "Servers for scripts/bench.sh (otpd with an echo route, a bare echo, a webhook sink), and the cost of a token.",
        subcommands: [Serve.self, BareEcho.self, Sink.self, JWTBench.self])

    static func main() async {
        // As in otpd: Swift Concurrency's jobs run on NIO's event loop threads, so every server
        // here runs on the same executor as the product it is compared with.
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        await main(nil)
    }
}
