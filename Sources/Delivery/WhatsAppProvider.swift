import Foundation
import OTPCrypto

/// The WhatsApp Business Cloud API: a code in an approved authentication template, whose text
/// Meta writes (`POST {base_url}/{api_version}/{phone_number_id}/messages`, `Authorization:
/// Bearer {access_token}`).
///
/// The code goes in the body's parameter and in the copy-code button's; the app's language
/// picks the template's language (`languages`). A 4xx answer is WhatsApp refusing this
/// message (most often error 131026: the number is not on WhatsApp): it is thrown with
/// `recipientRefused`, so the engine may send the same code by SMS instead. 429 and 5xx are
/// retried as for every gateway.
public struct WhatsAppCloudProvider: DeliveryProvider {
    public let name = "whatsapp_cloud"
    let endpoint: String
    let accessToken: String
    let template: String
    /// An app language (`en`, `pt-br`) → the template's language code (`en_US`, `pt_BR`).
    let languages: [String: String]
    let policy: GatewayPolicy

    public init(
        baseURL: String, apiVersion: String, phoneNumberID: String, accessToken: String, template: String,
        languages: [String: String], policy: GatewayPolicy
    ) {
        self.endpoint = "\(baseURL.withoutTrailingSlash)/\(apiVersion)/\(phoneNumberID)/messages"
        self.accessToken = accessToken
        self.template = template
        self.languages = Dictionary(languages.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { a, _ in a })
        self.policy = policy
    }

    /// The template language of an app language: its own entry, else its first two letters',
    /// else English's, else the language as given.
    func templateLanguage(_ language: String?) -> String {
        let wanted = (language ?? "en").lowercased()
        return languages[wanted] ?? languages[String(wanted.prefix(2))] ?? languages["en"] ?? wanted
    }

    public func deliver(_ message: OutboundMessage) async throws(DeliveryError) {
        guard message.channel == .whatsapp, let code = message.code else {
            throw DeliveryError(provider: name, reason: "the WhatsApp Cloud API carries codes on the whatsapp channel only")
        }
        let response = try await policy.send(
            provider: name,
            CurlRequest(
                url: endpoint,
                headers: ["Content-Type: application/json", "Authorization: Bearer \(accessToken)"],
                body: body(message, code: code), timeoutMilliseconds: policy.timeoutMilliseconds),
            accept: { $0.status < 500 && $0.status != 429 })
        if (200..<300).contains(response.status) { return }
        // Meta's error: {"error": {"message", "type", "code", "fbtrace_id"}}; only its number is kept.
        let answer = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
        let error = (answer?["error"] as? [String: Any])?["code"] as? Int
        throw DeliveryError(
            provider: name, reason: "refused (\(response.status), error \(error.map(String.init) ?? "unknown"))",
            recipientRefused: true)
    }

    /// The template message, the code in the body's parameter and in the copy-code button's.
    func body(_ message: OutboundMessage, code: String) -> [UInt8] {
        var body: [UInt8] = Array(#"{"messaging_product":"whatsapp","recipient_type":"individual","to":"#.utf8)
        JSONText.appendString(message.to.hasPrefix("+") ? String(message.to.dropFirst()) : message.to, to: &body)
        body.append(contentsOf: #","type":"template","template":{"name":"#.utf8)
        JSONText.appendString(template, to: &body)
        body.append(contentsOf: #","language":{"code":"#.utf8)
        JSONText.appendString(templateLanguage(message.language), to: &body)
        body.append(contentsOf: #"},"components":[{"type":"body","parameters":[{"type":"text","text":"#.utf8)
        JSONText.appendString(code, to: &body)
        body.append(contentsOf: #"}]},{"type":"button","sub_type":"url","index":"0","parameters":[{"type":"text","text":"#.utf8)
        JSONText.appendString(code, to: &body)
        body.append(contentsOf: "}]}]}}".utf8)
        return body
    }

    // MARK: the webhook

    /// The statuses `otpd_whatsapp_statuses_total{status}` counts; anything else is `other`.
    public static let statuses: Set<String> = ["sent", "delivered", "read", "failed"]

    /// Whether `signature` (`X-Hub-Signature-256`) is `sha256=` and the hex HMAC-SHA256 of the
    /// raw body under the app secret, compared in constant time.
    public static func isSigned(_ body: some Collection<UInt8>, signature: String?, appSecret: String) -> Bool {
        guard let signature, signature.hasPrefix("sha256="), signature.utf8.count == 7 + 64 else { return false }
        let expected = Array(Digest.hex(Digest.hmacSHA256(key: Array(appSecret.utf8), message: Array(body))).utf8)
        return Digest.constantTimeEquals(expected, Array(signature.utf8.dropFirst(7)))
    }

    /// A status Meta reports: the message's id, its status, and a failure's error code.
    public struct Status: Sendable, Hashable {
        public var messageID: String
        public var status: String
        public var errorCode: Int?
    }

    /// The statuses of a webhook body (`entry[].changes[].value.statuses[]`); nil when the body
    /// is not JSON of that shape. Ids are cut to 128 characters.
    public static func statuses(in body: some Collection<UInt8>) -> [Status]? {
        guard let root = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else { return nil }
        var found: [Status] = []
        for entry in root["entry"] as? [[String: Any]] ?? [] {
            for change in entry["changes"] as? [[String: Any]] ?? [] {
                let value = change["value"] as? [String: Any]
                for status in value?["statuses"] as? [[String: Any]] ?? [] {
                    let errors = status["errors"] as? [[String: Any]]
                    found.append(
                        Status(
                            messageID: String((status["id"] as? String ?? "-").prefix(128)),
                            status: status["status"] as? String ?? "other",
                            errorCode: errors?.first?["code"] as? Int))
                }
            }
        }
        return found
    }
}
