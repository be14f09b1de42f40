import Foundation
import NIOHTTP1
import OTPCrypto
import OTPTestSupport
import RedisClient
import Synchronization
import Testing

@testable import OTPServer

/// Real local fakes for every gateway: one HTTP server answers as Twilio, the Bot API and the
/// Gateway API (by path); a fake SMTP server takes email.
func telegramYAML(redisURL: String, prefix: String, gateway: String, smtpPort: Int, secret: String? = "hook_Secret-123") -> String {
    """
    mode: development
    server: {trusted_proxies: ["10.9.0.0/16"]}
    redis: \(TestRedis.configurationYAML(url: redisURL, keyPrefix: prefix, timeoutMilliseconds: 5000))
    security: {pepper: "test-pepper-0123456789abcdef"}
    delivery:
      sms: {provider: twilio, base_url: "\(gateway)", account_sid: "AC0123", auth_token: "twilio-token", from: "+15005550006"}
      call: {provider: twilio, base_url: "\(gateway)", account_sid: "AC0123", auth_token: "twilio-token", from: "+15005550006"}
      email: {provider: smtp, smtp_url: "smtp://127.0.0.1:\(smtpPort)", from: "otp@example.com", tls: none}
      telegram: {provider: telegram, api_base_url: "\(gateway)", bot_token: "123456:bot-token"\(secret.map { ", webhook_secret: \"\($0)\"" } ?? ""), code_lifetime: 300}
      telegram_gateway: {base_url: "\(gateway)/gw", token: "\(TelegramTests.gatewayToken)", callback_url: "https://otpd.example.com/telegram/gateway/callback"}
      timeout_ms: 2000
      retries: 0
    apps:
      - id: tg
        name: TG
        channels: [email, sms, telegram]
        fallback: {telegram: sms}
        otp: {length: 6, resend_cooldown_seconds: 0, ttl_seconds: 120}
        limits: {failed_attempts_per_ip_per_hour: 5, sends_per_ip_per_hour: 10000}
        tokens: {keys: [\(testJWTKey)]}
        templates:
          en: {sms: "{code} is your {app_name} code", email_subject: "Code", email_text: "Code {code}", call: "Code {code}", telegram: "{code} (bot)"}
      - id: nofallback
        channels: [telegram]
        tokens: {keys: [\(testJWTKey)]}
    surfaces:
      channel_api: {basic_auth: {username: otp, password: "channel-password-123"}, max_attempts: 3}
    """
}

@Suite("Channel API, Telegram bot and Telegram Gateway, against real local fakes")
struct TelegramTests {
    static let gatewayToken = "gateway-token-0123456789"
    static let basic = ["Authorization": "Basic " + Data("otp:channel-password-123".utf8).base64EncodedString()]
    static let secretHeader = ["X-Telegram-Bot-Api-Secret-Token": "hook_Secret-123"]
    /// Numbers the fake Gateway says are not on Telegram.
    static let notOnTelegram = "+1999"

