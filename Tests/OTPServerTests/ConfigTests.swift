import Foundation
import OTPCore
import OTPServer
import OTPTestSupport
import Testing

/// The repository root, found from this file's path.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

func shippedConfigText() throws -> String {
    try String(contentsOf: repositoryRoot.appendingPathComponent("config/otpd.yaml"), encoding: .utf8)
}

/// A minimal valid production configuration, for tests that change one thing in it.
let minimalYAML = """
    security: {pepper: "0123456789abcdef0123456789abcdef"}
    delivery:
      email: {provider: webhook, url: "https://127.0.0.1:9/hook", secret: "webhook-secret-0123456789"}
    apps:
      - id: a1
        channels: [email]
        tokens: {keys: [{kid: k1, secret: "0123456789abcdef0123456789abcdef"}]}
    """

func configError(_ yaml: String, environment: [String: String] = [:]) -> String? {
    do {
        _ = try ConfigLoader.parse(yaml, environment: environment)
        return nil
    } catch {
        return error.description
    }
}

@Suite("Configuration")
struct ConfigTests {
    @Test func shippedDevelopmentConfigLoadsWithWarnings() throws {
        let (configuration, warnings) = try ConfigLoader.parse(try shippedConfigText(), environment: [:])
        #expect(configuration.mode == .development)
        #expect(configuration.apps.map(\.id) == ["demo", "reset"])
        #expect(configuration.apps[1].otp.length == 5)
        #expect(configuration.apps[1].limits.sendsPerIdentifierPerHour == 3)
        #expect(configuration.surfaces.passwordReset?.app == "reset")
        #expect(warnings.contains { $0.contains("security.pepper") })
        #expect(warnings.contains { $0.contains("log provider") })
    }

    @Test func defaultsFillWhatIsLeftOut() throws {
        let (c, warnings) = try ConfigLoader.parse(minimalYAML, environment: [:])
        #expect(warnings.isEmpty)
        #expect(c.mode == .production)
        #expect(c.server.port == 8080 && c.server.maxBodyBytes == 65536)
        #expect(c.redis.url == "redis://127.0.0.1:6379/0" && c.redis.timeoutMilliseconds == 500)
        #expect(c.apps[0].otp.length == 6 && c.apps[0].otp.ttlSeconds == 600 && c.apps[0].otp.maxAttempts == 5)
        #expect(c.apps[0].tokens.accessTTLSeconds == 1800 && c.apps[0].tokens.refreshTTLSeconds == 2_592_000)
        #expect(c.apps[0].tokens.activeKid == "k1")
        #expect(c.delivery.timeoutMilliseconds == 5000 && c.delivery.retries == 2)
    }

    @Test func jsonLoadsToo() throws {
        let json = """
            {"security": {"pepper": "0123456789abcdef0123456789abcdef"},
             "server": {"port": 9090},
             "delivery": {"sms": {"provider": "twilio", "account_sid": "AC0123456789abcdef0123456789abcdef", "auth_token": "0123456789abcdef0123456789abcdef", "from": "+15005550006"}},
             "apps": [{"id": "j", "channels": ["sms"], "tokens": {"keys": [{"kid": "a", "secret": "0123456789abcdef0123456789abcdef"}]},
                       "otp": {"ttl_seconds": 3, "resend_cooldown_seconds": 0}}]}
            """
        let (c, _) = try ConfigLoader.parse(json, environment: [:])
        #expect(c.server.port == 9090)
        #expect(c.apps[0].otp.ttlSeconds == 3 && c.apps[0].otp.resendCooldownSeconds == 0)
    }

