import Foundation
import OTPCrypto

/// Telegram's Gateway API: a code to any phone number that has Telegram, with no bot and no
/// chat link (`POST {base_url}/sendVerificationMessage`, `Authorization: Bearer {token}`).
///
/// Telegram writes the message around the code itself, so this provider sends
/// `OutboundMessage.code`, not its text. An answer `{"ok": false, …}` means Telegram will not
/// carry it (most often: the number is not on Telegram); the error is thrown with
/// `recipientRefused`, so the engine may send the same code by SMS instead.
public struct TelegramGatewayProvider: DeliveryProvider {
    public let name = "telegram_gateway"
    let baseURL: String
    let token: String
    let callbackURL: String?
    let senderUsername: String?
    let policy: GatewayPolicy

    public init(baseURL: String, token: String, callbackURL: String?, senderUsername: String?, policy: GatewayPolicy) {
        self.baseURL = baseURL.withoutTrailingSlash
        self.token = token
        self.callbackURL = (callbackURL ?? "").isEmpty ? nil : callbackURL
        self.senderUsername = (senderUsername ?? "").isEmpty ? nil : senderUsername
        self.policy = policy
    }

    /// Telegram's bounds on `ttl`.
    public static let ttlRange = 30...3600
    /// Telegram's bound on `payload`, in bytes.
    public static let maxPayloadBytes = 128

    public func deliver(_ message: OutboundMessage) async throws(DeliveryError) {
        guard message.channel == .telegram, let code = message.code else {
            throw DeliveryError(provider: name, reason: "the Telegram Gateway carries codes on the telegram channel only")
        }
        let response = try await policy.send(
            provider: name,
            CurlRequest(
                url: "\(baseURL)/sendVerificationMessage",
                headers: ["Content-Type: application/json", "Authorization: Bearer \(token)"],
                body: body(message, code: code), timeoutMilliseconds: policy.timeoutMilliseconds),
            // A refusal comes as {"ok": false} with a 2xx or 4xx status; 429 and 5xx are retried.
            accept: { $0.status < 500 && $0.status != 429 })
        let answer = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
        if answer?["ok"] as? Bool == true, (200..<300).contains(response.status) { return }
        if let answer, answer["ok"] as? Bool == false {
            // Telegram's error is an upper-case word (PHONE_NUMBER_INVALID…): keep it short and plain.
            let error = String(String(describing: answer["error"] ?? "refused").prefix(64).filter { $0.isLetter || $0.isNumber || $0 == "_" })
            throw DeliveryError(provider: name, reason: "refused: \(error)", recipientRefused: true)
        }
        throw DeliveryError(provider: name, reason: "gateway answered \(response.status) without a result", gatewayReached: true)
    }

