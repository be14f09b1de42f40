import Foundation
import OTPCrypto
import OTPTestSupport
import Testing

@testable import Delivery

let policy = GatewayPolicy(timeoutMilliseconds: 2000, retries: 2)
let unicode = "Ваш код 123456 — ✓ <b>&</b> \"ok\""

@Suite("Gateways: the exact wire format real local servers receive")
struct GatewayWireFormatTests {
    @Test func twilioSMS() async throws {
        try await FakeGateway.run { gateway in
            let provider = TwilioProvider(baseURL: gateway.url, accountSID: "AC123", authToken: "tok:en", from: "+15005550006", policy: policy)
            try await provider.deliver(OutboundMessage(channel: .sms, to: "+4915112345678", text: unicode))
            let request = try #require(gateway.requests.first)
            #expect(gateway.requests.count == 1)
            #expect(request.method == "POST")
            #expect(request.path == "/2010-04-01/Accounts/AC123/Messages.json")
            #expect(request.header("Authorization") == "Basic " + Data("AC123:tok:en".utf8).base64EncodedString())
            #expect(request.header("Content-Type") == "application/x-www-form-urlencoded")
            #expect(request.form == ["To": "+4915112345678", "From": "+15005550006", "Body": unicode])
        }
    }

    @Test func twilioCallSpeaksEscapedTwiML() async throws {
        try await FakeGateway.run { gateway in
            let provider = TwilioProvider(baseURL: gateway.url + "/", accountSID: "AC123", authToken: "t", from: "+15005550006", policy: policy)
            try await provider.deliver(OutboundMessage(channel: .call, to: "+4915112345678", text: unicode))
            let request = try #require(gateway.requests.first)
            #expect(request.path == "/2010-04-01/Accounts/AC123/Calls.json")
            #expect(request.form["Twiml"] == "<Response><Say>Ваш код 123456 — ✓ &lt;b&gt;&amp;&lt;/b&gt; &quot;ok&quot;</Say></Response>")
            #expect(request.form["To"] == "+4915112345678" && request.form["From"] == "+15005550006")
        }
    }

    @Test func telegramSendMessage() async throws {
        try await FakeGateway.run { gateway in
            let provider = TelegramProvider(apiBaseURL: gateway.url, botToken: "123:ABC", policy: policy)
            try await provider.deliver(OutboundMessage(channel: .telegram, to: "987654321", text: unicode))
            try await provider.deliver(OutboundMessage(channel: .telegram, to: "@otpd_channel", text: "x"))
            let requests = gateway.requests
            #expect(requests.count == 2)
            #expect(requests[0].path == "/bot123:ABC/sendMessage")
            #expect(requests[0].header("Content-Type") == "application/json")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(requests[0].body)) as? [String: Any])
            #expect(json["chat_id"] as? Int == 987_654_321)
            #expect(json["text"] as? String == unicode)
            let second = try #require(try JSONSerialization.jsonObject(with: Data(requests[1].body)) as? [String: Any])
            #expect(second["chat_id"] as? String == "@otpd_channel")
        }
    }

    @Test func webhookIsSigned() async throws {
        try await FakeGateway.run { gateway in
            let provider = WebhookProvider(url: gateway.url + "/hooks/otp", secret: "hook-secret", policy: policy)
            try await provider.deliver(OutboundMessage(channel: .email, to: "ada@example.com", subject: "Sujet ✓", text: unicode))
            let request = try #require(gateway.requests.first)
            #expect(request.path == "/hooks/otp")
            // Standard Webhooks: v1,base64(HMAC-SHA256(secret, "id.timestamp.body")).
            let id = try #require(request.header("webhook-id"))
            let timestamp = try #require(request.header("webhook-timestamp").flatMap(Int.init))
            #expect(abs(timestamp - Int(Date().timeIntervalSince1970)) < 5)
            let signed = Array("\(id).\(timestamp).".utf8) + request.body
            let expected = "v1," + Data(Digest.hmacSHA256(key: Array("hook-secret".utf8), message: signed)).base64EncodedString()
            #expect(request.header("webhook-signature") == expected)
            let json = try #require(try JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any])
            #expect(json["channel"] as? String == "email" && json["to"] as? String == "ada@example.com")
            #expect(json["subject"] as? String == "Sujet ✓" && json["text"] as? String == unicode)
            // No subject key for channels without one.
            try await provider.deliver(OutboundMessage(channel: .sms, to: "+4915112345678", text: "123456"))
            let sms = try #require(try JSONSerialization.jsonObject(with: Data(gateway.requests[1].body)) as? [String: Any])
            #expect(sms["subject"] == nil && sms["channel"] as? String == "sms")
        }
    }

