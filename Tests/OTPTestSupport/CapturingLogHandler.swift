public import Logging
import Synchronization

/// Keeps every log message so a test can read what the `log` gateway "sent" — the gateway's
/// real output, read the way a developer reads the terminal.
public final class LogCapture: Sendable {
    private let messages = Mutex<[String]>([])

    public init() {}

    public var logger: Logger {
        var logger = Logger(label: "otpd.test") { _ in Handler(capture: self) }
        logger.logLevel = .notice
        return logger
    }

    public var all: [String] { messages.withLock { $0 } }

    func append(_ message: String) { messages.withLock { $0.append(message) } }

    /// Messages the log gateway delivered to `recipient`.
    public func deliveries(to recipient: String) -> [String] {
        all.filter { $0.hasPrefix("[log gateway]") && $0.hasSuffix(" to=\(recipient)") }
    }

    /// The code in the last message delivered to `recipient`: its first run of digits (or
    /// of upper-case letters and digits, for alphanumeric codes) of `length` characters.
    public func lastCode(to recipient: String, length: Int = 6) -> String? {
        guard let message = deliveries(to: recipient).last else { return nil }
        let words = message.split(whereSeparator: { !($0.isNumber || ($0.isUppercase && $0.isASCII)) })
        return words.first(where: { $0.count == length && $0.allSatisfy(\.isNumber) }).map(String.init)
            ?? words.first(where: { $0.count == length }).map(String.init)
    }

    struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .notice

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let to = event.metadata?["to"].map { " to=\($0)" } ?? ""
            capture.append("\(event.message)\(to)")
        }
    }
}
