import Delivery
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import OTPCore
import OTPCrypto

/// WhatsApp's status webhook: Meta's subscription check (`GET /whatsapp/webhook`) and the
/// delivery statuses of the codes sent (`POST /whatsapp/webhook`), signed with the app secret.
/// Without a `whatsapp_cloud` provider under `delivery.whatsapp` (or without its `verify_token`
/// and `app_secret`) every check is 403 and every body 401. Errors in v1's words.
struct WhatsAppController {
    let cloud: Configuration.Gateway.WhatsAppCloud?
    let metrics: ServerMetrics
    let logger: Logger

    static let signatureHeader = HTTPField.Name("X-Hub-Signature-256")!

    func addRoutes(to router: Router<OTPRequestContext>) {
        router.get("whatsapp/webhook", use: subscribe)
        router.post("whatsapp/webhook", use: statuses)
    }

    /// Meta's check: `hub.mode=subscribe` and the configured `hub.verify_token` (compared in
    /// constant time, as hashes) → 200 with `hub.challenge` as the body; anything else 403.
    @Sendable func subscribe(_ request: Request, _ context: OTPRequestContext) async throws -> Response {
        let query = request.uri.queryParameters
        guard let verifyToken = cloud?.verifyToken, query["hub.mode"] == "subscribe",
            let token = query["hub.verify_token"],
            // SHA-256 of both sides, as the Telegram webhook's secret: the length does not show either.
            Digest.constantTimeEquals(Digest.sha256(Array(String(token).utf8)), Digest.sha256(Array(verifyToken.utf8)))
        else {
            throw APIError(.forbidden, code: "forbidden", "hub.mode must be subscribe and hub.verify_token the configured verify_token")
        }
        let challenge = String(query["hub.challenge"] ?? "")
        guard !challenge.isEmpty, challenge.utf8.count <= 256, challenge.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 && $0.value < 0x7f })
        else {
            throw APIError.badRequest("hub.challenge must be 1-256 printable ASCII characters", code: "invalid_field")
        }
        return Response(
            status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: challenge)))
    }

    /// Counts each status of an authentic body in `otpd_whatsapp_statuses_total{status}` and logs
    /// it by message id (WhatsApp's statuses never carry the code).
    @Sendable func statuses(_ request: Request, _ context: OTPRequestContext) async throws -> Response {
        let body = try await request.body.collect(upTo: .max)
        guard let appSecret = cloud?.appSecret,
            WhatsAppCloudProvider.isSigned(
                body.readableBytesView, signature: request.headers[Self.signatureHeader], appSecret: appSecret)
        else {
            throw APIError(.unauthorized, code: "unauthorized", "X-Hub-Signature-256 does not match the body")
        }
        guard let statuses = WhatsAppCloudProvider.statuses(in: body.readableBytesView) else {
            throw APIError.badRequest("the body is not a WhatsApp webhook notification", code: "invalid_json")
        }
        for status in statuses {
            let label = WhatsAppCloudProvider.statuses.contains(status.status) ? status.status : "other"
            metrics.recordWhatsAppStatus(label)
            logger.info(
                "whatsapp status",
                metadata: [
                    "status": .string(label), "message_id": .string(TelegramController.printable(status.messageID, max: 128)),
                    "error_code": .string(status.errorCode.map(String.init) ?? "-"),
                ])
        }
        return TelegramController.ok()
    }
}
