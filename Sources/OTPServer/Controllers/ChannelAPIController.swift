import Delivery
import Foundation
import HTTPTypes
import Hummingbird
import OTPCore
import OTPCrypto

/// The channel API (server to server): `POST /sms`, `/call`, `/email`, `/telegram` with the
/// caller's code and message, and `GET …/check`. HTTP Basic on every route.
/// A thin adapter: authenticate, decode, call the engine, encode.
struct ChannelAPIController {
    let engine: OTPEngine
    /// The channel API's codes, over the engine (a view, nothing stored).
    var codes: ChannelCodes { ChannelCodes(engine: engine) }
    let credentials: BasicCredentials

    func addRoutes(to router: Router<OTPRequestContext>) {
        // The channels the channel table exposes here, each on the path its row names.
        for channel in DeliveryChannel.allCases {
            guard let path = channel.traits.channelAPIPath else { continue }
            router.post(RouterPath(path)) { request, context in try await create(request, context, channel: channel) }
            router.get(RouterPath("\(path)/check")) { request, context in try await check(request, context, channel: channel) }
        }
    }

    /// Every create body in one: each channel reads its own fields.
    struct CreateBody: Decodable {
        var phone: String?
        var email: String?
        var chatID: ChatID?
        var password: String
        var lifetime: Int
        var message: String?
        var subject: String?
        var text: String?
        enum CodingKeys: String, CodingKey {
            case phone, email, password, lifetime, message, subject, text
            case chatID = "chat_id"
        }
    }

    func create(_ request: Request, _ context: OTPRequestContext, channel: DeliveryChannel) async throws -> Response {
        try credentials.check(request)
        let body = try await request.decodeJSON(as: CreateBody.self, context: context)
        let destination = try Self.destination(channel, phone: body.phone, email: body.email, chatID: body.chatID)
        let text: String
        if channel == .email {
            text = try Self.require(body.text, "text")
            _ = try Self.require(body.subject, "subject")
        } else {
            text = try Self.require(body.message, "message")
        }
        try await codes.send(
            .init(code: body.password, lifetimeSeconds: body.lifetime, subject: body.subject, text: text),
            channel: channel, to: destination)
        var json = JSONWriter()
        json.field("sent", true)
        json.field("expires_in", body.lifetime)
        return json.response(status: .created)
    }

    struct CheckBody: Decodable {
        var phone: String?
        var email: String?
        var chatID: ChatID?
        var password: String
        enum CodingKeys: String, CodingKey {
            case phone, email, password
            case chatID = "chat_id"
        }
    }

    func check(_ request: Request, _ context: OTPRequestContext, channel: DeliveryChannel) async throws -> Response {
        try credentials.check(request)
        let body = try await request.decodeJSONOrQuery(as: CheckBody.self, context: context)
        let destination = try Self.destination(channel, phone: body.phone, email: body.email, chatID: body.chatID)
        let valid = try await codes.check(body.password, channel: channel, for: destination)
        var json = JSONWriter()
        json.field("valid", valid)
        return json.response(status: valid ? .ok : .notFound)
    }

    static func destination(
        _ channel: DeliveryChannel, phone: String?, email: String?, chatID: ChatID?
    ) throws -> ChannelCodes.Destination {
        // From the channel table: what the channel reaches names the field.
        let traits = channel.traits
        if traits.reaches.contains(.email) {
            return try ChannelCodes.Destination.parse(require(email, "email"), as: .email)
        }
        if traits.reachesLinkedChat, let chatID {
            guard phone == nil else { throw APIError.badRequest("send chat_id or phone, not both", code: "invalid_field") }
            return try ChannelCodes.Destination.parse(chatID.value, as: .chat)
        }
        guard let phone else {
            let wanted = traits.reachesLinkedChat ? "'chat_id' (or 'phone')" : "'phone'"
            throw APIError.badRequest("missing required field \(wanted)", code: "invalid_field")
        }
        return try ChannelCodes.Destination.parse(phone, as: .phone)
    }

    static func require(_ value: String?, _ name: String) throws -> String {
        guard let value else { throw APIError.badRequest("missing required field '\(name)'", code: "invalid_field") }
        return value
    }
}

/// A Telegram chat id as JSON gives it: an integer, or a string of digits.
struct ChatID: Decodable, Sendable {
    var value: String

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Int64.self) {
            value = String(number)
        } else {
            value = try container.decode(String.self)
        }
    }
}

/// The channel API's credentials: `surfaces.channel_api.basic_auth`, none when it is absent.
extension BasicCredentials {
    init(_ configured: Configuration.Surfaces.ChannelAPI?) {
        self.init(configured.map { [(user: $0.basicAuth.username, password: $0.basicAuth.password)] } ?? [])
    }

    static let challenge = APIError(
        .unauthorized, code: "unauthorized", "this route needs HTTP Basic credentials (surfaces.channel_api.basic_auth)",
        headers: [.wwwAuthenticate: #"Basic realm="otpd", charset="UTF-8""#])

    /// Throws 401 with `WWW-Authenticate` unless the request carries the configured credentials.
    func check(_ request: Request) throws {
        guard accept(request) else { throw Self.challenge }
    }
}
