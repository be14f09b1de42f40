import Foundation
import OTPCore
import OTPCrypto
import OTPTestSupport
import Testing

@testable import OTPServer

/// A PEM file of `key` in a temporary directory; its path.
func temporaryPEM(_ text: String) throws -> String {
    let path = NSTemporaryDirectory() + "otpd-key-\(UUID().uuidString).pem"
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

/// `openssl genpkey ARGS…` into a temporary file (keys otpd itself would never make); its path.
func opensslKey(_ arguments: [String]) throws -> String {
    let path = NSTemporaryDirectory() + "otpd-key-\(UUID().uuidString).pem"
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["openssl", "genpkey"] + arguments + ["-out", path]
    process.standardError = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    try #require(process.terminationStatus == 0, "openssl genpkey \(arguments) failed")
    return path
}

/// The PEM of `key` as a double-quoted YAML string.
func yamlPEM(_ pem: String) -> String { "\"\(pem.replacingOccurrences(of: "\n", with: "\\n"))\"" }

@Suite("Tokens: algorithms and their keys in the configuration")
struct TokenKeyConfigTests {
    /// `minimalYAML` with the app's tokens replaced by `tokens` (a YAML flow mapping).
    static func yaml(tokens: String, server: String = "") -> String {
        minimalYAML.replacingOccurrences(
            of: #"tokens: {keys: [{kid: k1, secret: "0123456789abcdef0123456789abcdef"}]}"#, with: "tokens: \(tokens)") + server
    }

    @Test func asymmetricKeysLoadInlineAndFromFiles() throws {
        let rsa = try #require(PrivateKey.generate(for: .rs256))
        let file = try temporaryPEM(rsa.pkcs8PEM)
        let second = try #require(PrivateKey.generate(for: .rs256)).pkcs8PEM
        let (configuration, _) = try ConfigLoader.parse(
            Self.yaml(tokens: "{algorithm: RS256, active_kid: b, keys: [{kid: a, private_key_file: \"\(file)\"}, {kid: b, private_key: \(yamlPEM(second))}]}"),
            environment: [:])
        let tokens = configuration.apps[0].tokens
        #expect(tokens.algorithm == .rs256 && tokens.activeKid == "b")
        #expect(tokens.keys.map(\.privateKeyField) == ["private_key_file", "private_key"])
        #expect(tokens.keys[0].privateKey?.publicJWKMembers.map(\.value) == rsa.publicJWKMembers.map(\.value))
        // Without `algorithm`, HS256 as before.
        #expect(try ConfigLoader.parse(minimalYAML, environment: [:]).0.apps[0].tokens.algorithm == .hs256)
    }

    @Test func aWrongKeyStopsStartupNamingItsKey() throws {
        let ec = try temporaryPEM(try #require(PrivateKey.generate(for: .es256)).pkcs8PEM)
        let ed = try #require(PrivateKey.generate(for: .edDSA)).pkcs8PEM
        let rsa1024 = try opensslKey(["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"])
        let encrypted = try opensslKey(["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-aes-128-cbc", "-pass", "pass:secret"])
        let p384 = try opensslKey(["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"])
        let garbage = "-----BEGIN PRIVATE KEY-----\\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEA\\n-----END PRIVATE KEY-----\\n"
        let cases: [(tokens: String, error: String)] = [
            ("{algorithm: RS256, keys: [{kid: k1, private_key: \"\(garbage)\"}]}",
             "apps[0].tokens.keys[0].private_key: is not a PEM private key"),
            ("{algorithm: ES256, keys: [{kid: k0, private_key_file: \"\(ec)\"}, {kid: k1, private_key_file: /nonexistent/k1.pem}]}",
             "apps[0].tokens.keys[1].private_key_file: '/nonexistent/k1.pem' cannot be read"),
            ("{algorithm: RS256, keys: [{kid: k1, private_key_file: \"\(ec)\"}]}",
             "apps[0].tokens.keys[0].private_key_file: is an EC P-256 key; RS256 needs an RSA key of at least 2048 bits"),
            ("{algorithm: RS256, keys: [{kid: k1, private_key_file: \"\(rsa1024)\"}]}",
             "apps[0].tokens.keys[0].private_key_file: is a 1024-bit RSA key; RS256 needs an RSA key of at least 2048 bits"),
            ("{algorithm: ES256, keys: [{kid: k1, private_key: \(yamlPEM(ed))}]}",
             "apps[0].tokens.keys[0].private_key: is an Ed25519 key; ES256 needs an EC P-256 key"),
            ("{algorithm: ES256, keys: [{kid: k1, private_key_file: \"\(p384)\"}]}",
             "apps[0].tokens.keys[0].private_key_file: is an EC key on curve secp384r1; ES256 needs an EC P-256 key"),
            ("{algorithm: EdDSA, keys: [{kid: k1, private_key_file: \"\(encrypted)\"}]}",
             "apps[0].tokens.keys[0].private_key_file: '\(encrypted)' is an encrypted private key"),
            ("{algorithm: EdDSA, active_kid: k2, keys: [{kid: k1, private_key: \(yamlPEM(ed))}]}",
             "apps[0].tokens.active_kid: 'k2' is not one of the listed keys"),
            ("{algorithm: ES256, keys: [{kid: k1, secret: \"0123456789abcdef0123456789abcdef\"}]}",
             "apps[0].tokens.keys[0].secret: an ES256 key is a private key: give private_key or private_key_file, not a secret"),
            ("{algorithm: EdDSA, keys: [{kid: k1}]}",
             "apps[0].tokens.keys[0].private_key: is required (or private_key_file)"),
            ("{keys: [{kid: k1, private_key: \(yamlPEM(ed))}]}",
             "apps[0].tokens.keys[0].private_key: an HS256 key is a secret; private keys are for algorithm RS256, ES256 or EdDSA"),
            ("{keys: [{kid: k1}]}", "apps[0].tokens.keys[0].secret: is required (algorithm HS256)"),
            ("{algorithm: EdDSA, keys: [{kid: k1, private_key: \(yamlPEM(ed)), private_key_file: \"\(ec)\"}]}",
             "apps[0].tokens.keys[0].private_key_file: give private_key or private_key_file, not both"),
            ("{algorithm: RS512, keys: [{kid: k1, secret: \"0123456789abcdef0123456789abcdef\"}]}",
             "apps[0].tokens.algorithm: 'RS512' is not one of HS256, RS256, ES256, EdDSA"),
        ]
        for (tokens, expected) in cases {
            let error = configError(Self.yaml(tokens: tokens))
            #expect(error?.hasPrefix(expected) == true, "\(expected)\n got: \(error ?? "no error")")
            // No message ever quotes a key.
            #expect(error?.contains("MII") != true && error?.contains("MC4C") != true, "\(error ?? "")")
        }
    }

    @Test func publicURLIsAnHTTPURLOfAHost() throws {
        let tokens = #"{keys: [{kid: k1, secret: "0123456789abcdef0123456789abcdef"}]}"#
        func server(_ url: String) -> String { "\nserver: {public_url: \"\(url)\"}\n" }
        let parsed = try ConfigLoader.parse(Self.yaml(tokens: tokens, server: server("https://auth.example.com/otpd/")), environment: [:])
        #expect(parsed.0.server.publicURL == "https://auth.example.com/otpd/")
        for bad in ["auth.example.com", "ftp://auth.example.com", "http://auth.example.com", "https://", "https://a.example/?x=1",
                    "https://a.example/#f", "https://a b.example", "https://user@a.example"] {
            let error = configError(Self.yaml(tokens: tokens, server: server(bad)))
            #expect(error?.hasPrefix("server.public_url") == true, "\(bad): \(error ?? "accepted")")
        }
    }

    @Test func checkConfigNamesTheWrongKey() async throws {
        let ec = try temporaryPEM(try #require(PrivateKey.generate(for: .es256)).pkcs8PEM)
        let shipped = try shippedConfigText()
        let text = shipped.replacingOccurrences(
            of: "      active_kid: k1\n      keys:\n        - {kid: k1, secret: \"${DEMO_JWT_SECRET:-insecure-dev-jwt-secret-demo-0123456789abcdef}\"}",
            with: "      algorithm: EdDSA\n      active_kid: k1\n      keys:\n        - {kid: k1, private_key_file: \"\(ec)\"}")
        try #require(text != shipped)
        let result = try await runOTPD(["check-config", "--config", try writeTemporaryConfig(text)])
        #expect(result.status == 2)
        #expect(result.output.contains("apps[0].tokens.keys[0].private_key_file: is an EC P-256 key; EdDSA needs an Ed25519 key"), "\(result.output)")
    }
}