    /// libcurl's handles are reset and reused from transfer to transfer: nothing of one (its
    /// credentials, its upload, its headers) may reach the next.
    @Test func aReusedHandleCarriesNothingOfTheTransferBefore() async throws {
        try await FakeGateway.run { gateway in
            let twilio = TwilioProvider(baseURL: gateway.url, accountSID: "AC123", authToken: "secret-token", from: "+15005550006", policy: policy)
            let webhook = WebhookProvider(url: gateway.url + "/hooks/otp", secret: "hook-secret", policy: policy)
            for round in 0..<3 {
                try await twilio.deliver(OutboundMessage(channel: .sms, to: "+4915112345678", text: "code \(round)"))
                try await webhook.deliver(OutboundMessage(channel: .sms, to: "+4915112345678", text: "hook \(round)"))
            }
            let requests = gateway.requests
            #expect(requests.count == 6)
            for (index, request) in requests.enumerated() where index % 2 == 1 {
                #expect(request.path == "/hooks/otp")
                #expect(request.header("Authorization") == nil, "the webhook got the Twilio request's credentials")
                #expect(request.header("Content-Type") == "application/json")
                #expect(request.text.contains("hook \(index / 2)"))
            }
        }
    }

    @Test func smtpSendsOneRFC5322Message() async throws {
        let server = try await FakeSMTPServer()
        // The fake offers no STARTTLS: plain SMTP, as `tls: none` allows in development.
        let provider = SMTPProvider(url: "smtp://127.0.0.1:\(server.port)", from: "otp@example.com", username: "", password: "", requireTLS: false, policy: policy)
        let subject = "Ваш код для Demo — ✓ and a long enough subject to need more than one encoded word"
        try await provider.deliver(OutboundMessage(channel: .email, to: "ada@example.com", subject: subject, text: unicode + "\nline two"))
        await server.close()
        let message = try #require(server.received.first)
        #expect(message.mailFrom == "otp@example.com")
        #expect(message.recipients == ["ada@example.com"])
        #expect(message.header("From") == "otp@example.com")
        #expect(message.header("To") == "ada@example.com")
        #expect(message.header("Content-Type") == "text/plain; charset=utf-8")
        #expect(message.header("MIME-Version") == "1.0")
        let messageID = try #require(message.header("Message-ID"))
        #expect(messageID.hasPrefix("<") && messageID.hasSuffix("@example.com>"))
        let date = try #require(message.header("Date"))
        #expect(date.range(of: #"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$"#, options: .regularExpression) != nil)
        // RFC 2047: every line of the header is an encoded word that decodes to the subject.
        let encoded = try #require(message.header("Subject"))
        let decoded = encoded.split(separator: " ").map { word -> String in
            #expect(word.hasPrefix("=?UTF-8?B?") && word.hasSuffix("?=") && word.count <= 75)
            let base64 = word.dropFirst(10).dropLast(2)
            return String(decoding: Data(base64Encoded: String(base64)) ?? Data(), as: UTF8.self)
        }.joined()
        #expect(decoded == subject)
        #expect(message.header("Content-Transfer-Encoding") == "base64")
        let body = Data(base64Encoded: message.body.replacingOccurrences(of: "\r\n", with: "")) ?? Data()
        #expect(String(decoding: body, as: UTF8.self) == unicode + "\nline two")
    }

    /// A server that does not offer STARTTLS gets no message: the code never travels in plain
    /// text unless the configuration says `tls: none`.
    @Test func smtpWithoutSTARTTLSIsRefusedByDefault() async throws {
        let server = try await FakeSMTPServer()
        let provider = SMTPProvider(url: "smtp://127.0.0.1:\(server.port)", from: "otp@example.com", username: nil, password: nil, policy: policy)
        await #expect(throws: DeliveryError.self) {
            try await provider.deliver(OutboundMessage(channel: .email, to: "ada@example.com", subject: "Code", text: "123456"))
        }
        await server.close()
        #expect(server.received.isEmpty)
    }

    @Test func lineBreaksInHeadersAreRefused() async throws {
        let server = try await FakeSMTPServer()
        let provider = SMTPProvider(url: "smtp://127.0.0.1:\(server.port)", from: "otp@example.com", username: nil, password: nil, requireTLS: false, policy: policy)
        await #expect(throws: DeliveryError.self) {
            try await provider.deliver(OutboundMessage(channel: .email, to: "ada@example.com", subject: "Hi\r\nBcc: victim@example.com", text: "x"))
        }
        await #expect(throws: DeliveryError.self) {
            try await provider.deliver(OutboundMessage(channel: .email, to: "ada@example.com\nBcc: v@example.com", subject: "Hi", text: "x"))
        }
        await server.close()
        #expect(server.received.isEmpty)
    }
}

