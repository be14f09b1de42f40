import Delivery
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import OTPCore
import OTPCrypto

/// Telegram: the bot's webhook (`POST /telegram/webhook`), the code-for-chat exchange
/// (`GET /target`), and the Telegram Gateway's delivery reports
/// (`POST /telegram/gateway/callback`). A thin adapter over the engine.
struct TelegramController {
    let engine: OTPEngine
    /// The Telegram bot, over the engine (a view, nothing stored).
    var bot: TelegramBot { TelegramBot(engine: engine) }
    let metrics: ServerMetrics
    /// The bot's reply queue, a service of the app; without it the webhook is not served.
    let replies: TelegramReplies?
    let credentials: BasicCredentials
    let clientAddress: ClientAddress
    /// `delivery.telegram.webhook_secret`: when set, every update must carry it.
    let webhookSecret: String?
    /// `delivery.telegram_gateway.token`: the key of the delivery reports' signatures.
    let gatewayToken: String?
    let logger: Logger

    static let secretHeader = HTTPField.Name("X-Telegram-Bot-Api-Secret-Token")!
    static let timestampHeader = HTTPField.Name("X-Request-Timestamp")!
    static let signatureHeader = HTTPField.Name("X-Request-Signature")!

    /// `webhook`: whether to serve the bot's webhook (see `buildRouter`).
    func addRoutes(to router: Router<OTPRequestContext>, webhook served: Bool) {
        if served, let replies { router.post("telegram/webhook") { request, context in try await webhook(request, context, replies: replies) } }
        router.get("target", use: target)
        router.post("telegram/gateway/callback", use: gatewayCallback)
    }

    // MARK: the bot

    /// The part of a Bot API `Update` the bot reads.
    struct Update: Decodable {
        var updateID: Int64
        var message: Message?
        struct Message: Decodable {
            var chat: Chat
            var text: String?
        }
        struct Chat: Decodable {
            var id: Int64
            /// `private`, `group`, `supergroup` or `channel`.
            var type: String?
        }
        enum CodingKeys: String, CodingKey {
            case message
            case updateID = "update_id"
        }
    }

    func webhook(_ request: Request, _ context: OTPRequestContext, replies: TelegramReplies) async throws -> Response {
        if let webhookSecret {
            let sent = request.headers[Self.secretHeader] ?? ""
            guard Digest.constantTimeEquals(Digest.sha256(Array(sent.utf8)), Digest.sha256(Array(webhookSecret.utf8))) else {
                throw APIError(
                    .unauthorized, code: "unauthorized", "the X-Telegram-Bot-Api-Secret-Token header is missing or wrong")
            }
        }
        let update = try await request.decodeJSON(as: Update.self, context: context)
        guard let message = update.message, message.text != nil else {
            metrics.recordBotUpdate(outcome: "ignored")
            return Self.ok()
        }
        // Only a private chat: a code posted in a group, supergroup or channel is readable by
        // every member. Nothing is stored for the others.
        guard message.chat.type == "private" else {
            metrics.recordBotUpdate(outcome: "not_private")
            return Self.ok()
        }
        switch try await bot.handleUpdate(updateID: update.updateID, chatID: message.chat.id) {
        case .reply(let reply):
            // Sent after this 200: Telegram waits for the answer and redelivers when it is slow.
            if replies.enqueue(reply) { metrics.recordBotUpdate(outcome: "code_sent") }
        case .duplicate:
            metrics.recordBotUpdate(outcome: "duplicate")
        case .limited:
            // Silent: a reply would let anyone make the bot write to a chat without end.
            metrics.recordBotUpdate(outcome: "rate_limited")
        }
        return Self.ok()
    }

    static func ok() -> Response {
        var json = JSONWriter()
        json.field("ok", true)
        return json.response()
    }

    struct TargetBody: Decodable {
        var password: String
        var appID: String?
        enum CodingKeys: String, CodingKey {
            case password
            case appID = "app_id"
        }
    }

    /// `GET /target {"password"}`: with HTTP Basic, the chat the bot gave that code to
    /// (consumed); with `app_id` and a Bearer token, links that chat to the token's user.
    @Sendable func target(_ request: Request, _ context: OTPRequestContext) async throws -> Response {
        let bearerToken = request.bearerToken
        if bearerToken == nil { try credentials.check(request) }
        let body = try await request.decodeJSONOrQuery(as: TargetBody.self, context: context)
        var json = JSONWriter()
        if let bearerToken {
            guard let appID = body.appID else {
                throw APIError.badRequest("missing required field 'app_id' (needed with a Bearer token)", code: "invalid_field")
            }
            let chat = try await bot.link(
                appID: appID, accessToken: bearerToken, code: body.password,
                clientIP: clientAddress.resolve(request, context: context))
            json.field("chat_id", Int(chat))
            json.field("linked", true)
            return json.response()
        }
        guard let chat = try await bot.takeCode(body.password) else { throw OTPError.botCodeNotFound }
        json.field("chat_id", Int(chat))
        return json.response()
    }

    // MARK: the Gateway's delivery reports

    /// The part of a Gateway `RequestStatus` a report carries that otpd reads.
    struct Report: Decodable {
        var requestID: String?
        var payload: String?
        var deliveryStatus: DeliveryStatus?
        struct DeliveryStatus: Decodable {
            var status: String
        }
        enum CodingKeys: String, CodingKey {
            case payload
            case requestID = "request_id"
            case deliveryStatus = "delivery_status"
        }
    }

    @Sendable func gatewayCallback(_ request: Request, _ context: OTPRequestContext) async throws -> Response {
        let body = try await request.body.collect(upTo: .max)
        guard let gatewayToken,
            TelegramGatewayProvider.isAuthentic(
                token: gatewayToken, timestamp: request.headers[Self.timestampHeader],
                signature: request.headers[Self.signatureHeader], body: body.readableBytesView, now: Int(Date().timeIntervalSince1970))
        else {
            throw APIError(
                .unauthorized, code: "unauthorized",
                "X-Request-Signature does not match the body, or X-Request-Timestamp is missing or more than 300 s off")
        }
        let report: Report
        do {
            report = try JSONDecoder().decode(Report.self, from: Data(body.readableBytesView))
        } catch {
            throw APIError.badRequest("the report is not a Gateway RequestStatus object", code: "invalid_json")
        }
        // A replay inside the signature's window: 200 (Telegram stops retrying), not counted again.
        guard try await bot.isNewGatewayReport(timestamp: request.headers[Self.timestampHeader] ?? "", body: body.readableBytesView) else {
            return Self.ok()
        }
        let status = report.deliveryStatus.map(\.status).flatMap { TelegramBot.gatewayStatuses.contains($0) ? $0 : nil } ?? "other"
        metrics.recordGatewayReport(status: status)
        // By the OTP reference (the payload otpd sent), never the code; unknown ones are only logged.
        logger.info(
            "telegram gateway report",
            metadata: [
                "status": .string(status), "otp_id": .string(Self.printable(report.payload, max: 128)),
                "request_id": .string(Self.printable(report.requestID, max: 64)),
            ])
        return Self.ok()
    }

    /// A value from outside for a log field: printable ASCII only, bounded.
    static func printable(_ value: String?, max: Int) -> String {
        guard let value else { return "-" }
        return String(value.unicodeScalars.filter { $0.isASCII && $0.value >= 0x21 && $0.value < 0x7f }.prefix(max).map(Character.init))
    }
}
