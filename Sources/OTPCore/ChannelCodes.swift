public import Delivery
import OTPCrypto

/// The channel API: a server chooses the code and the message; otpd stores the code (as a
/// peppered HMAC, like every code), delivers the message through the same gateways as v1, and
/// checks the code later. No app is involved: the caller is authenticated by HTTP Basic.
public struct ChannelCodes: Sendable {
    let engine: OTPEngine

    public init(engine: OTPEngine) { self.engine = engine }

    /// Where a channel-API message goes.
    public enum Destination: Sendable, Hashable {
        /// E.164, for sms, call and (through the Telegram Gateway) telegram.
        case phone(String)
        case email(String)
        /// A Telegram chat, through the bot.
        case chat(String)

        var value: String {
            switch self {
            case .phone(let value), .email(let value), .chat(let value): return value
            }
        }

        /// The destination's kind and value: what the stored code is keyed by (hashed).
        var key: String {
            switch self {
            case .phone(let value): return "phone:\(value)"
            case .email(let value): return "email:\(value)"
            case .chat(let value): return "chat:\(value)"
            }
        }

        /// A phone number (`+` optional), an email address, or a chat id (an integer; groups
        /// are negative), validated and normalized; the field's name is in the error.
        public static func parse(_ raw: String, as kind: Kind) throws(OTPError) -> Destination {
            switch kind {
            case .phone:
                guard case .phone(let phone)? = Identifier(raw, allowBareDigits: true) else {
                    throw .invalidField(name: "phone", reason: "must be a phone number in E.164 form ('+' optional, 8-15 digits)")
                }
                return .phone(phone)
            case .email:
                guard case .email(let email)? = Identifier(raw) else {
                    throw .invalidField(name: "email", reason: "must be an email address")
                }
                return .email(email)
            case .chat:
                let digits = raw.hasPrefix("-") ? raw.dropFirst() : Substring(raw)
                guard (1...19).contains(digits.count), digits.allSatisfy({ $0.isASCII && $0.isNumber }), Int64(raw) != nil else {
                    throw .invalidField(name: "chat_id", reason: "must be a Telegram chat id (an integer)")
                }
                return .chat(String(Int64(raw)!))
            }
        }

        public enum Kind: Sendable { case phone, email, chat }
    }

    /// What the caller sends: the code, how long it lives, and the message around it.
    public struct Message: Sendable {
        public var code: String
        public var lifetimeSeconds: Int
        public var subject: String?
        public var text: String

        public init(code: String, lifetimeSeconds: Int, subject: String? = nil, text: String) {
            self.code = code
            self.lifetimeSeconds = lifetimeSeconds
            self.subject = subject
            self.text = text
        }
    }

    /// The longest a channel-API code may live, and the longest message.
    public static let lifetimes = 1...86_400
    public static let maxCodeLength = 64
    public static let maxTextLength = 4096

    /// Stores the caller's code for the destination (replacing its earlier one) and delivers
    /// the message; when delivery fails, the code is deleted and `deliveryFailed` thrown.
    public func send(
        _ message: Message, channel: DeliveryChannel, to destination: Destination
    ) async throws(OTPError) {
        try Self.checkShape(message.code)
        guard Self.lifetimes.contains(message.lifetimeSeconds) else {
            throw .invalidField(name: "lifetime", reason: "must be an integer of seconds, 1-86400")
        }
        guard !message.text.isEmpty, message.text.count <= Self.maxTextLength else {
            throw .invalidField(
                name: channel == .email ? "text" : "message", reason: "must be 1-\(Self.maxTextLength) characters")
        }
        if let subject = message.subject {
            guard subject.count <= 998, !subject.contains(where: \.isNewline) else {
                throw .invalidField(name: "subject", reason: "must be at most 998 characters, on one line")
            }
        }
        let provider: (any DeliveryProvider)?
        if case .phone = destination, channel == .telegram {
            guard message.code.count >= 4, message.code.count <= 8, message.code.allSatisfy({ $0.isASCII && $0.isNumber }) else {
                throw .invalidField(name: "password", reason: "must be 4-8 digits for the Telegram Gateway")
            }
            guard let telegramGateway = engine.telegramGateway else {
                throw .channelNotSupported("telegram to a phone number needs delivery.telegram_gateway")
            }
            provider = telegramGateway
        } else {
            guard let configured = engine.providers[channel] else {
                throw .channelNotSupported("no gateway is configured for the \(channel.rawValue) channel")
            }
            provider = configured
        }
        let stored = OTPStore.ChannelCode(
            channel: channel, destination: channelDestinationHash(channel, destination),
            id: Base64URL.encode(SecureRandom.bytes(12)),
            codeHash: channelCodeHash(channel, destination, code: message.code), lifetimeSeconds: message.lifetimeSeconds)
        try await engine.store.createChannelCode(stored)
        do {
            try await engine.hand(
                OutboundMessage(
                    channel: channel, to: destination.value, subject: message.subject, text: message.text,
                    reference: "channel:\(stored.id)", code: message.code, ttlSeconds: message.lifetimeSeconds),
                to: provider, app: "-")
        } catch {
            await engine.store.cancelChannelCode(stored)
            throw .deliveryFailed
        }
    }

    /// Whether the code is the live one of the destination; a right code is consumed, and
    /// `surfaces.channel_api.max_attempts` wrong ones kill it.
    public func check(
        _ code: String, channel: DeliveryChannel, for destination: Destination
    ) async throws(OTPError) -> Bool {
        try Self.checkShape(code)
        let outcome = try await engine.store.checkChannelCode(
            channel: channel, destination: channelDestinationHash(channel, destination),
            codeHash: channelCodeHash(channel, destination, code: code), maxAttempts: engine.channelAPIMaxAttempts)
        return outcome == .valid
    }

    static func checkShape(_ code: String) throws(OTPError) {
        guard !code.isEmpty, code.count <= maxCodeLength,
            !code.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else {
            throw .invalidField(name: "password", reason: "must be 1-\(maxCodeLength) characters without control characters")
        }
    }

    func channelDestinationHash(_ channel: DeliveryChannel, _ destination: Destination) -> String {
        Digest.hex(
            Digest.hmacSHA256(key: engine.pepper, message: Array("otpd-channel-to\u{0}\(channel.rawValue)\u{0}\(destination.key)".utf8))
                .prefix(16))
    }

    func channelCodeHash(_ channel: DeliveryChannel, _ destination: Destination, code: String) -> [UInt8] {
        Digest.hmacSHA256(
            key: engine.pepper, message: Array("otpd-channel\u{0}\(channel.rawValue)\u{0}\(destination.key)\u{0}\(code)".utf8))
    }
}
