public import Logging

/// Development only: writes each message, code included, to the log instead of sending it.
/// Production mode refuses it (see `Configuration.validate`).
public struct LogProvider: DeliveryProvider {
    public let name = "log"
    let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public func deliver(_ message: OutboundMessage) async throws(DeliveryError) {
        var metadata: Logger.Metadata = ["channel": "\(message.channel.rawValue)", "to": "\(message.to)"]
        if let subject = message.subject { metadata["subject"] = "\(subject)" }
        if let reference = message.reference { metadata["otp_id"] = "\(reference)" }
        logger.notice("[log gateway] \(message.text)", metadata: metadata)
    }
}
