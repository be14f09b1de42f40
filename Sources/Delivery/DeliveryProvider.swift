/// The ways a code can reach a person; an app enables some of them, each has one gateway.
public enum DeliveryChannel: String, Sendable, Hashable, Codable, CaseIterable {
    case email, sms, call, telegram, whatsapp
}

/// One message to one recipient on one channel.
public struct OutboundMessage: Sendable, Hashable {
    public var channel: DeliveryChannel
    /// An email address, an E.164 phone number or a Telegram chat id.
    public var to: String
    /// Email only.
    public var subject: String?
    public var text: String
    /// What the message is about (the otp_id), for correlating logs; never sent to the recipient
    /// (the Telegram Gateway echoes it back in its delivery reports, as `payload`).
    public var reference: String?
    /// The code itself, for a gateway that writes its own message around it (the Telegram
    /// Gateway); the other gateways send `text`.
    public var code: String?
    /// How long the code stays valid, in seconds (the Telegram Gateway shows it).
    public var ttlSeconds: Int?
    /// The language the message is in (an app's template language, such as `en`), for a gateway
    /// that picks its own text by language (WhatsApp's template languages).
    public var language: String?

    public init(
        channel: DeliveryChannel, to: String, subject: String? = nil, text: String, reference: String? = nil,
        code: String? = nil, ttlSeconds: Int? = nil, language: String? = nil
    ) {
        (self.channel, self.to, self.subject, self.text, self.reference, self.code, self.ttlSeconds, self.language)
            = (channel, to, subject, text, reference, code, ttlSeconds, language)
    }
}

/// Why a message did not go out. `description` names the gateway and the failure, never the text.
public struct DeliveryError: Error, Sendable, CustomStringConvertible {
    public var provider: String
    public var reason: String
    /// The gateway answered that it cannot reach this recipient (the Telegram Gateway: the
    /// number is not on Telegram): nothing went out, and another channel may carry the code.
    public var recipientRefused: Bool
    /// The request reached the gateway: it answered (whatever it answered), or the request
    /// left and no answer came in time. A provider bills, and flags the account for, such
    /// calls even when it refuses the number, so they spend the sender's quotas. False only
    /// when nothing reached a gateway (no connection, no such host, a message refused before
    /// any request was made).
    public var gatewayReached: Bool

    public init(provider: String, reason: String, recipientRefused: Bool = false, gatewayReached: Bool = false) {
        self.provider = provider
        self.reason = reason
        self.recipientRefused = recipientRefused
        self.gatewayReached = gatewayReached || recipientRefused
    }

    public var description: String { "\(provider): \(reason)" }
}

/// A gateway that can carry messages: Twilio, SMTP, Telegram, a webhook, or the log.
///
/// `deliver` returns once the gateway has accepted the message, or throws; it never blocks
/// an event loop.
public protocol DeliveryProvider: Sendable {
    var name: String { get }
    func deliver(_ message: OutboundMessage) async throws(DeliveryError)
}
