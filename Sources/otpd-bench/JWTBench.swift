import ArgumentParser
import OTPCrypto

/// `otpd-bench jwt [--alg ES256] [--count 2000]`: the CPU cost of one access token, signed and
/// verified as otpd does it (`JWT.sign` / `JWT.verify` with an app's `KeySet`), on one core.
struct JWTBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jwt", abstract: "Microseconds per token signed and verified, per algorithm (one core).")

    @Option(help: "HS256, RS256, ES256 or EdDSA (default: all four).") var alg: String?
    @Option(help: "Tokens signed, then verified, per algorithm.") var count = 2000

    func validate() throws {
        if let alg, JWT.Algorithm(rawValue: alg) == nil { throw ValidationError("--alg must be HS256, RS256, ES256 or EdDSA") }
        guard (1...1_000_000).contains(count) else { throw ValidationError("--count must be 1-1000000") }
    }

    func run() throws {
        let algorithms = alg.flatMap(JWT.Algorithm.init(rawValue:)).map { [$0] } ?? JWT.Algorithm.allCases
        print("algorithm  sign µs  verify µs  token bytes  (\(count) tokens)")
        for algorithm in algorithms {
            let key: JWT.Key = PrivateKey.generate(for: algorithm).map(JWT.Key.privateKey) ?? .secret(SecureRandom.bytes(32))
            let keys = JWT.KeySet(algorithm: algorithm, keys: [("bench", key)], activeKid: "bench")
            let now = 1_800_000_000
            let claims = (0..<count).map { i in
                JWT.Claims(
                    iss: "otpd", aud: "bench", sub: "0123456789abcdef01234567", iat: now, exp: now + 1800,
                    jti: "jti-\(i)-\(Base64URL.encode(SecureRandom.bytes(8)))", amr: ["otp"])
            }
            let clock = ContinuousClock()
            var tokens: [String] = []
            tokens.reserveCapacity(count)
            let signing = clock.measure {
                for claim in claims { tokens.append(JWT.sign(claim, with: keys)) }
            }
            var verified = 0
            let verifying = clock.measure {
                for token in tokens {
                    if (try? JWT.verify(token, keys: keys, audience: "bench", issuer: "otpd", now: now)) != nil { verified += 1 }
                }
            }
            guard verified == count else { throw ValidationError("\(algorithm.rawValue): only \(verified) of \(count) tokens verified") }
            func micros(_ duration: Duration) -> String {
                let total = Double(duration.components.seconds) * 1e6 + Double(duration.components.attoseconds) / 1e12
                return String(Int((total / Double(count) * 10).rounded())).paddedTenths
            }
            print(
                algorithm.rawValue.padding(9), micros(signing).padding(8, left: true), micros(verifying).padding(10, left: true),
                String(tokens[0].utf8.count).padding(12, left: true))
        }
    }
}

extension String {
    /// "123" (tenths) → "12.3".
    fileprivate var paddedTenths: String {
        let digits = count < 2 ? String(repeating: "0", count: 2 - count) + self : self
        return "\(digits.dropLast()).\(digits.suffix(1))"
    }

    fileprivate func padding(_ width: Int, left: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - count))
        return left ? fill + self : self + fill
    }
}
