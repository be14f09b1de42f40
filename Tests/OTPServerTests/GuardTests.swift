import Foundation
import OTPCore
import OTPTestSupport
import RedisClient
import Testing

@testable import OTPServer

/// Apps shaped for the abuse guards: each exercises one.
func guardYAML(prefix: String) -> String {
    let key = testJWTKey
    return testYAMLHeader(redisURL: nil, prefix: prefix, trustedProxies: "127.0.0.1/32") + """
        apps:
          - id: ipguess
            channels: [email]
            otp: {resend_cooldown_seconds: 0, max_attempts: 10}
            limits: {failed_attempts_per_ip_per_hour: 5, failed_attempts_per_identifier_per_hour: 100}
            tokens: {keys: [\(key)]}
          - id: lockout
            channels: [email]
            otp: {resend_cooldown_seconds: 0, max_attempts: 10}
            limits: {max_consecutive_failures: 3, lockout_seconds: 120, failed_attempts_per_identifier_per_hour: 100}
            tokens: {keys: [\(key)]}
          - id: refresh
            channels: [email]
            otp: {resend_cooldown_seconds: 0}
            limits: {refreshes_per_session_per_hour: 3}
            tokens: {reuse_interval_seconds: 10, keys: [\(key)]}
          - id: reuse
            channels: [email]
            otp: {resend_cooldown_seconds: 0}
            tokens: {reuse_interval_seconds: 10, keys: [\(key)]}
          - id: retries
            channels: [email]
            otp: {resend_cooldown_seconds: 0}
            limits: {refreshes_per_session_per_hour: 2}
            tokens: {reuse_interval_seconds: 10, keys: [\(key)]}
          - id: session
            channels: [email]
            otp: {resend_cooldown_seconds: 0}
            tokens: {session_max_seconds: 2, keys: [\(key)]}
          - id: pumping
            channels: [sms, call, email]
            otp: {resend_cooldown_seconds: 0}
            limits: {allowed_country_codes: ["44", "1"], sms_and_calls_per_app_per_hour: 2}
            tokens: {keys: [\(key)]}
          - id: victim
            channels: [email]
            otp: {resend_cooldown_seconds: 0}
            limits: {sends_per_ip_per_hour: 2}
            tokens: {keys: [\(key)]}
          - id: conceal
            channels: [email, telegram]
            conceal_unknown_users: true
            otp: {resend_cooldown_seconds: 0}
            tokens: {keys: [\(key)]}
        """
}

@Suite("Guards: what an attacker tries against v1")
struct GuardTests {
    static func email() -> String { "g-\(UUID().uuidString.prefix(8).lowercased())@example.com" }
    /// Each request from a client address of its own (the harness trusts 127.0.0.1 as a proxy).
    static func from(_ ip: String) -> [String: String] { ["X-Forwarded-For": ip] }
    static func randomIP() -> String { "203.0.113.\(Int.random(in: 1...250))" }

    func harness() throws -> V1Harness { try V1Harness { guardYAML(prefix: $1) } }