    @Test func environmentSecretsAndOverrides() throws {
        let yaml = minimalYAML.replacingOccurrences(of: "\"0123456789abcdef0123456789abcdef\"}\ndelivery", with: "\"${MY_PEPPER}\"}\ndelivery")
        let env = ["MY_PEPPER": "pepper-from-the-environment", "OTPD_PORT": "9999", "OTPD_REDIS_URL": "redis://10.1.2.3:7000/4"]
        let (c, _) = try ConfigLoader.parse(yaml, environment: env)
        #expect(c.security.pepper == "pepper-from-the-environment")
        #expect(c.server.port == 9999)
        #expect(c.redis.url == "redis://10.1.2.3:7000/4")

        #expect(configError(yaml)?.contains("security.pepper: environment variable MY_PEPPER is not set") == true)
        let withDefault = minimalYAML.replacingOccurrences(of: "port: 8080", with: "")
            .replacingOccurrences(of: "security: {", with: "server: {port: \"${NO_SUCH_VAR:-7070}\"}\nsecurity: {")
        #expect(try ConfigLoader.parse(withDefault, environment: [:]).0.server.port == 7070)
    }

    @Test func errorsNameTheKey() throws {
        #expect(configError(minimalYAML + "\nsurprise: 1")?.hasPrefix("surprise: unknown key") == true)
        #expect(configError(minimalYAML.replacingOccurrences(of: "channels: [email]", with: "channels: [email]\n    otp: {ttl_second: 5}"))?.hasPrefix("apps[0].otp.ttl_second: unknown key") == true)
        #expect(configError(minimalYAML + "\nredis: {url: \"http://nope\"}")?.hasPrefix("redis.url:") == true)
        #expect(configError(minimalYAML + "\nredis: {url: \"redis://host:99999\"}")?.hasPrefix("redis.url:") == true)
        // Cluster mode: seeds required, each host:port; the URL carries only credentials.
        let cluster = try ConfigLoader.parse(
            minimalYAML + "\nredis: {mode: cluster, nodes: [\"127.0.0.1:7000\", \"[::1]:7001\"], url: \"redis://:pw@ignored:1/0\"}",
            environment: [:]).0
        #expect(cluster.redis.mode == .cluster && cluster.redis.nodes == ["127.0.0.1:7000", "[::1]:7001"])
        #expect(configError(minimalYAML + "\nredis: {mode: cluster}")?.hasPrefix("redis.nodes:") == true)
        #expect(configError(minimalYAML + "\nredis: {mode: cluster, nodes: [\"127.0.0.1\"]}")?.hasPrefix("redis.nodes[0]:") == true)
        #expect(configError(minimalYAML + "\nredis: {mode: cluster, nodes: [\"h:1\"], url: \"redis://h:1/3\"}")?.hasPrefix("redis.url:") == true)
        #expect(configError(minimalYAML + "\nserver: {port: \"eighty\"}")?.hasPrefix("server.port: expected an integer") == true)
        #expect(configError(minimalYAML + "\nserver: {port: 0}")?.hasPrefix("server.port:") == true)
        #expect(configError(minimalYAML + "\nserver: {trusted_proxies: [\"10.0.0.0/33\"]}")?.hasPrefix("server.trusted_proxies[0]:") == true)
        #expect(configError(minimalYAML.replacingOccurrences(of: "channels: [email]", with: "channels: [sms]"))?.hasPrefix("apps[0].channels: channel sms has no gateway") == true)
        #expect(configError(minimalYAML.replacingOccurrences(of: "channels: [email]", with: "channels: [pigeon]"))?.hasPrefix("apps[0].channels[0]:") == true)
        #expect(configError(minimalYAML.replacingOccurrences(of: "kid: k1,", with: "kid: k1, secret: \"0123456789abcdef0123456789abcdefxx\"}, {kid: k1,"))?.hasPrefix("apps[0].tokens.keys[1].kid:") == true)
        #expect(configError(minimalYAML.replacingOccurrences(of: "secret: \"0123456789abcdef0123456789abcdef\"}]", with: "secret: short}]"))?.hasPrefix("apps[0].tokens.keys[0].secret: must be at least 32 bytes") == true)
        #expect(configError("apps: []")?.hasPrefix("security: is required") == true)
        #expect(configError("security: [unclosed")?.contains("not valid YAML") == true)
        #expect(configError(minimalYAML + "\nsurfaces: {hub: {app: ghost}}")?.hasPrefix("surfaces.hub.app: no app has the id 'ghost'") == true)
        let smsOnly = withGateway("sms", #"{provider: webhook, url: "https://127.0.0.1:9/sms", secret: "webhook-secret-0123456789"}"#)
            .replacingOccurrences(of: "channels: [email]", with: "channels: [sms]")
        #expect(configError(smsOnly + "\nsurfaces: {password_reset: {app: a1}}")?.hasPrefix("surfaces.password_reset.app: app 'a1' must enable the email channel") == true)
        #expect(configError(minimalYAML + "\nsurfaces: {password_reset: {app: a1}}") == nil)
    }

    /// `minimalYAML` with `gateway` for `channel` (in place of its webhook for email).
    func withGateway(_ channel: String, _ gateway: String) -> String {
        let email = #"  email: {provider: webhook, url: "https://127.0.0.1:9/hook", secret: "webhook-secret-0123456789"}"#
        return channel == "email"
            ? minimalYAML.replacingOccurrences(of: email, with: "  email: \(gateway)")
            : minimalYAML.replacingOccurrences(of: "delivery:\n", with: "delivery:\n  \(channel): \(gateway)\n")
    }

    /// Production refuses what would leak codes or let a placeholder through: plain-http
    /// gateways, SMTP without TLS, secrets that are not of their provider's shape.
    @Test func productionRefusesPlainTextAndMisshapenSecrets() throws {
        #expect(configError(withGateway("email", #"{provider: webhook, url: "http://hooks.example.com/otp", secret: "webhook-secret-0123456789"}"#))?.hasPrefix("delivery.email.url: 'http://hooks.example.com/otp' is plain http") == true)
        #expect(configError(withGateway("email", #"{provider: webhook, url: "https://hooks.example.com/otp", secret: "short"}"#))?.hasPrefix("delivery.email.secret: must be at least 24 bytes") == true)
        #expect(configError(withGateway("email", #"{provider: smtp, smtp_url: "smtp://mail.example.com:587", from: "otp@example.com", tls: none}"#))?.hasPrefix("delivery.email.tls:") == true)
        #expect(configError(withGateway("email", #"{provider: smtp, smtp_url: "smtp://mail.example.com:587", from: "otp@example.com"}"#)) == nil)
        #expect(configError(withGateway("sms", #"{provider: twilio, account_sid: AC1, auth_token: "0123456789abcdef0123456789abcdef", from: "+15005550006"}"#))?.hasPrefix("delivery.sms.account_sid: must be") == true)
        #expect(configError(withGateway("sms", #"{provider: twilio, account_sid: AC0123456789abcdef0123456789abcdef, auth_token: "changeme", from: "+15005550006"}"#))?.hasPrefix("delivery.sms.auth_token: must be 32 hex digits") == true)
        #expect(configError(withGateway("telegram", #"{provider: telegram, bot_token: "token"}"#))?.hasPrefix("delivery.telegram.bot_token: must be a BotFather token") == true)
        // Development accepts all of them.
        let dev = "mode: development\n" + withGateway("email", #"{provider: smtp, smtp_url: "smtp://127.0.0.1:2525", from: "otp@example.com", tls: none}"#)
        #expect(configError(dev) == nil)
    }

    @Test func eachProviderTakesItsOwnKeys() throws {
        let twilio = #"{provider: twilio, account_sid: AC0123456789abcdef0123456789abcdef, auth_token: "0123456789abcdef0123456789abcdef", from: "+15005550006"}"#
        let (c, _) = try ConfigLoader.parse(withGateway("sms", twilio), environment: [:])
        guard case .twilio(let sms) = c.delivery.sms else {
            Issue.record("delivery.sms is not a twilio gateway")
            return
        }
        #expect(sms.baseURL == "https://api.twilio.com" && sms.accountSID == "AC0123456789abcdef0123456789abcdef" && sms.authToken == "0123456789abcdef0123456789abcdef")
        let telegram = try ConfigLoader.parse(withGateway("telegram", "{provider: telegram, bot_token: \"123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw\", webhook_secret: s3cret_Token-1234}"), environment: [:])
        guard case .telegram(let bot) = telegram.0.delivery.telegram else {
            Issue.record("delivery.telegram is not a telegram gateway")
            return
        }
        #expect(bot.apiBaseURL == "https://api.telegram.org" && bot.botToken == "123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw" && bot.webhookSecret == "s3cret_Token-1234" && bot.codeLifetime == nil)

        // The decoder, from the provider's own type, says what is missing or does not belong.
        #expect(configError(withGateway("sms", #"{provider: twilio, auth_token: "t", from: "+15005550006"}"#)) == "delivery.sms.account_sid: is required")
        #expect(configError(withGateway("sms", #"{provider: twilio, account_sid: AC1, auth_token: "", from: "+1"}"#))?.hasPrefix("delivery.sms.auth_token: is empty") == true)
        #expect(configError(withGateway("sms", "{account_sid: AC1}")) == "delivery.sms.provider: is required")
        #expect(configError(withGateway("email", #"{provider: smtp, smtp_url: "smtp://127.0.0.1:25", from: "a@example.com", account_sid: AC1}"#))?.hasPrefix("delivery.email.account_sid: unknown key") == true)
        #expect(configError(withGateway("email", #"{provider: smtp, from: "a@example.com"}"#)) == "delivery.email.smtp_url: is required")
        #expect(configError(withGateway("telegram", "{provider: telegram}")) == "delivery.telegram.bot_token: is required")
        #expect(configError(withGateway("sms", "{provider: webhook, url: \"http://127.0.0.1:9/\"}")) == "delivery.sms.secret: is required")
        #expect(configError(withGateway("sms", "{provider: log, url: \"http://127.0.0.1:9/\"}"))?.hasPrefix("delivery.sms.url: unknown key") == true)
        #expect(configError(withGateway("sms", "{provider: pigeon}"))?.hasPrefix("delivery.sms.provider:") == true)

        // What types cannot say: schemes, the channels a provider carries, placeholder secrets.
        #expect(configError(withGateway("sms", #"{provider: twilio, base_url: "ftp://x", account_sid: AC1, auth_token: "t", from: "+1"}"#))?.hasPrefix("delivery.sms.base_url: 'ftp://x' must be an http:// or https:// URL") == true)
        #expect(configError(withGateway("email", #"{provider: smtp, smtp_url: "http://mail", from: "a@example.com"}"#))?.hasPrefix("delivery.email.smtp_url:") == true)
        #expect(configError(withGateway("email", twilio)) == "delivery.email.provider: twilio carries call and sms, not email")
        #expect(configError(withGateway("sms", #"{provider: twilio, account_sid: AC1, auth_token: "insecure-t", from: "+1"}"#))?.hasPrefix("delivery.sms.auth_token: is a development placeholder") == true)
    }

    /// The bot's webhook secret, the Telegram Gateway's code shape, and the SMS fallback.
    @Test func telegramRules() throws {
        let bot = "{provider: telegram, bot_token: \"123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw\""
        // Production needs a webhook secret, of Telegram's alphabet and length.
        #expect(configError(withGateway("telegram", bot + "}"))?.hasPrefix("delivery.telegram.webhook_secret: is required in production") == true)
        #expect(configError(withGateway("telegram", bot + ", webhook_secret: \"has space\"}"))?.hasPrefix("delivery.telegram.webhook_secret: must be 1-256 characters") == true)
        #expect(configError(withGateway("telegram", bot + ", webhook_secret: \"\(String(repeating: "a", count: 257))\"}"))?.hasPrefix("delivery.telegram.webhook_secret: must be 1-256") == true)
        #expect(configError(withGateway("telegram", bot + ", webhook_secret: ok_Secret-1234567, code_lifetime: 0}"))?.hasPrefix("delivery.telegram.code_lifetime:") == true)
        #expect(configError("mode: development\n" + withGateway("telegram", bot + "}")) == nil)

        // The Gateway alone carries telegram, for codes of 4-8 digits only.
        let gateway = minimalYAML.replacingOccurrences(
            of: "delivery:\n", with: "delivery:\n  telegram_gateway: {token: \"gw-token-0123456789\"}\n  sms: {provider: webhook, url: \"https://127.0.0.1:9/sms\", secret: \"webhook-secret-0123456789\"}\n")
        let telegramApp = gateway.replacingOccurrences(of: "channels: [email]", with: "channels: [email, telegram]")
        #expect(configError(telegramApp) == nil)
        #expect(configError(telegramApp.replacingOccurrences(of: "channels: [email, telegram]", with: "channels: [email, telegram]\n    otp: {alphabet: alphanumeric}"))?.hasPrefix("apps[0].otp: the telegram channel goes through the Telegram Gateway") == true)
        #expect(configError(telegramApp.replacingOccurrences(of: "channels: [email, telegram]", with: "channels: [email, telegram]\n    otp: {length: 10}"))?.hasPrefix("apps[0].otp:") == true)
        #expect(configError(gateway.replacingOccurrences(of: "token: \"gw", with: "base_url: \"http://gw.example.com\", token: \"gw"))?.hasPrefix("delivery.telegram_gateway.base_url:") == true)
        #expect(configError(gateway.replacingOccurrences(of: "token: \"gw-token-0123456789\"", with: "token: \"\""))?.hasPrefix("delivery.telegram_gateway.token: is empty") == true)

        // fallback: only {telegram: sms}, with the Gateway, an sms gateway and telegram enabled.
        let fallback = telegramApp.replacingOccurrences(of: "channels: [email, telegram]", with: "channels: [email, telegram]\n    fallback: {telegram: sms}")
        #expect(configError(fallback) == nil)
        #expect(configError(fallback.replacingOccurrences(of: "{telegram: sms}", with: "{telegram: call}"))?.hasPrefix("apps[0].fallback: only {telegram: sms}") == true)
        #expect(configError(fallback.replacingOccurrences(of: "{telegram: sms}", with: "{pigeon: sms}"))?.hasPrefix("apps[0].fallback") == true)
        #expect(configError(fallback.replacingOccurrences(of: "channels: [email, telegram]", with: "channels: [email]"))?.hasPrefix("apps[0].fallback.telegram: the app does not enable telegram") == true)
        #expect(configError(fallback.replacingOccurrences(of: "  telegram_gateway: {token: \"gw-token-0123456789\"}\n", with: "").replacingOccurrences(of: "channels: [email, telegram]", with: "channels: [email]"))?.hasPrefix("apps[0].fallback.telegram:") == true)
    }

    /// WhatsApp in production: an https base_url, and the two secrets of its webhook.
    @Test func whatsappRules() throws {
        let cloud = "{provider: whatsapp_cloud, phone_number_id: \"1234567890\", access_token: \"EAAG-token-0123456789\", template: otp_code"
        let secrets = ", app_secret: \"app-secret-0123456789abcdef\", verify_token: \"verify-token-0123456789\""
        #expect(configError(withGateway("whatsapp", cloud + secrets + "}")) == nil)
        #expect(configError(withGateway("whatsapp", cloud + "}"))?.hasPrefix("delivery.whatsapp.app_secret: is required in production") == true)
        #expect(configError(withGateway("whatsapp", cloud + ", app_secret: \"app-secret-0123456789abcdef\"}"))?.hasPrefix("delivery.whatsapp.verify_token: is required in production") == true)
        #expect(configError(withGateway("whatsapp", cloud + secrets + ", base_url: \"http://graph.example.com\"}"))?.hasPrefix("delivery.whatsapp.base_url: 'http://graph.example.com' is plain http; production mode requires https://") == true)
        #expect(configError(withGateway("whatsapp", cloud + secrets + ", phone_number_id: \"12ab\"}")) != nil)
        #expect(configError(withGateway("sms", cloud + secrets + "}")) == "delivery.sms.provider: whatsapp_cloud carries whatsapp, not sms")
        #expect(configError("mode: development\n" + withGateway("whatsapp", cloud + "}")) == nil)
    }

    @Test func productionRefusesDevelopmentSecretsAndTheLogGateway() throws {
        let production = try shippedConfigText().replacingOccurrences(of: "mode: development", with: "mode: production")
        #expect(configError(production)?.contains("development placeholder") == true)
        let realSecrets = production.replacingOccurrences(of: "insecure-", with: "real-secret-")
        #expect(configError(realSecrets)?.hasPrefix("delivery.email.provider: the log provider") == true)
    }

    /// Numbers that would overflow (`* 1000`, `now + ttl`) or make no sense are refused at
    /// load time, each naming its key; the bounds themselves still load.
    @Test func hostileNumbersAreRefusedNamingTheirKey() throws {
        let huge = "4611686018427387904"  // 2^62
        func app(_ section: String) -> String {
            minimalYAML.replacingOccurrences(of: "channels: [email]", with: "channels: [email]\n    \(section)")
        }
        func tokens(_ fields: String) -> String {
            minimalYAML.replacingOccurrences(of: "tokens: {keys:", with: "tokens: {\(fields), keys:")
        }
        let cases: [(yaml: String, key: String)] = [
            (app("otp: {ttl_seconds: \(huge)}"), "apps[0].otp.ttl_seconds"),
            (app("otp: {ttl_seconds: 315360001}"), "apps[0].otp.ttl_seconds"),
            (app("otp: {resend_cooldown_seconds: \(huge)}"), "apps[0].otp.resend_cooldown_seconds"),
            (app("otp: {max_attempts: \(huge)}"), "apps[0].otp.max_attempts"),
            (app("limits: {lockout_seconds: \(huge)}"), "apps[0].limits.lockout_seconds"),
            (app("limits: {sends_per_ip_per_hour: \(huge)}"), "apps[0].limits.sends_per_ip_per_hour"),
            (app("limits: {max_consecutive_failures: \(huge)}"), "apps[0].limits.max_consecutive_failures"),
            (app("password: {min_length: 100000}"), "apps[0].password.min_length"),
            (tokens("refresh_ttl_seconds: \(huge)"), "apps[0].tokens.refresh_ttl_seconds"),
            (tokens("access_ttl_seconds: \(huge)"), "apps[0].tokens.access_ttl_seconds"),
            (tokens("session_max_seconds: \(huge)"), "apps[0].tokens.session_max_seconds"),
            (tokens("reuse_interval_seconds: \(huge)"), "apps[0].tokens.reuse_interval_seconds"),
            (minimalYAML + "\nserver: {max_body_bytes: 1099511627776}", "server.max_body_bytes"),
            (minimalYAML + "\nserver: {max_body_bytes: 16777217}", "server.max_body_bytes"),
            (minimalYAML + "\nserver: {idle_timeout_seconds: \(huge)}", "server.idle_timeout_seconds"),
            (minimalYAML + "\nserver: {max_connections: \(huge)}", "server.max_connections"),
            (minimalYAML + "\nredis: {timeout_ms: \(huge)}", "redis.timeout_ms"),
            (minimalYAML.replacingOccurrences(of: "delivery:\n", with: "delivery:\n  timeout_ms: \(huge)\n"), "delivery.timeout_ms"),
            (minimalYAML + "\nsurfaces: {channel_api: {basic_auth: {username: u, password: \"channel-password-123\"}, max_attempts: \(huge)}}",
             "surfaces.channel_api.max_attempts"),
        ]
        for (yaml, key) in cases {
            let error = configError(yaml)
            #expect(error?.hasPrefix("\(key):") == true, "\(key): \(error ?? "accepted")")
        }
        let bot = "{provider: telegram, bot_token: \"123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw\", webhook_secret: sixteen_chars_12"
        for bad in ["0", "-1", huge] {
            let error = configError(withGateway("telegram", bot + ", codes_per_chat_per_hour: \(bad)}"))
            #expect(error?.hasPrefix("delivery.telegram.codes_per_chat_per_hour: must be") == true, "\(error ?? "accepted")")
        }
        let (telegram, _) = try ConfigLoader.parse(withGateway("telegram", bot + ", codes_per_chat_per_hour: 3}"), environment: [:])
        guard case .telegram(let chosen) = telegram.delivery.telegram else { Issue.record("not a telegram gateway"); return }
        #expect(chosen.codesPerChatPerHour == 3)
        // The bounds load: 1 s, 10 years, 16 MiB, and a cooldown of 0 (none).
        let tenYears = 315_360_000
        #expect(configError(app("otp: {ttl_seconds: 1, resend_cooldown_seconds: 0}")) == nil)
        #expect(configError(app("otp: {ttl_seconds: \(tenYears)}\n    limits: {lockout_seconds: \(tenYears)}")) == nil)
        #expect(configError(tokens("refresh_ttl_seconds: \(tenYears), session_max_seconds: \(tenYears), reuse_interval_seconds: 0")) == nil)
        #expect(configError(minimalYAML + "\nserver: {max_body_bytes: 16777216}") == nil)
    }

    /// Production refuses a trusted proxy range that covers every address (one forged
    /// X-Forwarded-For would then bypass every per-IP limit) and receiver secrets shorter than
    /// 16 characters; development still accepts both.
    @Test func productionRefusesOpenProxiesAndShortReceiverSecrets() throws {
        for range in ["0.0.0.0/0", "::/0", "10.0.0.0/0"] {
            let yaml = minimalYAML + "\nserver: {trusted_proxies: [\"127.0.0.1\", \"\(range)\"]}"
            #expect(configError(yaml)?.hasPrefix("server.trusted_proxies[1]: ") == true, "\(range): \(configError(yaml) ?? "accepted")")
            #expect(configError("mode: development\n" + yaml) == nil)
        }
        #expect(configError(minimalYAML + "\nserver: {trusted_proxies: [\"10.0.0.0/8\", \"fd00::/8\"]}") == nil)
        let bot = "{provider: telegram, bot_token: \"123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw\""
        for secret in ["x", "fifteen_chars_1"] {
            let yaml = withGateway("telegram", bot + ", webhook_secret: \(secret)}")
            #expect(configError(yaml)?.hasPrefix("delivery.telegram.webhook_secret: must be at least 16") == true, "\(configError(yaml) ?? "accepted")")
            #expect(configError("mode: development\n" + yaml) == nil)
        }
        #expect(configError(withGateway("telegram", bot + ", webhook_secret: sixteen_chars_12}")) == nil)
        // The Gateway token is the key of its delivery reports' signatures.
        let gateway = minimalYAML.replacingOccurrences(of: "delivery:\n", with: "delivery:\n  telegram_gateway: {token: \"short\"}\n")
        #expect(configError(gateway)?.hasPrefix("delivery.telegram_gateway.token: must be at least 16") == true, "\(configError(gateway) ?? "accepted")")
        #expect(configError("mode: development\n" + gateway) == nil)
        // The webhook provider's signing secret (24 bytes in production, as before).
        #expect(configError(withGateway("email", #"{provider: webhook, url: "https://h.example.com/otp", secret: "x"}"#))?.hasPrefix("delivery.email.secret:") == true)
    }

    @Test func networkRanges() throws {
        let v4 = try #require(NetworkRange("10.0.0.0/8"))
        #expect(v4.contains("10.200.3.4") && !v4.contains("11.0.0.1") && !v4.contains("::1"))
        #expect(v4.contains("::ffff:10.1.1.1"))
        let host = try #require(NetworkRange("127.0.0.1"))
        #expect(host.contains("127.0.0.1") && !host.contains("127.0.0.2"))
        let v6 = try #require(NetworkRange("fd00::/8"))
        #expect(v6.contains("fd12::1") && !v6.contains("fe80::1"))
        #expect(NetworkRange("300.1.1.1") == nil && NetworkRange("1.2.3.4/40") == nil && NetworkRange("nonsense") == nil)
    }
}
