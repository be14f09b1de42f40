import Foundation
import OTPCrypto

/// How long one attempt may take and how often a failed send is tried again.
public struct GatewayPolicy: Sendable, Hashable {
    public var timeoutMilliseconds: Int
    public var retries: Int

    public init(timeoutMilliseconds: Int, retries: Int) {
        self.timeoutMilliseconds = timeoutMilliseconds
        self.retries = retries
    }

    /// Runs `exchange` until the gateway accepts, at most `retries + 1` times.
    ///
    /// A retry happens only when the message certainly did not go out: libcurl sent no byte
    /// of the request (refused, unreachable), or the gateway answered 429 or 5xx. A timeout
    /// after the request left, or a 4xx, is final — retrying those could reach the user twice.
    /// Backoff between attempts: 100 ms, doubling, at most 1 s.
    @discardableResult
    func send(
        provider: String, _ request: CurlRequest, accept: (CurlResponse) -> Bool = { (200..<300).contains($0.status) }
    ) async throws(DeliveryError) -> CurlResponse {
        var lastError = DeliveryError(provider: provider, reason: "not attempted")
        for attempt in 0...retries {
            if attempt > 0 {
                try? await Task.sleep(for: .milliseconds(min(100 << (attempt - 1), 1000)))
            }
            do {
                let response = try await CurlTransport.shared.perform(request)
                if accept(response) { return response }
                let reason = "gateway answered \(response.status)"
                lastError = DeliveryError(provider: provider, reason: reason, gatewayReached: true)
                guard response.status == 429 || response.status >= 500 else { throw lastError }
            } catch let failure as CurlFailure {
                // Reached once any attempt reached it: a retry after a 5xx that then cannot
                // connect was still an answered (billed) call.
                lastError = DeliveryError(
                    provider: provider, reason: failure.message, gatewayReached: lastError.gatewayReached || !failure.requestNotSent)
                guard failure.requestNotSent else { throw lastError }
            } catch let error as DeliveryError {
                throw error
            } catch {
                throw DeliveryError(provider: provider, reason: "\(error)")
            }
        }
        throw lastError
    }
}

/// Twilio's REST API: SMS through Messages.json, voice through Calls.json with TwiML `<Say>`.
public struct TwilioProvider: DeliveryProvider {
    public let name = "twilio"
    let baseURL: String
    let accountSID: String
    let authToken: String
    let from: String
    let policy: GatewayPolicy

    public init(baseURL: String, accountSID: String, authToken: String, from: String, policy: GatewayPolicy) {
        self.baseURL = baseURL.withoutTrailingSlash
        self.accountSID = accountSID
        self.authToken = authToken
        self.from = from
        self.policy = policy
    }

    public func deliver(_ message: OutboundMessage) async throws(DeliveryError) {
        let resource: String
        var fields = [("To", message.to), ("From", from)]
        switch message.channel {
        case .sms:
            resource = "Messages.json"
            fields.append(("Body", message.text))
        case .call:
            resource = "Calls.json"
            fields.append(("Twiml", "<Response><Say>\(XML.escape(message.text))</Say></Response>"))
        default:
            throw DeliveryError(provider: name, reason: "twilio carries sms and call, not \(message.channel.rawValue)")
        }
        let account = FormEncoding.percentEncode(accountSID)
        try await policy.send(
            provider: name,
            CurlRequest(
                url: "\(baseURL)/2010-04-01/Accounts/\(account)/\(resource)",
                headers: ["Content-Type: application/x-www-form-urlencoded", "Accept: application/json"],
                body: Array(FormEncoding.encode(fields).utf8), username: accountSID, password: authToken,
                timeoutMilliseconds: policy.timeoutMilliseconds))
    }
}

/// The Telegram Bot API's sendMessage.
public struct TelegramProvider: DeliveryProvider {
    public let name = "telegram"
    let apiBaseURL: String
    let botToken: String
    let policy: GatewayPolicy

    public init(apiBaseURL: String, botToken: String, policy: GatewayPolicy) {
        self.apiBaseURL = apiBaseURL.withoutTrailingSlash
        self.botToken = botToken
        self.policy = policy
    }

    public func deliver(_ message: OutboundMessage) async throws(DeliveryError) {
        guard message.channel == .telegram else {
            throw DeliveryError(provider: name, reason: "telegram carries the telegram channel, not \(message.channel.rawValue)")
        }
        try await policy.send(
            provider: name,
            CurlRequest(
                url: "\(apiBaseURL)/bot\(botToken)/sendMessage", headers: ["Content-Type: application/json"],
                body: Self.body(chatID: message.to, text: message.text), timeoutMilliseconds: policy.timeoutMilliseconds))
    }