    func body(_ message: OutboundMessage, code: String) -> [UInt8] {
        var body: [UInt8] = Array(#"{"phone_number":"#.utf8)
        JSONText.appendString(message.to.hasPrefix("+") ? message.to : "+" + message.to, to: &body)
        body.append(contentsOf: #","code":"#.utf8)
        JSONText.appendString(code, to: &body)
        let ttl = min(max(message.ttlSeconds ?? 300, Self.ttlRange.lowerBound), Self.ttlRange.upperBound)
        body.append(contentsOf: #","ttl":\#(ttl)"#.utf8)
        if let reference = message.reference {
            body.append(contentsOf: #","payload":"#.utf8)
            JSONText.appendString(String(decoding: reference.utf8.prefix(Self.maxPayloadBytes), as: UTF8.self), to: &body)
        }
        if let callbackURL {
            body.append(contentsOf: #","callback_url":"#.utf8)
            JSONText.appendString(callbackURL, to: &body)
        }
        if let senderUsername {
            body.append(contentsOf: #","sender_username":"#.utf8)
            JSONText.appendString(senderUsername, to: &body)
        }
        body.append(UInt8(ascii: "}"))
        return body
    }

    /// How far a delivery report's timestamp may be from now.
    public static let callbackWindowSeconds = 300

    /// Whether a delivery report really comes from Telegram: `signature` must be the hex
    /// HMAC-SHA256 of `timestamp + "\n" + body` under the key SHA-256(token), compared in
    /// constant time, and `timestamp` (Unix seconds) within 300 s of `now`.
    public static func isAuthentic(
        token: String, timestamp: String?, signature: String?, body: some Collection<UInt8>, now: Int
    ) -> Bool {
        guard let timestamp, let signature, timestamp.utf8.count <= 20, let seconds = Int(timestamp),
            abs(now - seconds) <= callbackWindowSeconds
        else { return false }
        let key = Digest.sha256(Array(token.utf8))
        let expected = Digest.hex(Digest.hmacSHA256(key: key, message: Array("\(timestamp)\n".utf8) + Array(body)))
        return Digest.constantTimeEquals(Array(expected.utf8), Array(signature.lowercased().utf8))
    }
}

/// The Bot API calls of `otpd telegram`: `setWebhook` and `getWebhookInfo`.
public struct TelegramBotAPI: Sendable {
    let apiBaseURL: String
    let botToken: String
    let timeoutMilliseconds: Int

    public init(apiBaseURL: String, botToken: String, timeoutMilliseconds: Int) {
        self.apiBaseURL = apiBaseURL.withoutTrailingSlash
        self.botToken = botToken
        self.timeoutMilliseconds = timeoutMilliseconds
    }

    /// Whether a webhook secret token is one Telegram takes: 1-256 characters of `A-Z a-z 0-9 _ -`.
    public static func isValidSecretToken(_ secret: String) -> Bool {
        (1...256).contains(secret.utf8.count)
            && secret.utf8.allSatisfy { $0.isASCIIAlphanumeric || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }

    /// Points the bot's updates at `url` (message updates only), with the secret token Telegram
    /// then sends in `X-Telegram-Bot-Api-Secret-Token`. Returns Telegram's answer.
    public func setWebhook(url: String, secretToken: String?) async throws(DeliveryError) -> [String: any Sendable] {
        var body: [UInt8] = Array(#"{"url":"#.utf8)
        JSONText.appendString(url, to: &body)
        if let secretToken {
            body.append(contentsOf: #","secret_token":"#.utf8)
            JSONText.appendString(secretToken, to: &body)
        }
        body.append(contentsOf: #","allowed_updates":["message"]}"#.utf8)
        return try await call("setWebhook", body: body)
    }

    /// Telegram's view of the webhook: its URL, pending updates, the last error.
    public func webhookInfo() async throws(DeliveryError) -> [String: any Sendable] {
        try await call("getWebhookInfo", body: Array("{}".utf8))
    }

    private func call(_ method: String, body: [UInt8]) async throws(DeliveryError) -> [String: any Sendable] {
        let response = try await GatewayPolicy(timeoutMilliseconds: timeoutMilliseconds, retries: 0).send(
            provider: "telegram",
            CurlRequest(
                url: "\(apiBaseURL)/bot\(botToken)/\(method)", headers: ["Content-Type: application/json"], body: body,
                timeoutMilliseconds: timeoutMilliseconds),
            accept: { _ in true })
        guard let answer = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] else {
            throw DeliveryError(provider: "telegram", reason: "\(method): HTTP \(response.status), not a JSON answer")
        }
        guard answer["ok"] as? Bool == true else {
            throw DeliveryError(
                provider: "telegram", reason: "\(method): \(answer["description"] ?? "HTTP \(response.status)")")
        }
        return (answer["result"] as? [String: Any]).map(Self.sendable) ?? ["result": "\(answer["result"] ?? "")"]
    }

    /// JSON values as plain Sendable ones (strings, numbers, booleans, nested dictionaries).
    private static func sendable(_ object: [String: Any]) -> [String: any Sendable] {
        object.mapValues { value -> any Sendable in
            switch value {
            case let nested as [String: Any]: return sendable(nested)
            case let number as NSNumber: return number.stringValue
            case let text as String: return text
            default: return "\(value)"
            }
        }
    }
}

extension UInt8 {
    var isASCIIAlphanumeric: Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(self) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(self)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self)
    }
}
