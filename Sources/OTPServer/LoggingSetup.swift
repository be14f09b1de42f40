public import Logging
public import OTPCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The process's logging, shared by `otpd serve` and `otpd-bench serve`: every logger writes
/// through one `OutputLogHandler` in the configured format to one `LogOutput` on standard
/// output, whose own thread does the writing, so no event loop ever blocks on standard output.
/// What is buffered is written before the process exits (`exit`, or `main` returning after a
/// graceful shutdown on SIGTERM). Returns the root logger.
public func bootstrapLogging(levelName: String, format: Configuration.LogFormat = .text) -> Logger {
    let level = Logger.Level(rawValue: levelName) ?? .info
    let output = LogOutput.standardOutput()
    output.install()
    atexit { LogOutput.installed?.flush() }
    LoggingSystem.bootstrap { label in
        var handler = OutputLogHandler(label: label, format: format, output: output)
        handler.logLevel = level
        return handler
    }
    var logger = Logger(label: "otpd")
    logger.logLevel = level
    return logger
}