    /// Sends a code to `email` on `app` from `ip`; its otp_id and code.
    func codeFor(_ harness: V1Harness, _ http: HTTP, app: String, _ email: String, ip: String) async throws -> (String, String) {
        var send = try await http.post("/v1/apps/\(app)/register/otp", ["identifier": email], headers: Self.from(ip))
        if send.code == "user_already_exists" {
            send = try await http.post("/v1/apps/\(app)/login/otp", ["identifier": email], headers: Self.from(ip))
        }
        #expect(send.status == 201 || send.status == 200, "\(send.body)")
        return (try #require(send.json["otp_id"] as? String), try #require(harness.capture.lastCode(to: email)))
    }

    static func wrong(_ code: String) -> String { code == "000000" ? "111111" : "000000" }

    @Test func aSendRefusedByTheClientQuotaLeavesTheVictimsCodeUsable() async throws {
        let harness = try harness()
        try await harness.run { http in
            let victim = Self.email()
            let (otpID, code) = try await codeFor(harness, http, app: "victim", victim, ip: "198.51.100.7")
            // The attacker spends its own quota, then asks for the victim's code again.
            let attacker = "198.51.100.66"
            for _ in 0..<2 { _ = try await http.post("/v1/apps/victim/login/otp", ["identifier": Self.email()], headers: Self.from(attacker)) }
            let refused = try await http.post("/v1/apps/victim/login/otp", ["identifier": victim], headers: Self.from(attacker))
            #expect(refused.status == 429 && refused.code == "rate_limited" && refused.header("Retry-After") != nil)
            // The victim's code still works: the refused send touched nothing of theirs.
            let activate = try await http.post("/v1/apps/victim/otp/activate", ["otp_id": otpID, "otp": code])
            #expect(activate.status == 200, "\(activate.body)")
        }
    }

    @Test func wrongCodesFromOneClientAcrossUsersAreCapped() async throws {
        let harness = try harness()
        try await harness.run { http in
            let attacker = Self.randomIP()
            var sent: [(String, String)] = []
            for _ in 0..<12 { sent.append(try await codeFor(harness, http, app: "ipguess", Self.email(), ip: Self.randomIP())) }
            let targets = sent
            // Twelve users guessed at once from one address: exactly five guesses are evaluated.
            let statuses = try await concurrently(12) { i in
                try await http.post(
                    "/v1/apps/ipguess/otp/activate", ["otp_id": targets[i].0, "otp": Self.wrong(targets[i].1)],
                    headers: Self.from(attacker)
                ).status
            }
            #expect(statuses.filter { $0 == 401 }.count == 5, "\(statuses)")
            #expect(statuses.filter { $0 == 429 }.count == 7, "\(statuses)")
            // Even the right code is not evaluated from that address now…
            let blocked = try await http.post(
                "/v1/apps/ipguess/otp/activate", ["otp_id": targets[0].0, "otp": targets[0].1], headers: Self.from(attacker))
            #expect(blocked.status == 429 && blocked.code == "too_many_attempts" && blocked.header("Retry-After") != nil)
            // …while its owner, elsewhere, signs in; and right codes never spend the budget.
            for target in targets.prefix(6) {
                let ok = try await http.post("/v1/apps/ipguess/otp/activate", ["otp_id": target.0, "otp": target.1], headers: Self.from("192.0.2.1"))
                #expect(ok.status == 200)
            }
            let metrics = try await http.get("/metrics").body
            #expect(metrics.contains(#"otpd_security_events_total{app="ipguess",event="failed_attempts_per_ip_exceeded"}"#))
        }
    }

    @Test func rightCodesFromOneClientGiveTheirUnitBack() async throws {
        let harness = try harness()
        try await harness.run { http in
            let client = Self.randomIP()
            var sent: [(String, String)] = []
            for _ in 0..<13 { sent.append(try await codeFor(harness, http, app: "ipguess", Self.email(), ip: Self.randomIP())) }
            // Seven right codes from one address (its limit is five wrong ones an hour): each
            // reserves a unit and gives it back, so none of them is refused…
            for target in sent.prefix(7) {
                let ok = try await http.post(
                    "/v1/apps/ipguess/otp/activate", ["otp_id": target.0, "otp": target.1], headers: Self.from(client))
                #expect(ok.status == 200, "\(ok.body)")
            }
            // …and the address still has all five wrong guesses, then no more.
            for target in sent.dropFirst(7).prefix(5) {
                let wrong = try await http.post(
                    "/v1/apps/ipguess/otp/activate", ["otp_id": target.0, "otp": Self.wrong(target.1)], headers: Self.from(client))
                #expect(wrong.status == 401, "\(wrong.body)")
            }
            let refused = try await http.post(
                "/v1/apps/ipguess/otp/activate", ["otp_id": sent[12].0, "otp": Self.wrong(sent[12].1)], headers: Self.from(client))
            #expect(refused.status == 429 && refused.code == "too_many_attempts", "\(refused.body)")
        }
    }

    @Test func wrongCodesInARowLockTheIdentifierUntilUnlocked() async throws {
        let harness = try harness()
        try await harness.run { http in
            let email = Self.email()
            let ip = Self.randomIP()
            // A successful sign-in resets the count: 2 wrong, right, 2 wrong, right — no lockout.
            for _ in 0..<2 {
                let (otpID, code) = try await codeFor(harness, http, app: "lockout", email, ip: ip)
                for _ in 0..<2 { _ = try await http.post("/v1/apps/lockout/otp/activate", ["otp_id": otpID, "otp": Self.wrong(code)]) }
                #expect(try await http.post("/v1/apps/lockout/otp/activate", ["otp_id": otpID, "otp": code]).status == 200)
            }
            // Three wrong in a row, across two codes: locked, even for the right code.
            var (otpID, code) = try await codeFor(harness, http, app: "lockout", email, ip: ip)
            for attempt in 0..<3 {
                if attempt == 2 { (otpID, code) = try await codeFor(harness, http, app: "lockout", email, ip: ip) }
                #expect(try await http.post("/v1/apps/lockout/otp/activate", ["otp_id": otpID, "otp": Self.wrong(code)]).status == 401)
            }
            let locked = try await http.post("/v1/apps/lockout/otp/activate", ["otp_id": otpID, "otp": code])
            #expect(locked.status == 429 && locked.code == "identifier_locked")
            #expect((118...120).contains(locked.header("Retry-After").flatMap(Int.init) ?? 0))
            let send = try await http.post("/v1/apps/lockout/login/otp", ["identifier": email], headers: Self.from(ip))
            #expect(send.status == 429 && send.code == "identifier_locked" && send.header("Retry-After") != nil)
            // The user is neither deleted nor blocked: an operator lifts the lock early.
            let engine = OTPEngine(configuration: harness.configuration, redis: try TestRedis.client(), providers: [:], logger: quietLogger)
            #expect(try await engine.unlock(appID: "lockout", identifier: email))
            #expect(try await http.post("/v1/apps/lockout/otp/activate", ["otp_id": otpID, "otp": code]).status == 200)
            let metrics = try await http.get("/metrics").body
            #expect(metrics.contains(#"otpd_security_events_total{app="lockout",event="identifier_locked"} 1"#))
        }
    }

    @Test func aRetriedRefreshGetsTheSameTokenAndReuseStillRevokes() async throws {
        let harness = try harness()
        try await harness.run { http in
            let result = try await harness.signIn(http, app: "reuse", identifier: Self.email())
            let first = try #require(result["refresh_token"] as? String)
            // Two clients refresh the same token at once: both get the same new token.
            let replies = try await concurrently(2) { _ in
                try await http.post("/v1/apps/reuse/tokens/refresh", ["refresh_token": first]).status
            }
            #expect(replies == [200, 200])
            let retry = try await http.post("/v1/apps/reuse/tokens/refresh", ["refresh_token": first])
            #expect(retry.status == 200 && retry.header("Cache-Control") == "no-store")
            let second = try #require((retry.json["auth_result"] as? [String: Any])?["refresh_token"] as? String)
            #expect(second != first)
            // Once the child is used, the parent is a stolen token: the session dies.
            let third = try await http.post("/v1/apps/reuse/tokens/refresh", ["refresh_token": second])
            #expect(third.status == 200)
            let replay = try await http.post("/v1/apps/reuse/tokens/refresh", ["refresh_token": first])
            #expect(replay.status == 401 && replay.code == "refresh_token_reused")
            let thirdToken = try #require((third.json["auth_result"] as? [String: Any])?["refresh_token"] as? String)
            #expect(try await http.post("/v1/apps/reuse/tokens/refresh", ["refresh_token": thirdToken]).status == 401)
            let metrics = try await http.get("/metrics").body
            #expect(metrics.contains(#"otpd_security_events_total{app="reuse",event="refresh_token_reused"} 1"#))
        }
    }

    /// Retries within the reuse interval mint access tokens too: they count against the
    /// session's hourly refreshes, or a loop of retries would mint tokens without bound.
    @Test func retriedRefreshesCountAgainstTheSessionsHourlyRefreshes() async throws {
        let harness = try harness()
        try await harness.run { http in
            let first = try #require(try await harness.signIn(http, app: "retries", identifier: Self.email())["refresh_token"] as? String)
            #expect(try await http.post("/v1/apps/retries/tokens/refresh", ["refresh_token": first]).status == 200)
            #expect(try await http.post("/v1/apps/retries/tokens/refresh", ["refresh_token": first]).status == 200)
            let third = try await http.post("/v1/apps/retries/tokens/refresh", ["refresh_token": first])
            #expect(third.status == 429 && third.code == "rate_limited" && third.header("Retry-After") != nil)
        }
    }

    @Test func aSessionRotatesAtMostSoOftenAnHourAndEndsAtItsMaximum() async throws {
        let harness = try harness()
        try await harness.run { http in
            var token = try #require(try await harness.signIn(http, app: "refresh", identifier: Self.email())["refresh_token"] as? String)
            for _ in 0..<3 {
                let rotated = try await http.post("/v1/apps/refresh/tokens/refresh", ["refresh_token": token])
                #expect(rotated.status == 200)
                token = try #require((rotated.json["auth_result"] as? [String: Any])?["refresh_token"] as? String)
            }
            let over = try await http.post("/v1/apps/refresh/tokens/refresh", ["refresh_token": token])
            #expect(over.status == 429 && over.code == "rate_limited" && over.header("Retry-After") != nil)

            let session = try await harness.signIn(http, app: "session", identifier: Self.email())
            #expect((session["refresh_token_expiration"] as? Int ?? .max) <= Int(Date().timeIntervalSince1970) + 3)
            var live = try #require(session["refresh_token"] as? String)
            let early = try await http.post("/v1/apps/session/tokens/refresh", ["refresh_token": live])
            #expect(early.status == 200)
            live = try #require((early.json["auth_result"] as? [String: Any])?["refresh_token"] as? String)
            try await Task.sleep(for: .milliseconds(2200))
            let late = try await http.post("/v1/apps/session/tokens/refresh", ["refresh_token": live])
            #expect(late.status == 401 && late.code == "invalid_refresh_token")
        }
    }

    @Test func smsPumpingIsBoundedByCountryAndByAnHourlyCeiling() async throws {
        let harness = try harness()
        try await harness.run { http in
            let germany = try await http.post("/v1/apps/pumping/register/otp", ["identifier": "+4915112345678"], headers: Self.from(Self.randomIP()))
            #expect(germany.status == 400 && germany.code == "country_not_allowed")
            let uk = try await http.post("/v1/apps/pumping/register/otp", ["identifier": "+44 7700 900-123"], headers: Self.from(Self.randomIP()))
            #expect(uk.status == 201, "\(uk.body)")
            #expect(try await http.post("/v1/apps/pumping/register/otp", ["identifier": "+1 (202) 555-0100", "channel": "call"], headers: Self.from(Self.randomIP())).status == 201)
            let third = try await http.post("/v1/apps/pumping/register/otp", ["identifier": "+12025550101"], headers: Self.from(Self.randomIP()))
            #expect(third.status == 429 && third.code == "rate_limited" && third.header("Retry-After") != nil)
            // Email is not part of the SMS budget.
            #expect(try await http.post("/v1/apps/pumping/register/otp", ["identifier": Self.email()], headers: Self.from(Self.randomIP())).status == 201)
        }
    }

    @Test func namesAreBoundedAndIdentifiersNormalised() async throws {
        let harness = try harness()
        try await harness.run { http in
            let long = try await http.post("/v1/apps/victim/register/otp", ["identifier": Self.email(), "first_name": String(repeating: "a", count: 101)], headers: Self.from(Self.randomIP()))
            #expect(long.status == 400 && long.code == "invalid_field" && long.body.contains("first_name"))
            // A repeated register never overwrites the names of the user it names.
            let owner = Self.email()
            let first = try await http.post("/v1/apps/victim/register/otp", ["identifier": owner, "first_name": "Ada", "last_name": "Lovelace"], headers: Self.from(Self.randomIP()))
            #expect(first.status == 201)
            let again = try await http.post("/v1/apps/victim/register/otp", ["identifier": owner, "first_name": "Mallory", "last_name": "M"], headers: Self.from(Self.randomIP()))
            #expect(again.status == 201)
            let otpID = try #require(again.json["otp_id"] as? String)
            let signedIn = try await http.post("/v1/apps/victim/otp/activate", ["otp_id": otpID, "otp": try #require(harness.capture.lastCode(to: owner))])
            let token = try #require((signedIn.json["auth_result"] as? [String: Any])?["auth_token"] as? String)
            let me = try await http.get("/v1/apps/victim/currentuser", headers: ["Authorization": "Bearer \(token)"])
            #expect((me.json["user"] as? [String: Any])?["first_name"] as? String == "Ada")
            // Full-width letters fold (NFKC) and case folds: one user, not two.
            let local = "n\(UUID().uuidString.prefix(6).lowercased())"
            let plain = try await http.post("/v1/apps/victim/register/otp", ["identifier": "\(local)@example.com"], headers: Self.from(Self.randomIP()))
            let folded = try await http.post("/v1/apps/victim/register/otp", ["identifier": "\(local.uppercased())@ＥＸＡＭＰＬＥ.com"], headers: Self.from(Self.randomIP()))
            #expect(plain.status == 201 && folded.status == 201)
            #expect((plain.json["otp_id"] as? String)?.prefix(24) == (folded.json["otp_id"] as? String)?.prefix(24))
            for invisible in ["a\u{200B}b@example.com", "ab\u{00AD}@example.com", "a\u{202E}b@example.com", "a b@example.com", "a\u{3000}b@example.com"] {
                let reply = try await http.post("/v1/apps/victim/register/otp", ["identifier": invisible], headers: Self.from(Self.randomIP()))
                #expect(reply.status == 400 && reply.code == "invalid_identifier", "\(invisible.unicodeScalars.map { String($0.value, radix: 16) })")
            }
        }
    }

    @Test func theTelegramChannelDoesNotTellWhetherAUserExists() async throws {
        let harness = try harness()
        try await harness.run { http in
            let known = Self.email()
            _ = try await harness.signIn(http, app: "conceal", identifier: known)
            let knownReply = try await http.post("/v1/apps/conceal/login/otp", ["identifier": known, "channel": "telegram"], headers: Self.from(Self.randomIP()))
            let unknownReply = try await http.post("/v1/apps/conceal/login/otp", ["identifier": Self.email(), "channel": "telegram"], headers: Self.from(Self.randomIP()))
            #expect(knownReply.status == unknownReply.status && knownReply.code == unknownReply.code)
            #expect(knownReply.body == unknownReply.body)
        }
    }

    /// A concealed unknown user is answered like a known one: same status, body shape and
    /// headers, and about as late as a real delivery on that channel.
    @Test func aConcealedUnknownUserTakesAsLongAsADelivery() async throws {
        try await FakeGateway.run { gateway in
            gateway.set(.answerAfter(milliseconds: 400))
            let harness = try V1Harness { url, prefix in
                guardYAML(prefix: prefix)
                    .replacingOccurrences(of: "  email: {provider: log}\n", with: "  email: {provider: webhook, url: \"\(gateway.url)\", secret: \"hook-secret-0123456789abcdef\"}\n")
            }
            try await harness.run { http in
                let known = Self.email()
                let register = try await http.post("/v1/apps/conceal/register/otp", ["identifier": known], headers: Self.from(Self.randomIP()))
                #expect(register.status == 201)
                func timed(_ email: String) async throws -> (HTTP.Reply, Double) {
                    let start = Date()
                    let reply = try await http.post("/v1/apps/conceal/login/otp", ["identifier": email], headers: Self.from(Self.randomIP()))
                    return (reply, Date().timeIntervalSince(start))
                }
                let (real, realTime) = try await timed(known)
                let (decoy, decoyTime) = try await timed(Self.email())
                #expect(real.status == 200 && decoy.status == 200)
                #expect(Set(real.json.keys) == Set(decoy.json.keys))
                let realHeaders: [String] = Self.headerNames(real)
                let decoyHeaders: [String] = Self.headerNames(decoy)
                #expect(realHeaders == decoyHeaders)
                #expect(realTime > 0.35 && decoyTime > 0.3, "real \(realTime) s, decoy \(decoyTime) s")
                #expect(gateway.requests.count == 2, "the decoy must deliver nothing")
            }
        }
    }

    /// The names of a reply's headers, without those that differ on every reply anyway.
    static func headerNames(_ reply: HTTP.Reply) -> [String] {
        let varying: Set<String> = ["x-request-id", "date"]
        return reply.headers.map { $0.0.lowercased() }.filter { !varying.contains($0) }.sorted()
    }

    @Test func ipv6ClientsAreCountedPerSlash64() {
        #expect(NetworkRange.quotaSubject(of: "2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64")
        #expect(NetworkRange.quotaSubject(of: "2001:db8:1:2:ffff:ffff:ffff:fffe") == "2001:db8:1:2::/64")
        #expect(NetworkRange.quotaSubject(of: "2001:db8:1:3::1") == "2001:db8:1:3::/64")
        #expect(NetworkRange.quotaSubject(of: "::ffff:198.51.100.9") == "198.51.100.9")
        #expect(NetworkRange.quotaSubject(of: "198.51.100.9") == "198.51.100.9")
    }
}
