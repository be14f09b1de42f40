public import Delivery
import OTPCrypto

/// The Telegram bot: a person writes to it, it answers with a code; a server trades the code
/// for the chat id (`GET /target`), or a signed-in user's app trades it to link the chat to the
/// user, after which the v1 telegram channel reaches that chat.
public struct TelegramBot: Sendable {
    let engine: OTPEngine

    public init(engine: OTPEngine) { self.engine = engine }

    /// A message the bot sends back to a chat.
    public struct Reply: Sendable, Hashable {
        public var chatID: String
        public var text: String
    }

    public enum UpdateOutcome: Sendable, Hashable {
        /// A new code was stored for the chat: send this reply.
        case reply(Reply)
        /// The update was handled before (Telegram redelivers until it gets a 200): nothing to send.
        case duplicate
        /// The chat had `codes_per_chat_per_hour` codes this hour: nothing stored, nothing to send.
        case limited
    }

    /// Handles one text message sent to the bot in a private chat: once per `update_id` (for a
    /// day), a fresh 6-digit code stored for the chat for `code_lifetime` seconds, at most
    /// `codes_per_chat_per_hour` per chat (counted in the same script, across replicas).
    public func handleUpdate(updateID: Int64, chatID: Int64) async throws(OTPError) -> UpdateOutcome {
        // A code has a chat or none: when a live code has the same value, draw another.
        for _ in 0..<8 {
            let code = SecureRandom.code(length: 6, alphabet: Array("0123456789"))
            switch try await engine.store.storeBotCode(
                updateID: updateID, codeHash: codeHash(code), chatID: chatID, lifetimeSeconds: engine.botCodeLifetime,
                codesPerChatPerHour: engine.botCodesPerChatPerHour)
            {
            case .stored: return .reply(Reply(chatID: String(chatID), text: Self.text(code: code, lifetime: engine.botCodeLifetime)))
            case .duplicate: return .duplicate
            case .limited: return .limited
            case .taken: continue
            }
        }
        throw .storageFailed(StorageFailure(.failed, "no free bot code after 8 draws"))
    }

    /// "Your code is 123456. It is valid for 5 minutes." — the code is the message's only
    /// number of 4 or more digits (a lifetime of an hour or more is written in hours).
    static func text(code: String, lifetime: Int) -> String {
        let span: String
        if lifetime < 3600 {
            let minutes = max(1, (lifetime + 59) / 60)
            span = minutes == 1 ? "1 minute" : "\(minutes) minutes"
        } else {
            let hours = (lifetime + 3599) / 3600
            span = hours == 1 ? "1 hour" : "\(hours) hours"
        }
        return "Your code is \(code). It is valid for \(span)."
    }

    /// Sends the bot's reply through the telegram gateway (with its retries); a failure is
    /// logged and counted, and the person can simply write to the bot again.
    public func deliver(_ reply: Reply) async {
        try? await engine.hand(OutboundMessage(channel: .telegram, to: reply.chatID, text: reply.text), to: engine.providers[.telegram], app: "-")
    }

    /// The chat a bot code was handed to, consumed: a code answers once. Nil when no live code matches.
    public func takeCode(_ code: String) async throws(OTPError) -> Int64? {
        let code = code.trimmingASCIIWhitespace()
        guard code.count == 6, code.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return try await engine.store.takeBotCode(hash: codeHash(code)).flatMap { Int64($0) }
    }

    /// Links the chat a bot code names to the user an access token names. Wrong codes count
    /// against the client's hourly failures (`failed_attempts_per_ip_per_hour`), as wrong OTPs do.
    public func link(appID: String, accessToken: String, code: String, clientIP: String?) async throws(OTPError) -> Int64 {
        let app = try engine.app(appID)
        let user = try await engine.currentUser(appID: appID, accessToken: accessToken)
        // A code that names no chat keeps the client's unit (a wrong guess); a right one gives it back.
        let chat = try await engine.withReservations(
            engine.failureCounter(app: app, clientIP: clientIP), app: app, giveBack: { (chat: Int64?) in chat == nil ? .none : .all }
        ) { () async throws(OTPError) in try await takeCode(code) }
        guard let chat else { throw .botCodeNotFound }
        guard try await engine.store.linkChat(app: app.id, userID: user.id, chatID: String(chat)) else {
            throw .invalidAccessToken("the user no longer exists")
        }
        return chat
    }

    func codeHash(_ code: String) -> String {
        Digest.hex(Digest.hmacSHA256(key: engine.pepper, message: Array("otpd-bot\u{0}\(code)".utf8)).prefix(16))
    }

    // MARK: Telegram Gateway delivery reports

    /// The delivery statuses a Gateway report may carry; anything else is `other`.
    public static let gatewayStatuses: Set<String> = ["sent", "delivered", "read", "expired", "revoked"]

    /// Whether an authentic delivery report (its `X-Request-Timestamp` and raw body) is seen
    /// for the first time; a replay inside the signature's window is not (every replica sees
    /// the mark in Redis for 600 s).
    public func isNewGatewayReport(timestamp: String, body: some Collection<UInt8>) async throws(OTPError) -> Bool {
        let hash = Digest.hex(Digest.sha256(Array("\(timestamp)\n".utf8) + Array(body)).prefix(16))
        return try await engine.store.firstSighting(ofGatewayReport: hash)
    }
}
