public import Logging

/// The process's logging: one handler writing to standard output at the configured level,
/// shared by `otpd serve` and `otpd-bench serve`. Returns the root logger.
public func bootstrapLogging(levelName: String) -> Logger {
    let level = Logger.Level(rawValue: levelName) ?? .info
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardOutput(label: label)
        handler.logLevel = level
        return handler
    }
    var logger = Logger(label: "otpd")
    logger.logLevel = level
    return logger
}