@Suite("Gateways: timeouts and retries")
struct GatewayRetryTests {
    /// A `whsec_` secret is base64: the signature is made with its decoded bytes.
    @Test func aWhsecSecretIsDecoded() async throws {
        try await FakeGateway.run { gateway in
            let key: [UInt8] = Array(0..<32)
            let provider = WebhookProvider(url: gateway.url, secret: "whsec_" + Data(key).base64EncodedString(), policy: policy)
            try await provider.deliver(OutboundMessage(channel: .sms, to: "+4915112345678", text: "1"))
            let request = try #require(gateway.requests.first)
            let signed = Array("\(request.header("webhook-id") ?? "").\(request.header("webhook-timestamp") ?? "").".utf8) + request.body
            #expect(request.header("webhook-signature") == "v1," + Data(Digest.hmacSHA256(key: key, message: signed)).base64EncodedString())
        }
    }

    @Test func a500IsRetriedThenFails() async throws {
        try await FakeGateway.run { gateway in
            gateway.set(.answer(status: 500, body: "{}"))
            let provider = WebhookProvider(url: gateway.url, secret: "s", policy: GatewayPolicy(timeoutMilliseconds: 1000, retries: 2))
            let start = ContinuousClock.now
            await #expect(throws: DeliveryError.self) {
                try await provider.deliver(OutboundMessage(channel: .sms, to: "+4915112345678", text: "1"))
            }
            #expect(ContinuousClock.now - start < .milliseconds(3000 + 1000))
            #expect(gateway.requests.count == 3)
            // One message id across the retries, so a receiver can drop duplicates.
            #expect(Set(gateway.requests.compactMap { $0.header("webhook-id") }).count == 1)
        }
    }

    @Test func a4xxIsFinal() async throws {
        try await FakeGateway.run { gateway in
            gateway.set(.answer(status: 400, body: "{\"code\": 21211}"))
            let provider = TwilioProvider(baseURL: gateway.url, accountSID: "AC1", authToken: "t", from: "+15005550006", policy: policy)
            await #expect(throws: DeliveryError.self) {
                try await provider.deliver(OutboundMessage(channel: .sms, to: "+4915112345678", text: "1"))
            }
            #expect(gateway.requests.count == 1)
        }
    }

    @Test func aHangIsCutAtTheTimeoutAndNotRetried() async throws {
        try await FakeGateway.run { gateway in
            gateway.set(.hang)
            let provider = TelegramProvider(apiBaseURL: gateway.url, botToken: "1:A", policy: GatewayPolicy(timeoutMilliseconds: 500, retries: 2))
            let start = ContinuousClock.now
            await #expect(throws: DeliveryError.self) {
                try await provider.deliver(OutboundMessage(channel: .telegram, to: "1", text: "1"))
            }
            let elapsed = ContinuousClock.now - start
            #expect(elapsed >= .milliseconds(450) && elapsed < .milliseconds(1500 + 1000))
            // The request left: a retry could deliver twice, so there is none.
            #expect(gateway.requests.count == 1)
        }
    }

    @Test func aClosedPortIsRetriedQuicklyThenFails() async throws {
        let provider = WebhookProvider(url: "http://127.0.0.1:\(freePort())/", secret: "s", policy: GatewayPolicy(timeoutMilliseconds: 1000, retries: 2))
        let start = ContinuousClock.now
        do {
            try await provider.deliver(OutboundMessage(channel: .sms, to: "+4915112345678", text: "1"))
            Issue.record("nothing listens there")
        } catch {
            #expect(error.provider == "webhook")
        }
        // Two backoffs (100 + 200 ms) and three refused connects.
        #expect(ContinuousClock.now - start < .milliseconds(3000 + 1000))
    }
}
