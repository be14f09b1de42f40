@testable import OTPCrypto
import Testing

@Suite("PasswordHasher: scrypt over OpenSSL, off the event loop")
struct PasswordHasherTests {
    /// Cheap parameters for tests that hash many times; the format and the checks are the same.
    static let fast = PasswordHasher.Parameters(logN: 10, r: 8, p: 1)

    @Test func scryptMatchesRFC7914() {
        // RFC 7914 §12, the second test vector.
        let key = PasswordHasher.scrypt(
            Array("password".utf8), salt: Array("NaCl".utf8), parameters: .init(logN: 10, r: 8, p: 16), length: 64)
        #expect(
            key.map(Digest.hex)
                == "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640"
        )
    }

    @Test func hashEncodesItsParametersAndVerifies() async throws {
        let hasher = PasswordHasher()
        let encoded = try await hasher.hash("correct horse battery staple")
        let parts = encoded.split(separator: "$", omittingEmptySubsequences: false)
        #expect(parts.count == 5 && parts[1] == "scrypt" && parts[2] == "ln=15,r=8,p=3")
        #expect(Base64URL.decode(parts[3])?.count == 16)
        #expect(Base64URL.decode(parts[4])?.count == 32)
        #expect(try await hasher.verify("correct horse battery staple", against: encoded))
        #expect(try await !hasher.verify("correct horse battery stapl", against: encoded))
        #expect(try await !hasher.verify("", against: encoded))
        // A new salt every time.
        #expect(try await hasher.hash("correct horse battery staple") != encoded)
        #expect(!hasher.needsRehash(encoded))
    }

    @Test func verifyReadsTheParametersFromTheString() async throws {
        let old = PasswordHasher.hashBlocking("hunter22", parameters: Self.fast)
        let hasher = PasswordHasher()
        #expect(try await hasher.verify("hunter22", against: old))
        #expect(try await !hasher.verify("hunter23", against: old))
        #expect(hasher.needsRehash(old))
        #expect(PasswordHasher.parameters(of: old) == Self.fast)
    }

    @Test func passwordsAreNFKCNormalised() {
        // "Å" as one precomposed scalar and as A + combining ring: one password.
        let encoded = PasswordHasher.hashBlocking("p\u{00C5}ssword", parameters: Self.fast)
        #expect(PasswordHasher.verifyBlocking("pA\u{030A}ssword", against: encoded))
        #expect(PasswordHasher.verifyBlocking("\u{FF50}\u{00C5}ssword", against: encoded))  // full-width p
        #expect(!PasswordHasher.verifyBlocking("pAssword", against: encoded))
    }

    @Test func emptyPasswordHashes() {
        let encoded = PasswordHasher.hashBlocking("", parameters: Self.fast)
        #expect(PasswordHasher.verifyBlocking("", against: encoded))
        #expect(!PasswordHasher.verifyBlocking("x", against: encoded))
    }

    @Test func malformedOrHostileHashesNeverMatch() async throws {
        let good = PasswordHasher.hashBlocking("hunter22", parameters: Self.fast)
        let parts = good.split(separator: "$", omittingEmptySubsequences: false).map(String.init)
        let bad = [
            "", "hunter22", "$scrypt$", "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
            "$scrypt$ln=10,r=8$\(parts[3])$\(parts[4])",
            "$scrypt$ln=10,r=8,p=1,p=1$\(parts[3])$\(parts[4])",
            "$scrypt$ln=10,r=8,p=x$\(parts[3])$\(parts[4])",
            // A gigabyte per verification: refused, not computed.
            "$scrypt$ln=23,r=8,p=1$\(parts[3])$\(parts[4])",
            "$scrypt$ln=10,r=8,p=1000$\(parts[3])$\(parts[4])",
            "$scrypt$ln=0,r=8,p=1$\(parts[3])$\(parts[4])",
            "$scrypt$ln=10,r=8,p=1$$\(parts[4])",
            "$scrypt$ln=10,r=8,p=1$\(parts[3])$",
            "$scrypt$ln=10,r=8,p=1$\(parts[3])$\(parts[4])$",
            "$scrypt$ln=10,r=8,p=1$!!!$\(parts[4])",
        ]
        let hasher = PasswordHasher(parameters: Self.fast)
        for encoded in bad {
            #expect(try await !hasher.verify("hunter22", against: encoded), "\(encoded)")
            #expect(hasher.needsRehash(encoded), "\(encoded)")
        }
        #expect(try await hasher.verify("hunter22", against: good))
    }

    @Test func needsRehashWhenStoredParametersAreBelowCurrent() {
        let current = PasswordHasher(parameters: .init(logN: 12, r: 8, p: 2))
        func stored(_ logN: Int, _ r: Int, _ p: Int) -> String {
            PasswordHasher.hashBlocking("x", parameters: .init(logN: logN, r: r, p: p))
        }
        #expect(!current.needsRehash(stored(12, 8, 2)))
        #expect(current.needsRehash(stored(11, 8, 2)))  // less memory
        #expect(current.needsRehash(stored(12, 8, 1)))  // less work
        #expect(current.needsRehash(stored(12, 4, 2)))
        #expect(!current.needsRehash(stored(13, 8, 2)))  // stronger: kept
    }

    /// Verifying against no hash (an unknown user) answers false and costs a real verification.
    @Test func verifyAgainstNothingTakesAsLongAsAWrongPassword() async throws {
        let hasher = PasswordHasher()
        let encoded = try await hasher.hash("the real one")
        // The fastest of five alternating samples each: the work itself, least disturbed by
        // whatever else the cores run (the parallel suite hashes too).
        var wrong = Duration.seconds(3600)
        var nothing = Duration.seconds(3600)
        let clock = ContinuousClock()
        for _ in 0..<5 {
            var start = clock.now
            let wrongMatched = try await hasher.verify("guess", against: encoded)
            wrong = min(wrong, clock.now - start)
            start = clock.now
            let nothingMatched = try await hasher.verify("guess", against: nil)
            nothing = min(nothing, clock.now - start)
            #expect(!wrongMatched && !nothingMatched)
        }
        let ratio = nothing / wrong
        #expect(ratio > 0.5 && ratio < 2, "unknown \(nothing), wrong \(wrong)")
    }

    /// One thread and no queue: while one hash runs, the others are refused at once.
    @Test func aFullQueueRefusesInsteadOfGrowing() async {
        let hasher = PasswordHasher(parameters: .owasp, concurrency: 1, queueLimit: 0)
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<6 {
                group.addTask {
                    do {
                        _ = try await hasher.hash("password")
                        return true
                    } catch {
                        return false
                    }
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.contains(true))
        #expect(outcomes.contains(false))
        // Once the queue drains, hashing works again.
        #expect((try? await hasher.hash("password")) != nil)
    }
}
