import Foundation
import OTPCore
import OTPCrypto
import OTPTestSupport
import Testing

@testable import OTPServer

/// One app per algorithm, keys made for this run (never committed): `rs` lists two keys and
/// signs with the second, so a token of the first is one of a listed inactive key.
struct AlgorithmApps: Sendable {
    let rsOld = PrivateKey.generate(for: .rs256)!
    let rsNew = PrivateKey.generate(for: .rs256)!
    let es = PrivateKey.generate(for: .es256)!
    let ed = PrivateKey.generate(for: .edDSA)!

    func yaml(redisURL: String, prefix: String, server: String = "") -> String {
        let esFile = try! temporaryPEM(es.pkcs8PEM)
        return testYAMLHeader(redisURL: redisURL, prefix: prefix, trustedProxies: "10.9.0.0/16") + server + """
            apps:
              - id: hs
                channels: [email]
                tokens: {keys: [\(testJWTKey)]}
              - id: rs
                channels: [email]
                tokens: {algorithm: RS256, issuer: otpd-rs, active_kid: new, keys: [{kid: old, private_key: \(yamlPEM(rsOld.pkcs8PEM))}, {kid: new, private_key: \(yamlPEM(rsNew.pkcs8PEM))}]}
              - id: es
                channels: [email]
                tokens: {algorithm: ES256, keys: [{kid: e1, private_key_file: "\(esFile)"}]}
              - id: ed
                channels: [email]
                tokens: {algorithm: EdDSA, keys: [{kid: d1, private_key: \(yamlPEM(ed.pkcs8PEM))}]}
              - id: off
                channels: [email]
                enabled: false
                tokens: {algorithm: EdDSA, keys: [{kid: d1, private_key: \(yamlPEM(ed.pkcs8PEM))}]}
            """
    }
}

@Suite("Tokens: RS256, ES256, EdDSA over HTTP, JWKS and discovery")
struct WellKnownTests {
    static func email() -> String { "jwks-\(UUID().uuidString.prefix(8).lowercased())@example.com" }

    static func parts(_ token: String) throws -> (header: [String: Any], claims: [String: Any]) {
        let pieces = token.split(separator: ".").map { Data(Base64URL.decode($0) ?? []) }
        return (
            try #require(try JSONSerialization.jsonObject(with: pieces[0]) as? [String: Any]),
            try #require(try JSONSerialization.jsonObject(with: pieces[1]) as? [String: Any])
        )
    }

    @Test func eachAlgorithmSignsAndItsTokensAreAccepted() async throws {
        let apps = AlgorithmApps()
        let harness = try V1Harness { redisURL, prefix in apps.yaml(redisURL: redisURL, prefix: prefix) }
        try await harness.run { http in
            for (app, alg, kid) in [("hs", "HS256", "k1"), ("rs", "RS256", "new"), ("es", "ES256", "e1"), ("ed", "EdDSA", "d1")] {
                let result = try await harness.signIn(http, app: app, identifier: Self.email())
                let token = try #require(result["auth_token"] as? String)
                let (header, claims) = try Self.parts(token)
                #expect(header["alg"] as? String == alg && header["kid"] as? String == kid && header["typ"] as? String == "JWT")
                #expect(claims["aud"] as? String == app)
                let me = try await http.get("/v1/apps/\(app)/currentuser", headers: ["Authorization": "Bearer \(token)"])
                #expect(me.status == 200, "\(app): \(me.body)")
                #expect((me.json["user"] as? [String: Any])?["id"] as? String == claims["sub"] as? String)
                // Refresh signs with the same key.
                let refreshed = try await http.post("/v1/apps/\(app)/tokens/refresh", ["refresh_token": result["refresh_token"] as! String])
                let again = try #require((refreshed.json["auth_result"] as? [String: Any])?["auth_token"] as? String)
                #expect(try Self.parts(again).header["alg"] as? String == alg)
            }
        }
    }