    /// `{"chat_id": …, "text": …}`: a numeric chat id as a number, a `@channel` name as a string.
    static func body(chatID: String, text: String) -> [UInt8] {
        var body: [UInt8] = Array(#"{"chat_id":"#.utf8)
        let digits = chatID.hasPrefix("-") ? chatID.dropFirst() : Substring(chatID)
        if !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) {
            body.append(contentsOf: chatID.utf8)
        } else {
            JSONText.appendString(chatID, to: &body)
        }
        body.append(contentsOf: #","text":"#.utf8)
        JSONText.appendString(text, to: &body)
        body.append(UInt8(ascii: "}"))
        return body
    }
}

/// Any channel to your own endpoint: JSON `{"channel", "to", "subject"?, "text"}`, signed as
/// Standard Webhooks do: `webhook-id` (the same on every retry of one message, so the receiver
/// can drop duplicates), `webhook-timestamp` (Unix seconds, so it can refuse replays) and
/// `webhook-signature: v1,<base64 HMAC-SHA256(secret, "id.timestamp.body")>`. A secret written
/// `whsec_<base64>` is that base64's bytes.
public struct WebhookProvider: DeliveryProvider {
    public let name = "webhook"
    let url: String
    let secret: [UInt8]
    let policy: GatewayPolicy

    public init(url: String, secret: String, policy: GatewayPolicy) {
        self.url = url
        self.secret = Self.secretBytes(secret)
        self.policy = policy
    }

    /// `whsec_<base64>` decoded; any other secret as its UTF-8 bytes.
    static func secretBytes(_ secret: String) -> [UInt8] {
        if secret.hasPrefix("whsec_"), let data = Data(base64Encoded: String(secret.dropFirst(6))) { return Array(data) }
        return Array(secret.utf8)
    }

    public func deliver(_ message: OutboundMessage) async throws(DeliveryError) {
        var body: [UInt8] = Array(#"{"channel":"#.utf8)
        JSONText.appendString(message.channel.rawValue, to: &body)
        body.append(contentsOf: #","to":"#.utf8)
        JSONText.appendString(message.to, to: &body)
        if let subject = message.subject {
            body.append(contentsOf: #","subject":"#.utf8)
            JSONText.appendString(subject, to: &body)
        }
        body.append(contentsOf: #","text":"#.utf8)
        JSONText.appendString(message.text, to: &body)
        body.append(UInt8(ascii: "}"))
        let id = "msg_" + Base64URL.encode(SecureRandom.bytes(12))
        let timestamp = String(Int(Date().timeIntervalSince1970))
        let signature = Data(Digest.hmacSHA256(key: secret, message: Array("\(id).\(timestamp).".utf8) + body)).base64EncodedString()
        try await policy.send(
            provider: name,
            CurlRequest(
                url: url,
                headers: [
                    "Content-Type: application/json", "webhook-id: \(id)", "webhook-timestamp: \(timestamp)",
                    "webhook-signature: v1,\(signature)",
                ],
                body: body, timeoutMilliseconds: policy.timeoutMilliseconds))
    }
}

/// Email over SMTPS, or SMTP upgraded with STARTTLS (required unless `tls: none`).
public struct SMTPProvider: DeliveryProvider {
    public let name = "smtp"
    let url: String
    let from: String
    let username: String?
    let password: String?
    /// False only for `tls: none` (development): plain SMTP to a local test server.
    let requireTLS: Bool
    let policy: GatewayPolicy

    public init(url: String, from: String, username: String?, password: String?, requireTLS: Bool = true, policy: GatewayPolicy) {
        self.url = url
        self.from = from
        self.username = (username ?? "").isEmpty ? nil : username
        self.password = password
        self.requireTLS = requireTLS
        self.policy = policy
    }

    public func deliver(_ message: OutboundMessage) async throws(DeliveryError) {
        guard message.channel == .email else {
            throw DeliveryError(provider: name, reason: "smtp carries email, not \(message.channel.rawValue)")
        }
        let data: [UInt8]
        do {
            data = try MailMessage(from: from, to: message.to, subject: message.subject ?? "", text: message.text).rfc5322()
        } catch {
            throw DeliveryError(provider: name, reason: error.reason)
        }
        // SMTP answers 250 when the message is accepted; libcurl reports it as the response code.
        try await policy.send(
            provider: name,
            CurlRequest(
                url: url, body: data, username: username, password: password,
                timeoutMilliseconds: policy.timeoutMilliseconds, mailFrom: from, mailRecipients: [message.to],
                requireTLS: requireTLS),
            accept: { $0.status == 250 || $0.status == 0 })
    }
}

/// `application/x-www-form-urlencoded`, UTF-8.
enum FormEncoding {
    static func encode(_ fields: [(String, String)]) -> String {
        fields.map { "\(percentEncode($0.0))=\(percentEncode($0.1))" }.joined(separator: "&")
    }

    /// Every byte but RFC 3986's unreserved characters as `%XX`.
    static func percentEncode(_ text: String) -> String {
        let hexDigits = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.append(byte)
            default:
                out += [UInt8(ascii: "%"), hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0x0f)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

enum XML {
    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(character)
            }
        }
        return out
    }
}

extension String {
    /// A base URL without its trailing `/`, so that paths can be appended with one.
    var withoutTrailingSlash: String {
        hasSuffix("/") ? String(dropLast()) : self
    }
}
