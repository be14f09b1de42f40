import Foundation
import Testing

@testable import OTPCrypto

@Suite("JWT: RS256, ES256, EdDSA and HS256 over OpenSSL")
struct JWTAlgorithmTests {
    static let now = 1_800_000_000
    static let claims = JWT.Claims(
        iss: "otpd", aud: "app", sub: "0123456789abcdef01234567", iat: now, exp: now + 1800, jti: "j", amr: ["otp"])

    /// A key set of one new key (or secret) for `algorithm`, under `kid`.
    static func keys(_ algorithm: JWT.Algorithm, kid: String = "k1") -> JWT.KeySet {
        let key: JWT.Key = PrivateKey.generate(for: algorithm).map(JWT.Key.privateKey) ?? .secret(SecureRandom.bytes(32))
        return JWT.KeySet(algorithm: algorithm, keys: [(kid, key)], activeKid: kid)
    }

    static func verify(_ token: String, _ keys: JWT.KeySet) throws(JWT.VerificationError) -> JWT.Claims {
        try JWT.verify(token, keys: keys, audience: "app", issuer: "otpd", now: now)
    }

    static func header(_ token: String) throws -> [String: String] {
        let bytes = try #require(Base64URL.decode(token.split(separator: ".")[0]))
        return try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: String])
    }

    @Test(arguments: JWT.Algorithm.allCases)
    func signAndVerifyRoundTrip(_ algorithm: JWT.Algorithm) throws {
        let keys = Self.keys(algorithm)
        let token = JWT.sign(Self.claims, with: keys)
        #expect(try Self.header(token) == ["alg": algorithm.rawValue, "typ": "JWT", "kid": "k1"])
        #expect(try Self.verify(token, keys) == Self.claims)
        // A key set of another key of the same algorithm refuses it.
        #expect(throws: JWT.VerificationError.badSignature) { try Self.verify(token, Self.keys(algorithm)) }
    }

    @Test(arguments: JWT.Algorithm.allCases)
    func aTamperedSignatureOrPayloadIsRefused(_ algorithm: JWT.Algorithm) throws {
        let keys = Self.keys(algorithm)
        let parts = JWT.sign(Self.claims, with: keys).split(separator: ".").map(String.init)
        var signature = try #require(Base64URL.decode(parts[2]))
        signature[signature.count / 2] ^= 0x01
        #expect(throws: JWT.VerificationError.badSignature) {
            try Self.verify("\(parts[0]).\(parts[1]).\(Base64URL.encode(signature))", keys)
        }
        var other = Self.claims
        other.sub = "aaaaaaaaaaaaaaaaaaaaaaaa"
        let otherPayload = JWT.sign(other, with: keys).split(separator: ".")[1]
        #expect(throws: JWT.VerificationError.badSignature) { try Self.verify("\(parts[0]).\(otherPayload).\(parts[2])", keys) }
        // A truncated or empty signature is refused too, never a crash.
        #expect(throws: JWT.VerificationError.badSignature) {
            try Self.verify("\(parts[0]).\(parts[1]).\(Base64URL.encode(signature.prefix(10)))", keys)
        }
        #expect(throws: JWT.VerificationError.badSignature) { try Self.verify("\(parts[0]).\(parts[1]).", keys) }
    }

    @Test func es256SignaturesAreTheRaw64ByteForm() throws {
        let keys = Self.keys(.es256)
        for _ in 0..<20 {
            let token = JWT.sign(Self.claims, with: keys)
            #expect(Base64URL.decode(token.split(separator: ".")[2])?.count == 64)
        }
        // The DER form OpenSSL produces is not accepted in a token.
        let parts = JWT.sign(Self.claims, with: keys).split(separator: ".")
        let raw = try #require(Base64URL.decode(parts[2]))
        let der = try #require(PrivateKey.derECDSA(raw: raw))
        #expect(throws: JWT.VerificationError.badSignature) { try Self.verify("\(parts[0]).\(parts[1]).\(Base64URL.encode(der))", keys) }
    }

    @Test func rawAndDERSignaturesConvertBothWays() throws {
        // r with a high bit (DER pads it with a zero byte) and s with leading zeros (DER drops them).
        let raw: [UInt8] = [0x80] + Array(repeating: 0x11, count: 31) + [0, 0, 0x7f] + Array(repeating: 0x22, count: 29)
        let der = try #require(PrivateKey.derECDSA(raw: raw))
        #expect(der[0] == 0x30 && der[2] == 0x02 && der[3] == 33 && der[4] == 0)
        #expect(PrivateKey.rawECDSA(der: der) == raw)
        #expect(PrivateKey.derECDSA(raw: Array(raw.prefix(63))) == nil)
        #expect(PrivateKey.rawECDSA(der: [0x30, 0x01, 0x00]) == nil)
    }

    /// Only the app's algorithm: `none`, and HS256 keyed with the published public key (the
    /// classic confusion: a verifier that lets the header pick the algorithm would accept it).
    @Test(arguments: [JWT.Algorithm.rs256, .es256, .edDSA])
    func algorithmConfusionAndNoneAreRefused(_ algorithm: JWT.Algorithm) throws {
        let keys = Self.keys(algorithm)
        guard case .privateKey(let key) = keys.activeKey else { Issue.record("no private key"); return }
        let payload = JWT.sign(Self.claims, with: keys).split(separator: ".")[1]
        let hsHeader = Base64URL.encode(Array(#"{"alg":"HS256","typ":"JWT","kid":"k1"}"#.utf8))
        let mac = Digest.hmacSHA256(key: Array(key.publicKeyPEM.utf8), message: Array("\(hsHeader).\(payload)".utf8))
        #expect(throws: JWT.VerificationError.unsupportedAlgorithm) {
            try Self.verify("\(hsHeader).\(payload).\(Base64URL.encode(mac))", keys)
        }
        for alg in ["none", "None", "", algorithm.rawValue.lowercased(), "RS512", "ES384"] {
            let header = Base64URL.encode(Array(#"{"alg":"\#(alg)","typ":"JWT","kid":"k1"}"#.utf8))
            #expect(throws: JWT.VerificationError.unsupportedAlgorithm) { try Self.verify("\(header).\(payload).", keys) }
        }
        // And an HS256 app refuses a token of an asymmetric algorithm.
        let asymmetric = JWT.sign(Self.claims, with: keys)
        #expect(throws: JWT.VerificationError.unsupportedAlgorithm) { try Self.verify(asymmetric, Self.keys(.hs256)) }
    }

    @Test(arguments: JWT.Algorithm.allCases)
    func everyListedKeyVerifiesAndTheActiveOneSigns(_ algorithm: JWT.Algorithm) throws {
        let old = Self.keys(algorithm, kid: "old")
        let new = Self.keys(algorithm, kid: "new")
        let both = JWT.KeySet(
            algorithm: algorithm, keys: [("old", old.activeKey), ("new", new.activeKey)], activeKid: "new")
        let byOld = JWT.sign(Self.claims, with: old)
        #expect(try Self.verify(byOld, both) == Self.claims)
        let byBoth = JWT.sign(Self.claims, with: both)
        #expect(try Self.header(byBoth)["kid"] == "new")
        #expect(try Self.verify(byBoth, new) == Self.claims)
        #expect(throws: JWT.VerificationError.unknownKey) { try Self.verify(byBoth, old) }
    }

    @Test func jwksListsPublicMembersOnly() throws {
        for algorithm in [JWT.Algorithm.rs256, .es256, .edDSA] {
            let first = Self.keys(algorithm, kid: "a")
            let second = Self.keys(algorithm, kid: "b")
            let keys = JWT.KeySet(algorithm: algorithm, keys: [("a", first.activeKey), ("b", second.activeKey)], activeKid: "b")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(keys.jwks)) as? [String: [[String: String]]])
            let jwks = try #require(object["keys"])
            #expect(jwks.map { $0["kid"] } == ["a", "b"])
            let expected: Set<String> = switch algorithm {
            case .rs256: ["kty", "kid", "use", "alg", "n", "e"]
            case .es256: ["kty", "kid", "use", "alg", "crv", "x", "y"]
            default: ["kty", "kid", "use", "alg", "crv", "x"]
            }
            for jwk in jwks {
                #expect(Set(jwk.keys) == expected, "\(algorithm)")
                #expect(jwk["use"] == "sig" && jwk["alg"] == algorithm.rawValue)
            }
            if algorithm == .rs256 {
                #expect(Base64URL.decode(jwks[0]["n"]!)?.count == 256 && jwks[0]["e"] == "AQAB")
            }
            if algorithm == .es256 {
                #expect(jwks[0]["crv"] == "P-256" && Base64URL.decode(jwks[0]["x"]!)?.count == 32 && Base64URL.decode(jwks[0]["y"]!)?.count == 32)
            }
        }
        #expect(String(decoding: Self.keys(.hs256).jwks, as: UTF8.self) == #"{"keys":[]}"#)
    }

    /// RFC 8032 §7.1, test 1: the key from its seed, its public key, and the signature of the
    /// empty message (Ed25519 is deterministic) — an answer known independently of OpenSSL.
    @Test func ed25519MatchesRFC8032() throws {
        let seed = hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
        let pkcs8 = hex("302e020100300506032b657004220420") + seed
        let key = try PrivateKey(pem: pem(pkcs8))
        #expect(key.kind == .ed25519 && key.fits(.edDSA) && !key.fits(.es256))
        #expect(key.publicJWKMembers.first { $0.name == "x" }?.value == Base64URL.encode(hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")))
        let signature = hex(
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
        #expect(key.sign([]) == signature)
        #expect(key.verify(signature, of: []))
    }

    /// RFC 7515 appendix A.3: the ES256 example JWS (raw r ‖ s) verifies under its key.
    @Test func es256VerifiesRFC7515Example() throws {
        let d = try #require(Base64URL.decode("jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"))
        // PKCS#8 of a P-256 ECPrivateKey holding only d (OpenSSL derives the public point).
        let pkcs8 = hex("3041020100301306072a8648ce3d020106082a8648ce3d030107042730250201010420") + d
        let key = try PrivateKey(pem: pem(pkcs8))
        #expect(key.kind == .ec(curve: "prime256v1") && key.fits(.es256))
        let members = Dictionary(uniqueKeysWithValues: key.publicJWKMembers.map { ($0.name, $0.value) })
        #expect(members["x"] == "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU" && members["y"] == "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0")
        let jws = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
        let signature = try #require(Base64URL.decode(
            "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"))
        #expect(key.verify(signature, of: Array(jws.utf8)))
        #expect(!key.verify(signature, of: Array((jws + "x").utf8)))
    }

    @Test func badPEMIsRefusedWithoutQuotingIt() throws {
        #expect(throws: PrivateKey.LoadError.notAPrivateKey) { try PrivateKey(pem: "") }
        #expect(throws: PrivateKey.LoadError.notAPrivateKey) { try PrivateKey(pem: "-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n") }
        let key = try #require(PrivateKey.generate(for: .es256))
        #expect(throws: PrivateKey.LoadError.notAPrivateKey) { try PrivateKey(pem: key.publicKeyPEM) }
        #expect(throws: PrivateKey.LoadError.unreadable) { try PrivateKey(pemFile: "/nonexistent/key.pem") }
        // What it generates, it reads back: the same key.
        let again = try PrivateKey(pem: key.pkcs8PEM)
        #expect(again.publicJWKMembers.map(\.value) == key.publicJWKMembers.map(\.value))
        #expect(key.pkcs8PEM.hasPrefix("-----BEGIN PRIVATE KEY-----\n"))
    }

    @Test func keysFitTheirAlgorithmOnly() throws {
        let rsa = try #require(PrivateKey.generate(for: .rs256))
        let ec = try #require(PrivateKey.generate(for: .es256))
        let ed = try #require(PrivateKey.generate(for: .edDSA))
        #expect(rsa.kind == .rsa(bits: 2048))
        #expect(rsa.fits(.rs256) && !rsa.fits(.es256) && !rsa.fits(.edDSA) && !rsa.fits(.hs256))
        #expect(ec.fits(.es256) && !ec.fits(.rs256) && !ec.fits(.edDSA))
        #expect(ed.fits(.edDSA) && !ed.fits(.rs256) && !ed.fits(.es256))
        #expect(PrivateKey.generate(for: .hs256) == nil)
    }
}

private func hex(_ text: String) -> [UInt8] {
    var bytes: [UInt8] = []
    var index = text.startIndex
    while index < text.endIndex {
        let next = text.index(index, offsetBy: 2)
        bytes.append(UInt8(text[index..<next], radix: 16)!)
        index = next
    }
    return bytes
}

private func pem(_ der: [UInt8]) -> String {
    let base64 = Data(der).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
    return "-----BEGIN PRIVATE KEY-----\n\(base64)\n-----END PRIVATE KEY-----\n"
}