    @Test func tokensOfAListedInactiveKeyAreAcceptedAndConfusionIsNot() async throws {
        let apps = AlgorithmApps()
        let harness = try V1Harness { redisURL, prefix in apps.yaml(redisURL: redisURL, prefix: prefix) }
        try await harness.run { http in
            let result = try await harness.signIn(http, app: "rs", identifier: Self.email())
            let token = try #require(result["auth_token"] as? String)
            let (_, object) = try Self.parts(token)
            let claims = JWT.Claims(
                iss: object["iss"] as! String, aud: "rs", sub: object["sub"] as! String, iat: object["iat"] as! Int,
                exp: object["exp"] as! Int, jti: "x", amr: ["otp"])
            let old = JWT.KeySet(algorithm: .rs256, keys: [("old", .privateKey(apps.rsOld))], activeKid: "old")
            func currentUser(_ token: String) async throws -> HTTP.Reply {
                try await http.get("/v1/apps/rs/currentuser", headers: ["Authorization": "Bearer \(token)"])
            }
            #expect(try await currentUser(JWT.sign(claims, with: old)).status == 200)
            // A key that is not listed: refused.
            let stranger = JWT.KeySet(algorithm: .rs256, keys: [("old", .privateKey(PrivateKey.generate(for: .rs256)!))], activeKid: "old")
            #expect(try await currentUser(JWT.sign(claims, with: stranger)).status == 401)
            // HS256 keyed with the public key as published (PEM), and alg none: 401.
            let payload = token.split(separator: ".")[1]
            for (alg, secret) in [("HS256", apps.rsNew.publicKeyPEM), ("none", "")] {
                let header = Base64URL.encode(Array(#"{"alg":"\#(alg)","typ":"JWT","kid":"new"}"#.utf8))
                let signature = secret.isEmpty ? "" : Base64URL.encode(Digest.hmacSHA256(key: Array(secret.utf8), message: Array("\(header).\(payload)".utf8)))
                let reply = try await currentUser("\(header).\(payload).\(signature)")
                #expect(reply.status == 401 && reply.code == "invalid_token", "\(alg)")
                #expect(reply.json["error"] as? String == "only RS256 tokens are accepted", "\(alg)")
            }
            // Another app's (ES256) token is refused here: its algorithm is not this app's.
            let es = try await harness.signIn(http, app: "es", identifier: Self.email())
            #expect(try await currentUser(es["auth_token"] as! String).status == 401)
        }
    }

    @Test func jwksPublishesEveryPublicKeyAndNoPrivatePart() async throws {
        let apps = AlgorithmApps()
        let harness = try V1Harness { redisURL, prefix in apps.yaml(redisURL: redisURL, prefix: prefix) }
        try await harness.run { http in
            let expected: [String: (kids: [String], members: Set<String>)] = [
                "rs": (["old", "new"], ["kty", "kid", "use", "alg", "n", "e"]),
                "es": (["e1"], ["kty", "kid", "use", "alg", "crv", "x", "y"]),
                "ed": (["d1"], ["kty", "kid", "use", "alg", "crv", "x"]),
            ]
            for (app, want) in expected {
                let reply = try await http.get("/v1/apps/\(app)/.well-known/jwks.json")
                #expect(reply.status == 200)
                #expect(reply.header("Cache-Control") == "public, max-age=300")
                #expect(reply.header("Content-Type")?.hasPrefix("application/json") == true)
                let keys = try #require(reply.json["keys"] as? [[String: String]])
                #expect(keys.map { $0["kid"] } == want.kids)
                for key in keys { #expect(Set(key.keys) == want.members, "\(app)") }
            }
            let rs = try #require(try await http.get("/v1/apps/rs/.well-known/jwks.json").json["keys"] as? [[String: String]])
            #expect(rs[1]["n"] == apps.rsNew.publicJWKMembers.first { $0.name == "n" }?.value)
            let hs = try await http.get("/v1/apps/hs/.well-known/jwks.json")
            #expect(hs.status == 200 && hs.body == #"{"keys":[]}"#)
            let unknown = try await http.get("/v1/apps/nope/.well-known/jwks.json")
            #expect(unknown.status == 404 && unknown.code == "app_not_found")
            let disabled = try await http.get("/v1/apps/off/.well-known/jwks.json")
            #expect(disabled.status == 403 && disabled.code == "app_disabled")
        }
    }

    @Test func discoveryNamesTheIssuerTheJWKSAndTheAlgorithm() async throws {
        let apps = AlgorithmApps()
        let harness = try V1Harness { redisURL, prefix in apps.yaml(redisURL: redisURL, prefix: prefix) }
        try await harness.run { http in
            let reply = try await http.get("/v1/apps/rs/.well-known/openid-configuration")
            #expect(reply.status == 200)
            #expect(reply.json["issuer"] as? String == "otpd-rs")
            #expect(reply.json["jwks_uri"] as? String == "http://127.0.0.1:\(http.port)/v1/apps/rs/.well-known/jwks.json")
            #expect(reply.json["id_token_signing_alg_values_supported"] as? [String] == ["RS256"])
            #expect(reply.json["response_types_supported"] as? [String] == ["token"])
            #expect(reply.json["subject_types_supported"] as? [String] == ["public"])
            let hs = try await http.get("/v1/apps/hs/.well-known/openid-configuration")
            #expect(hs.json["id_token_signing_alg_values_supported"] as? [String] == ["HS256"])
            // The Host header names the host; anything else in it is refused, never echoed.
            let named = try await http.get("/v1/apps/ed/.well-known/openid-configuration", headers: ["Host": "auth.example.com:8443"])
            #expect(named.json["jwks_uri"] as? String == "http://auth.example.com:8443/v1/apps/ed/.well-known/jwks.json")
            let v6 = try await http.get("/v1/apps/ed/.well-known/openid-configuration", headers: ["Host": "[::1]:8080"])
            #expect(v6.json["jwks_uri"] as? String == "http://[::1]:8080/v1/apps/ed/.well-known/jwks.json")
            for bad in ["evil.example/path?", "a\"b", "user@host", String(repeating: "a", count: 300), "host:99999x"] {
                let refused = try await http.get("/v1/apps/ed/.well-known/openid-configuration", headers: ["Host": bad])
                #expect(refused.status == 400 && refused.code == "invalid_host", "\(bad): \(refused.status) \(refused.body)")
            }
            let unknown = try await http.get("/v1/apps/nope/.well-known/openid-configuration")
            #expect(unknown.status == 404 && unknown.code == "app_not_found")
        }
    }

    @Test func publicURLMakesTheJWKSURI() async throws {
        let apps = AlgorithmApps()
        let harness = try V1Harness { redisURL, prefix in
            apps.yaml(redisURL: redisURL, prefix: prefix).replacingOccurrences(
                of: "server: {trusted_proxies: [\"10.9.0.0/16\"]}",
                with: "server: {trusted_proxies: [\"10.9.0.0/16\"], public_url: \"https://auth.example.com/otpd/\"}")
        }
        #expect(harness.configuration.server.publicURL != nil)
        try await harness.run { http in
            let reply = try await http.get("/v1/apps/es/.well-known/openid-configuration", headers: ["Host": "ignored.example"])
            #expect(reply.json["jwks_uri"] as? String == "https://auth.example.com/otpd/v1/apps/es/.well-known/jwks.json")
        }
    }
}