    /// The fake answers as each real API does: Twilio JSON, Bot API `{"ok": true}`, Gateway
    /// `{"ok": true|false}` by number.
    static func answer(_ request: FakeGateway.Recorded) -> (status: Int, body: String) {
        if request.path.hasSuffix("/sendVerificationMessage") {
            let body = (try? JSONSerialization.jsonObject(with: Data(request.body))) as? [String: Any] ?? [:]
            if (body["phone_number"] as? String ?? "").hasPrefix(notOnTelegram) {
                return (200, #"{"ok":false,"error":"PHONE_NUMBER_NOT_FOUND"}"#)
            }
            return (200, #"{"ok":true,"result":{"request_id":"req-1","phone_number":"x","request_cost":0.01}}"#)
        }
        if request.path.contains("/bot") { return (200, #"{"ok":true,"result":{"message_id":1}}"#) }
        return (201, #"{"sid":"SM1"}"#)
    }

    func run(
        secret: String? = "hook_Secret-123",
        _ body: @escaping @Sendable (HTTP, FakeGateway, FakeSMTPServer, V1Harness) async throws -> Void
    ) async throws {
        let smtp = try await FakeSMTPServer()
        defer { Task { await smtp.close() } }
        try await FakeGateway.run { gateway in
            gateway.set(.respond(Self.answer))
            let harness = try V1Harness { url, prefix in
                telegramYAML(redisURL: url, prefix: prefix, gateway: gateway.url, smtpPort: smtp.port, secret: secret)
            }
            try await harness.run { http in try await body(http, gateway, smtp, harness) }
        }
    }

    static func json(_ request: FakeGateway.Recorded) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(request.body))) as? [String: Any] ?? [:]
    }

    static func botMessages(_ gateway: FakeGateway) -> [[String: Any]] {
        gateway.requests.filter { $0.path.hasSuffix("/sendMessage") }.map(json)
    }

    /// Waits (bounded) until the fake has seen `count` bot messages: replies go out after the 200.
    static func waitForBotMessages(_ gateway: FakeGateway, count: Int) async throws -> [[String: Any]] {
        for _ in 0..<100 where botMessages(gateway).count < count { try await Task.sleep(for: .milliseconds(20)) }
        return botMessages(gateway)
    }

    static func update(_ id: Int64, chat: Int64, text: String? = "hi") -> [String: Any] {
        var message: [String: Any] = ["message_id": 7, "date": 1_700_000_000, "chat": ["id": chat, "type": "private"]]
        if let text { message["text"] = text }
        return ["update_id": id, "message": message]
    }

    static func uniqueChat() -> Int64 { Int64.random(in: 100_000_000...999_999_999) }
    static func uniqueUpdate() -> Int64 { Int64.random(in: 1...(1 << 50)) }

    // MARK: channel API

    @Test func eachCreateRouteDeliversTheCallersTextAndCheckAcceptsOnce() async throws {
        try await run { http, gateway, smtp, _ in
            // SMS and call through Twilio, the caller's text exactly.
            for (route, resource) in [("sms", "Messages.json"), ("call", "Calls.json")] {
                let phone = "4915112345\(Int.random(in: 100...999))"
                let create = try await http.post(
                    "/\(route)", ["phone": phone, "password": "7311", "lifetime": 60, "message": "Your PIN <is> 7311"],
                    headers: Self.basic)
                #expect(create.status == 201, "\(create.body)")
                #expect(create.json["sent"] as? Bool == true && create.json["expires_in"] as? Int == 60)
                let sent = try #require(gateway.requests.last { $0.path.hasSuffix(resource) })
                #expect(sent.form["To"] == "+" + phone)
                if route == "sms" { #expect(sent.form["Body"] == "Your PIN <is> 7311") }
                else { #expect(sent.form["Twiml"] == "<Response><Say>Your PIN &lt;is&gt; 7311</Say></Response>") }
                // A wrong code, then the right one (query string), then the right one again.
                #expect(try await http.request(.GET, "/\(route)/check", json: ["phone": phone, "password": "0000"], headers: Self.basic).status == 404)
                let check = try await http.get("/\(route)/check?phone=%2B\(phone)&password=7311", headers: Self.basic)
                #expect(check.status == 200 && check.json["valid"] as? Bool == true, "\(check.body)")
                let again = try await http.request(.GET, "/\(route)/check", json: ["phone": phone, "password": "7311"], headers: Self.basic)
                #expect(again.status == 404 && again.json["valid"] as? Bool == false)
            }
            // Email over SMTP: subject and text as given.
            let email = "channel-\(UUID().uuidString.prefix(8).lowercased())@example.com"
            let create = try await http.post(
                "/email", ["email": email, "password": "pw-981", "lifetime": 60, "subject": "Your login", "text": "Use pw-981 now."],
                headers: Self.basic)
            #expect(create.status == 201, "\(create.body)")
            let mail = try #require(smtp.received.last { $0.recipients.contains(email) })
            #expect(mail.header("Subject") == "Your login" && mail.text.contains("Use pw-981 now."))
            #expect(try await http.request(.GET, "/email/check", json: ["email": email, "password": "pw-981"], headers: Self.basic).status == 200)
            #expect(try await http.request(.GET, "/email/check", json: ["email": email, "password": "pw-981"], headers: Self.basic).status == 404)

            // Telegram to a chat through the bot: the chat id as a number or a string of digits.
            let chat = Self.uniqueChat()
            let bot = try await http.post(
                "/telegram", ["chat_id": chat, "password": "4242", "lifetime": 60, "message": "Code 4242"], headers: Self.basic)
            #expect(bot.status == 201, "\(bot.body)")
            let message = try #require(Self.botMessages(gateway).last)
            #expect((message["chat_id"] as? Int).map(Int64.init) == chat && message["text"] as? String == "Code 4242")
            #expect(try await http.request(.GET, "/telegram/check", json: ["chat_id": "\(chat)", "password": "4242"], headers: Self.basic).status == 200)

            // Telegram to a phone number through the Gateway: the code, not the text.
            let phone = "+4917612345\(Int.random(in: 100...999))"
            let viaGateway = try await http.post(
                "/telegram", ["phone": phone, "password": "551234", "lifetime": 90, "message": "ignored"], headers: Self.basic)
            #expect(viaGateway.status == 201, "\(viaGateway.body)")
            let request = try #require(gateway.requests.last { $0.path.hasSuffix("/gw/sendVerificationMessage") })
            #expect(Self.json(request)["code"] as? String == "551234" && Self.json(request)["phone_number"] as? String == phone)
            #expect(try await http.request(.GET, "/telegram/check", json: ["phone": phone, "password": "551234"], headers: Self.basic).status == 200)
        }
    }

    @Test func theCodeIsStoredOnlyAsAHashAndExpires() async throws {
        try await run { http, _, _, harness in
            let phone = "+4915199887\(Int.random(in: 100...999))"
            #expect(try await http.post("/sms", ["phone": phone, "password": "8642", "lifetime": 600, "message": "8642"], headers: Self.basic).status == 201)
            // Neither the code nor the number is in Redis, in a key or a value.
            let keys = try await TestRedis.allKeys(matching: "\(harness.prefix):*")
            #expect(keys.count == 1 && !keys.contains { $0.contains(phone.dropFirst()) || $0.contains("8642") }, "\(keys)")
            let redis = RedisClient(configuration: try RedisConfiguration(url: harness.redisURL))
            defer { redis.shutdown() }
            let stored = try await redis.send("HGETALL", RedisArgument(keys[0])).array ?? []
            #expect(stored.count == 6 && !stored.contains { ($0.string ?? "").contains("8642") || ($0.string ?? "").contains(phone.dropFirst()) })
            // A code lives its lifetime, no longer.
            let other = "+4915199886\(Int.random(in: 100...999))"
            #expect(try await http.post("/sms", ["phone": other, "password": "8642", "lifetime": 1, "message": "8642"], headers: Self.basic).status == 201)
            try await Task.sleep(for: .milliseconds(1500))
            #expect(try await http.request(.GET, "/sms/check", json: ["phone": other, "password": "8642"], headers: Self.basic).status == 404)
        }
    }

    @Test func maxAttemptsWrongChecksKillTheCode() async throws {
        try await run { http, _, _, _ in
            let phone = "+4915100001\(Int.random(in: 100...999))"
            #expect(try await http.post("/sms", ["phone": phone, "password": "1357", "lifetime": 60, "message": "1357"], headers: Self.basic).status == 201)
            // An attacker races 20 wrong guesses: with max_attempts 3 the code is dead after them.
            _ = try await concurrently(20) { i in
                try await http.request(.GET, "/sms/check", json: ["phone": phone, "password": String(format: "%04d", i)], headers: Self.basic).status
            }
            #expect(try await http.request(.GET, "/sms/check", json: ["phone": phone, "password": "1357"], headers: Self.basic).status == 404)
        }
    }

    @Test func wrongOrMissingBasicAuthIs401AndSendsNothing() async throws {
        try await run { http, gateway, _, _ in
            let before = gateway.requests.count
            for headers in [
                [:], ["Authorization": "Basic " + Data("otp:wrong".utf8).base64EncodedString()],
                ["Authorization": "Basic " + Data("otp:channel-password-1234".utf8).base64EncodedString()],
                ["Authorization": "Basic !!!"], ["Authorization": "Bearer x"],
            ] {
                let reply = try await http.post("/sms", ["phone": "+4915112345678", "password": "1", "lifetime": 5, "message": "m"], headers: headers)
                #expect(reply.status == 401 && reply.header("WWW-Authenticate")?.hasPrefix("Basic") == true, "\(headers)")
                #expect(try await http.request(.GET, "/sms/check", json: ["phone": "+4915112345678", "password": "1"], headers: headers).status == 401)
            }
            #expect(gateway.requests.count == before)
        }
    }

    @Test func badInputIsA400NamingTheField() async throws {
        try await run { http, _, _, _ in
            let cases: [(String, [String: Any], String)] = [
                ("/sms", ["phone": "12", "password": "1", "lifetime": 5, "message": "m"], "phone"),
                ("/sms", ["phone": "+4915112345678", "password": "1", "lifetime": 0, "message": "m"], "lifetime"),
                ("/sms", ["phone": "+4915112345678", "password": "1", "lifetime": 86401, "message": "m"], "lifetime"),
                ("/sms", ["phone": "+4915112345678", "password": "", "lifetime": 5, "message": "m"], "password"),
                ("/sms", ["phone": "+4915112345678", "password": "1", "lifetime": 5], "message"),
                ("/email", ["email": "a@example.com", "password": "1", "lifetime": 5, "text": "t"], "subject"),
                ("/telegram", ["chat_id": "12ab", "password": "1", "lifetime": 5, "message": "m"], "chat_id"),
                ("/telegram", ["phone": "+4915112345678", "password": "12", "lifetime": 5, "message": "m"], "password"),
            ]
            for (path, body, field) in cases {
                let reply = try await http.post(path, body, headers: Self.basic)
                #expect(reply.status == 400 && (reply.json["error"] as? String ?? "").contains(field), "\(path) \(body): \(reply.body)")
            }
        }
    }

    @Test func aFailedDeliveryIsA502AndLeavesNoUsableCode() async throws {
        try await run { http, gateway, _, _ in
            gateway.set(.answer(status: 400, body: #"{"code":21211}"#))
            let phone = "+4915100002\(Int.random(in: 100...999))"
            let create = try await http.post("/sms", ["phone": phone, "password": "2468", "lifetime": 60, "message": "2468"], headers: Self.basic)
            #expect(create.status == 502 && create.code == "delivery_failed", "\(create.body)")
            gateway.set(.respond(Self.answer))
            let check = try await http.request(.GET, "/sms/check", json: ["phone": phone, "password": "2468"], headers: Self.basic)
            #expect(check.status == 404)
        }
    }

    // MARK: the bot

    @Test func theWebhookRefusesAWrongOrMissingSecretAndSendsNothing() async throws {
        try await run { http, gateway, _, _ in
            for headers in [[:], ["X-Telegram-Bot-Api-Secret-Token": "hook_Secret-12"], ["X-Telegram-Bot-Api-Secret-Token": "hook_Secret-1234"]] {
                let reply = try await http.post("/telegram/webhook", Self.update(Self.uniqueUpdate(), chat: Self.uniqueChat()), headers: headers)
                #expect(reply.status == 401, "\(headers)")
            }
            try await Task.sleep(for: .milliseconds(200))
            #expect(Self.botMessages(gateway).isEmpty)
        }
    }

    /// In production without a Telegram bot (no webhook secret to check), nobody may post
    /// updates: each would hold Redis memory for a day.
    @Test func withoutABotProductionServesNoWebhook() async throws {
        let key = #"{kid: k1, secret: "prod-secret-0123456789abcdef0123456789abcdef"}"#
        let harness = try V1Harness { url, prefix in
            """
            mode: production
            redis: \(TestRedis.configurationYAML(url: url, keyPrefix: prefix, timeoutMilliseconds: 5000))
            security: {pepper: "prod-pepper-0123456789abcdef"}
            delivery:
              email: {provider: webhook, url: "https://127.0.0.1:9/hook", secret: "webhook-secret-0123456789"}
              telegram: {provider: webhook, url: "https://127.0.0.1:9/hook", secret: "webhook-secret-0123456789"}
            apps:
              - id: p
                channels: [email, telegram]
                tokens: {keys: [\(key)]}
            """
        }
        try await harness.run { http in
            let reply = try await http.post("/telegram/webhook", Self.update(Self.uniqueUpdate(), chat: Self.uniqueChat()))
            #expect(reply.status == 404, "\(reply.body)")
            #expect(try await TestRedis.allKeys(matching: "\(harness.prefix):*").isEmpty)
        }
    }

    @Test func aRedeliveredUpdateSendsOneMessageAndOtherUpdatesNone() async throws {
        try await run { http, gateway, _, _ in
            let (id, chat) = (Self.uniqueUpdate(), Self.uniqueChat())
            // Telegram redelivers; an attacker replays concurrently: one code, one message.
            let statuses = try await concurrently(10) { _ in
                try await http.post("/telegram/webhook", Self.update(id, chat: chat), headers: Self.secretHeader).status
            }
            #expect(statuses.allSatisfy { $0 == 200 })
            // Not text messages: 200, nothing sent.
            #expect(try await http.post("/telegram/webhook", Self.update(Self.uniqueUpdate(), chat: 5, text: nil), headers: Self.secretHeader).status == 200)
            #expect(try await http.post("/telegram/webhook", ["update_id": Self.uniqueUpdate(), "edited_message": [:] as [String: Any]], headers: Self.secretHeader).status == 200)
            let messages = try await Self.waitForBotMessages(gateway, count: 1)
            try await Task.sleep(for: .milliseconds(300))
            #expect(Self.botMessages(gateway).count == 1 && messages.count == 1)
        }
    }

    /// A code posted in a group, supergroup or channel is readable by every member: the bot
    /// answers private chats only, and stores nothing for the others.
    @Test func theBotAnswersPrivateChatsOnly() async throws {
        try await run { http, gateway, _, harness in
            for type in ["group", "supergroup", "channel"] {
                var update = Self.update(Self.uniqueUpdate(), chat: -Self.uniqueChat())
                var message = update["message"] as! [String: Any]
                message["chat"] = ["id": -Self.uniqueChat(), "type": type, "title": "Everyone"]
                update["message"] = message
                let reply = try await http.post("/telegram/webhook", update, headers: Self.secretHeader)
                #expect(reply.status == 200, "\(type): \(reply.body)")
                // A channel's posts come as channel_post; a message without a chat type is not private either.
                let post: [String: Any] = ["update_id": Self.uniqueUpdate(), "channel_post": message]
                #expect(try await http.post("/telegram/webhook", post, headers: Self.secretHeader).status == 200)
            }
            var untyped = Self.update(Self.uniqueUpdate(), chat: Self.uniqueChat())
            untyped["message"] = ["message_id": 1, "date": 1, "text": "hi", "chat": ["id": Self.uniqueChat()]]
            #expect(try await http.post("/telegram/webhook", untyped, headers: Self.secretHeader).status == 200)
            try await Task.sleep(for: .milliseconds(300))
            #expect(Self.botMessages(gateway).isEmpty, "\(Self.botMessages(gateway))")
            #expect(try await TestRedis.allKeys(matching: "\(harness.prefix):*").isEmpty)
        }
    }

    /// One chat gets at most `codes_per_chat_per_hour` codes (default 10), counted atomically
    /// across concurrent updates; another chat is not affected.
    @Test func aChatGetsAtMostItsHourlyCodes() async throws {
        try await run { http, gateway, _, _ in
            let chat = Self.uniqueChat()
            let statuses = try await concurrently(12) { _ in
                try await http.post("/telegram/webhook", Self.update(Self.uniqueUpdate(), chat: chat), headers: Self.secretHeader).status
            }
            #expect(statuses.allSatisfy { $0 == 200 }, "\(statuses)")
            _ = try await Self.waitForBotMessages(gateway, count: 12)
            try await Task.sleep(for: .milliseconds(300))
            let sent = Self.botMessages(gateway).filter { "\($0["chat_id"] ?? "")" == "\(chat)" }
            #expect(sent.count == 10, "\(sent.count) codes sent to one chat")
            let other = Self.uniqueChat()
            #expect(try await http.post("/telegram/webhook", Self.update(Self.uniqueUpdate(), chat: other), headers: Self.secretHeader).status == 200)
            let all = try await Self.waitForBotMessages(gateway, count: 11)
            #expect(all.contains { "\($0["chat_id"] ?? "")" == "\(other)" })
        }
    }

    @Test func theWebhookAnswersAtOnceWhileTheBotAPIIsSlow() async throws {
        try await run { http, gateway, _, _ in
            gateway.set(.answerAfter(milliseconds: 2000))
            let start = ContinuousClock.now
            let reply = try await http.post("/telegram/webhook", Self.update(Self.uniqueUpdate(), chat: Self.uniqueChat()), headers: Self.secretHeader)
            let elapsed = ContinuousClock.now - start
            #expect(reply.status == 200 && elapsed < .milliseconds(1000), "\(elapsed)")
            // The reply still goes out, after the answer.
            #expect(try await Self.waitForBotMessages(gateway, count: 1).count == 1)
        }
    }

    @Test func theBotFlowEndToEnd() async throws {
        try await run { http, gateway, smtp, _ in
            // Update in → code out: the reply's only number of 4 or more digits is the 6-digit code.
            let chat = Self.uniqueChat()
            #expect(try await http.post("/telegram/webhook", Self.update(Self.uniqueUpdate(), chat: chat), headers: Self.secretHeader).status == 200)
            let reply = try #require(try await Self.waitForBotMessages(gateway, count: 1).last)
            #expect((reply["chat_id"] as? Int).map(Int64.init) == chat)
            let numbers = (reply["text"] as? String ?? "").split(whereSeparator: { !$0.isNumber }).filter { $0.count >= 4 }
            #expect(numbers.count == 1 && numbers[0].count == 6, "\(reply)")
            let code = String(numbers[0])

            // The code → the chat id (HTTP Basic), once.
            let target = try await http.get("/target?password=\(code)", headers: Self.basic)
            #expect(target.status == 200 && (target.json["chat_id"] as? Int).map(Int64.init) == chat, "\(target.body)")
            #expect(try await http.request(.GET, "/target", json: ["password": code], headers: Self.basic).status == 404)
            #expect(try await http.request(.GET, "/target", json: ["password": code]).status == 401)

            // A signed-in user links the chat with a second code, then signs in over telegram.
            let email = "bot-\(UUID().uuidString.prefix(8).lowercased())@example.com"
            let unlinked = try await http.post("/v1/apps/tg/register/otp", ["identifier": email, "channel": "telegram"])
            #expect(unlinked.status == 400 && unlinked.code == "channel_not_supported", "no chat linked yet: \(unlinked.body)")
            let token = try await Self.signInByEmail(http, smtp, email: email)

            #expect(try await http.post("/telegram/webhook", Self.update(Self.uniqueUpdate(), chat: chat), headers: Self.secretHeader).status == 200)
            let second = try #require(try await Self.waitForBotMessages(gateway, count: 2).last)
            let linkCode = String((second["text"] as? String ?? "").split(whereSeparator: { !$0.isNumber }).first { $0.count == 6 } ?? "")
            let link = try await http.request(.GET, "/target", json: ["password": linkCode, "app_id": "tg"], headers: ["Authorization": "Bearer \(token)"])
            #expect(link.status == 200 && link.json["linked"] as? Bool == true, "\(link.body)")

            let login = try await http.post("/v1/apps/tg/login/otp", ["identifier": email, "channel": "telegram"])
            #expect(login.status == 200 && login.json["channel"] as? String == "telegram", "\(login.body)")
            let delivered = try #require(try await Self.waitForBotMessages(gateway, count: 3).last)
            #expect((delivered["chat_id"] as? Int).map(Int64.init) == chat)
            let loginCode = String((delivered["text"] as? String ?? "").prefix(6))
            let activate = try await http.post("/v1/apps/tg/otp/activate", ["otp_id": login.json["otp_id"] as? String ?? "", "otp": loginCode])
            #expect(activate.status == 200, "\(activate.body)")
        }
    }

    @Test func linkingGuessesCountAgainstTheClientsFailures() async throws {
        try await run { http, _, smtp, _ in
            let token = try await Self.signInByEmail(http, smtp, email: "link-\(UUID().uuidString.prefix(8).lowercased())@example.com")
            // failed_attempts_per_ip_per_hour is 5: the 6th wrong guess from one address is refused.
            var statuses: [Int] = []
            for i in 0..<7 {
                let reply = try await http.request(
                    .GET, "/target", json: ["password": String(format: "%06d", i), "app_id": "tg"],
                    headers: ["Authorization": "Bearer \(token)", "X-Forwarded-For": "203.0.113.9"])
                statuses.append(reply.status)
            }
            #expect(statuses == [404, 404, 404, 404, 404, 429, 429], "\(statuses)")
            // A forged token links nothing.
            let forged = try await http.request(.GET, "/target", json: ["password": "123456", "app_id": "tg"], headers: ["Authorization": "Bearer x.y.z"])
            #expect(forged.status == 401)
        }
    }

    @Test func theCommandLineSetsTheWebhookAndShowsTelegramsView() async throws {
        try await FakeGateway.run { gateway in
            gateway.set(.respond { request in
                if request.path.hasSuffix("/getWebhookInfo") {
                    return (200, #"{"ok":true,"result":{"url":"https://login.example.com/telegram/webhook","has_custom_certificate":false,"pending_update_count":3,"last_error_date":1700000000,"last_error_message":"Connection refused"}}"#)
                }
                return (200, #"{"ok":true,"result":true,"description":"Webhook was set"}"#)
            })
            let config = try writeTemporaryConfig(
                telegramYAML(redisURL: TestRedis.url, prefix: "cli", gateway: gateway.url, smtpPort: 9))
            let set = try await runOTPD(["telegram", "set-webhook", "--config", config, "--url", "https://login.example.com/telegram/webhook"])
            #expect(set.status == 0, "\(set.output)")
            let request = try #require(gateway.requests.last)
            #expect(request.path == "/bot123456:bot-token/setWebhook")
            let body = Self.json(request)
            #expect(body["url"] as? String == "https://login.example.com/telegram/webhook")
            #expect(body["secret_token"] as? String == "hook_Secret-123" && body["allowed_updates"] as? [String] == ["message"])

            let info = try await runOTPD(["telegram", "webhook-info", "--config", config])
            #expect(info.status == 0 && info.output.contains("pending_update_count: 3") && info.output.contains("last_error_message: Connection refused"), "\(info.output)")

            // Telegram refuses: a non-zero exit with Telegram's description.
            gateway.set(.answer(status: 400, body: #"{"ok":false,"error_code":400,"description":"Bad Request: bad webhook: HTTPS url must be provided for webhook"}"#))
            let refused = try await runOTPD(["telegram", "set-webhook", "--config", config, "--url", "http://login.example.com/"])
            #expect(refused.status == 1 && refused.output.contains("HTTPS url must be provided"), "\(refused.output)")
        }
    }

    // MARK: the Gateway

    @Test func aGatewaySendCarriesTheRightFieldsAndToken() async throws {
        try await run { http, gateway, _, _ in
            let phone = "+4917600001\(Int.random(in: 100...999))"
            let send = try await http.post("/v1/apps/tg/register/otp", ["identifier": phone, "channel": "telegram"])
            #expect(send.status == 201 && send.json["channel"] as? String == "telegram", "\(send.body)")
            let request = try #require(gateway.requests.last { $0.path == "/gw/sendVerificationMessage" })
            #expect(request.header("Authorization") == "Bearer \(Self.gatewayToken)")
            let body = Self.json(request)
            #expect(body["phone_number"] as? String == phone)
            #expect((body["code"] as? String)?.count == 6 && body["ttl"] as? Int == 120)
            #expect(body["payload"] as? String == send.json["otp_id"] as? String)
            #expect(body["callback_url"] as? String == "https://otpd.example.com/telegram/gateway/callback")
            let activate = try await http.post(
                "/v1/apps/tg/otp/activate", ["otp_id": send.json["otp_id"] as? String ?? "", "otp": body["code"] as? String ?? ""])
            #expect(activate.status == 200, "\(activate.body)")
        }
    }

    @Test func aGatewayRefusalFallsBackToSMSWithTheSameCode() async throws {
        try await run { http, gateway, _, _ in
            let phone = Self.notOnTelegram + "5550\(Int.random(in: 100...999))"
            let send = try await http.post("/v1/apps/tg/register/otp", ["identifier": phone, "channel": "telegram"])
            #expect(send.status == 201 && send.json["channel"] as? String == "sms", "\(send.body)")
            let asked = try #require(gateway.requests.last { $0.path.hasSuffix("/sendVerificationMessage") })
            let code = try #require(Self.json(asked)["code"] as? String)
            let sms = try #require(gateway.requests.last { $0.path.hasSuffix("Messages.json") })
            #expect(sms.form["To"] == phone && sms.form["Body"] == "\(code) is your TG code")
            #expect(try await http.post("/v1/apps/tg/otp/activate", ["otp_id": send.json["otp_id"] as? String ?? "", "otp": code]).status == 200)

            // Without a fallback a refusal is a 502, and nothing is left usable.
            let refused = try await http.post("/v1/apps/nofallback/register/otp", ["identifier": phone, "channel": "telegram"])
            #expect(refused.status == 502 && refused.code == "delivery_failed", "\(refused.body)")
        }
    }

    @Test func gatewayReportsAreCheckedSignedAndFresh() async throws {
        try await run { http, _, _, _ in
            let body = #"{"request_id":"req-1","phone_number":"+4917600001234","request_cost":0.01,"payload":"u.abc","delivery_status":{"status":"delivered","updated_at":1700000000}}"#
            let now = Int(Date().timeIntervalSince1970)
            func signature(_ timestamp: Int, _ body: String, token: String = Self.gatewayToken) -> String {
                Digest.hex(Digest.hmacSHA256(key: Digest.sha256(Array(token.utf8)), message: Array("\(timestamp)\n\(body)".utf8)))
            }
            func post(_ headers: [String: String], _ text: String = body) async throws -> Int {
                try await http.request(.POST, "/telegram/gateway/callback", raw: text, headers: headers).status
            }
            #expect(try await post(["X-Request-Timestamp": "\(now)", "X-Request-Signature": signature(now, body)]) == 200)
            // A bad signature, another token's, a tampered body, an old or future timestamp, none at all.
            #expect(try await post(["X-Request-Timestamp": "\(now)", "X-Request-Signature": String(repeating: "0", count: 64)]) == 401)
            #expect(try await post(["X-Request-Timestamp": "\(now)", "X-Request-Signature": signature(now, body, token: "other")]) == 401)
            #expect(try await post(["X-Request-Timestamp": "\(now)", "X-Request-Signature": signature(now, body)], body.replacingOccurrences(of: "delivered", with: "read")) == 401)
            #expect(try await post(["X-Request-Timestamp": "\(now - 400)", "X-Request-Signature": signature(now - 400, body)]) == 401)
            #expect(try await post(["X-Request-Timestamp": "\(now + 400)", "X-Request-Signature": signature(now + 400, body)]) == 401)
            #expect(try await post([:]) == 401)
            let metrics = try await http.get("/metrics")
            #expect(metrics.body.contains(#"otpd_telegram_gateway_reports_total{status="delivered"} 1"#))
        }
    }
}

extension TelegramTests {
    /// A signed report replayed inside the 300 s window is answered 200 (Telegram's retries must
    /// stop) but counted and logged once: sequentially twice, and 10 times at once.
    @Test func aReplayedGatewayReportIsCountedOnce() async throws {
        try await run { http, _, _, _ in
            let now = Int(Date().timeIntervalSince1970)
            func signature(_ timestamp: Int, _ body: String) -> String {
                Digest.hex(Digest.hmacSHA256(key: Digest.sha256(Array(Self.gatewayToken.utf8)), message: Array("\(timestamp)\n\(body)".utf8)))
            }
            func report(_ status: String) -> String {
                #"{"request_id":"req-\#(UUID().uuidString)","payload":"u.x","delivery_status":{"status":"\#(status)","updated_at":1700000000}}"#
            }
            let read = report("read")
            for _ in 0..<2 {
                let reply = try await http.request(
                    .POST, "/telegram/gateway/callback", raw: read, headers: ["X-Request-Timestamp": "\(now)", "X-Request-Signature": signature(now, read)])
                #expect(reply.status == 200, "\(reply.body)")
            }
            let sent = report("sent")
            let headers = ["X-Request-Timestamp": "\(now)", "X-Request-Signature": signature(now, sent)]
            let statuses = try await concurrently(10) { _ in
                try await http.request(.POST, "/telegram/gateway/callback", raw: sent, headers: headers).status
            }
            #expect(statuses.allSatisfy { $0 == 200 }, "\(statuses)")
            let metrics = try await http.get("/metrics").body
            #expect(metrics.contains(#"otpd_telegram_gateway_reports_total{status="read"} 1"#), "\(metrics.split(separator: "\n").filter { $0.contains("gateway_reports") })")
            #expect(metrics.contains(#"otpd_telegram_gateway_reports_total{status="sent"} 1"#))
        }
    }

    /// Registers an email user of app `tg`, activates the code the fake SMTP server got, and
    /// returns the access token.
    static func signInByEmail(_ http: HTTP, _ smtp: FakeSMTPServer, email: String) async throws -> String {
        let send = try await http.post("/v1/apps/tg/register/otp", ["identifier": email])
        #expect(send.status == 201, "\(send.body)")
        let mail = try #require(smtp.received.last { $0.recipients.contains(email) })
        let code = try #require(mail.text.split(whereSeparator: { !$0.isNumber }).first { $0.count == 6 })
        let activate = try await http.post("/v1/apps/tg/otp/activate", ["otp_id": send.json["otp_id"] as? String ?? "", "otp": String(code)])
        let auth = try #require(activate.json["auth_result"] as? [String: Any], "\(activate.body)")
        return try #require(auth["auth_token"] as? String)
    }
}
