import OTPCrypto
import Testing

@Suite("OTPCrypto over OpenSSL")
struct OTPCryptoTests {
    @Test func sha256KnownAnswer() {
        #expect(Digest.hex(Digest.sha256(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func hmacSHA256MatchesRFC4231() {
        // RFC 4231 test case 2
        let mac = Digest.hmacSHA256(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))
        #expect(Digest.hex(mac) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        // An empty key and message are valid too.
        #expect(Digest.hex(Digest.hmacSHA256(key: [], message: [])) == "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad")
    }

    @Test func constantTimeEquals() {
        #expect(Digest.constantTimeEquals([1, 2, 3], [1, 2, 3]))
        #expect(!Digest.constantTimeEquals([1, 2, 3], [1, 2, 4]))
        #expect(!Digest.constantTimeEquals([1, 2, 3], [1, 2]))
        #expect(Digest.constantTimeEquals([UInt8](), []))
    }

    @Test func base64URLRoundTripsAndRejectsJunk() {
        for length in 0..<40 {
            let bytes = SecureRandom.bytes(length)
            let text = Base64URL.encode(bytes)
            #expect(!text.contains("=") && !text.contains("+") && !text.contains("/"))
            #expect(Base64URL.decode(text) == bytes)
        }
        #expect(Base64URL.encode(Array("hello?>".utf8)) == "aGVsbG8_Pg")
        #expect(Base64URL.decode("a") == nil)
        #expect(Base64URL.decode("aGVsbG8/Pg") == nil)
        #expect(Base64URL.decode("aGVsbG9=") == nil)
        #expect(Base64URL.decode("aGVsbG8") == Array("hello".utf8))
        #expect(Base64URL.decode("aGVsbG9f") != nil)
        // Non-zero leftover bits would let two texts decode to the same bytes: refused.
        #expect(Base64URL.decode("aGVsbG9") == nil)
    }

    @Test func rfc3339ParsesWhatItWrites() {
        for seconds in [0, 1_706_693_400, 1_709_164_800, 4_102_444_799] {
            #expect(UTCTime.parseRFC3339(UTCTime.rfc3339(seconds)) == seconds)
        }
        #expect(UTCTime.parseRFC3339("2024-01-31T09:30:00Z") == 1_706_693_400)
        #expect(UTCTime.parseRFC3339("2024-01-31t09:30:00.123456z") == 1_706_693_400)
        #expect(UTCTime.parseRFC3339("2024-01-31T11:30:00+02:00") == 1_706_693_400)
        #expect(UTCTime.parseRFC3339("2024-01-31T04:00:00-05:30") == 1_706_693_400)
        #expect(UTCTime.parseRFC3339("2024-02-29T00:00:00Z") == 1_709_164_800)
        for bad in [
            "", "2024-01-31", "2024-01-31 09:30:00Z", "2024-01-31T09:30:00", "2024-01-31T09:30:00+0200",
            "2024-13-01T00:00:00Z", "2024-04-31T00:00:00Z", "2023-02-29T00:00:00Z", "2024-01-31T24:00:00Z",
            "2024-01-31T09:30:00.Z", "2024-01-31T09:30:00Zjunk", "yesterday", "２０２４-01-31T09:30:00Z",
        ] {
            #expect(UTCTime.parseRFC3339(bad) == nil, "\(bad)")
        }
    }

    @Test func randomBytesDiffer() {
        #expect(SecureRandom.bytes(32) != SecureRandom.bytes(32))
        #expect(SecureRandom.bytes(0).isEmpty)
    }

    @Test func uniformStaysInRange() {
        for bound in [1, 2, 3, 7, 10, 1000] as [UInt32] {
            for _ in 0..<200 { #expect(SecureRandom.uniform(below: bound) < bound) }
        }
    }

    /// 10,000 six-digit codes: each digit position must look uniform (chi-square, 9 degrees of
    /// freedom). 39.0 is the critical value at p ≈ 0.00001, so a correct generator fails about
    /// one run in 17,000 (six positions); the companion test shows the statistic catching bias.
    @Test func codesAreUniformPerDigitPosition() {
        let digits = Array("0123456789")
        var counts = [[Int]](repeating: [Int](repeating: 0, count: 10), count: 6)
        for _ in 0..<10_000 {
            let code = SecureRandom.code(length: 6, alphabet: digits)
            #expect(code.count == 6)
            for (position, character) in code.enumerated() {
                counts[position][character.wholeNumberValue!] += 1
            }
        }
        for position in 0..<6 {
            let expected = 1000.0
            let chiSquare = counts[position].reduce(0.0) { $0 + (Double($1) - expected) * (Double($1) - expected) / expected }
            #expect(chiSquare < 39.0, "position \(position): chi-square \(chiSquare) for \(counts[position])")
        }
    }

    /// The same statistic catches modulo bias: `byte % 10` over-weights 0-5 (26 vs 25 of 256);
    /// over 400,000 draws its chi-square is about 150, far past the 39.0 threshold.
    @Test func chiSquareDetectsModuloBias() {
        var counts = [Int](repeating: 0, count: 10)
        for _ in 0..<100 {
            for byte in SecureRandom.bytes(4000) { counts[Int(byte) % 10] += 1 }
        }
        let expected = 40000.0
        let chiSquare = counts.reduce(0.0) { $0 + (Double($1) - expected) * (Double($1) - expected) / expected }
        #expect(chiSquare > 39.0)
    }
}
