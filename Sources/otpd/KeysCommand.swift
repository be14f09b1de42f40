import ArgumentParser
import OTPCrypto

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Make token signing keys.", subcommands: [Generate.self])

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a new private key (PKCS#8 PEM) for RS256, ES256 or EdDSA tokens and the config lines that list it.",
            discussion: """
                Without --out, prints the lines to add under the app's tokens, the key inline (private_key). With \
                --out FILE, writes the key to FILE (mode 0600; an existing file is never overwritten) and prints the \
                lines with private_key_file: FILE. Publish a new key before it signs: README "Rotating signing keys".
                """)

        @Option(help: "RS256, ES256 or EdDSA.") var alg: String
        @Option(help: "The key id (default: the algorithm, the date and 4 random hex digits).") var kid: String?
        @Option(help: "Write the PEM to this new file instead of printing it.") var out: String?

        func validate() throws {
            guard let algorithm = JWT.Algorithm(rawValue: alg), algorithm.isAsymmetric else {
                throw ValidationError("--alg must be RS256, ES256 or EdDSA (an HS256 key is any secret of 32 bytes or more)")
            }
            if let kid {
                guard (1...64).contains(kid.utf8.count),
                    kid.utf8.allSatisfy({ $0 < 0x80 && (Character(UnicodeScalar($0)).isLetter || Character(UnicodeScalar($0)).isNumber || "-_.".utf8.contains($0)) })
                else { throw ValidationError("--kid must be 1-64 letters, digits, '-', '_' or '.'") }
            }
        }

        func run() throws {
            let algorithm = JWT.Algorithm(rawValue: alg)!
            guard let key = PrivateKey.generate(for: algorithm) else {
                throw ValidationError("OpenSSL could not generate an \(alg) key")
            }
            let kid = kid ?? Self.defaultKid(algorithm)
            let pem = key.pkcs8PEM
            var lines = [
                "# Under the app's tokens (publish first; switch active_kid after 300 s: README \"Rotating signing keys\"):",
                "algorithm: \(algorithm.rawValue)",
                "active_kid: \(kid)",
                "keys:",
                "  - kid: \(kid)",
            ]
            if let out {
                try Self.writeNew(out, pem)
                lines.append("    private_key_file: \(out)")
            } else {
                lines.append("    private_key: |")
                lines += pem.split(separator: "\n").map { "      \($0)" }
            }
            print(lines.joined(separator: "\n"))
        }

        static func defaultKid(_ algorithm: JWT.Algorithm) -> String {
            let date = UTCTime.rfc3339(Int(time(nil))).prefix(10)
            return "\(algorithm.rawValue.lowercased())-\(date)-\(Digest.hex(SecureRandom.bytes(2)))"
        }

        /// Creates `path` with mode 0600 and writes `text`; refuses a file that exists.
        static func writeNew(_ path: String, _ text: String) throws {
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
            guard fd >= 0 else {
                throw ValidationError("cannot create '\(path)': \(String(cString: strerror(errno))) (an existing file is never overwritten)")
            }
            defer { close(fd) }
            let bytes = Array(text.utf8)
            guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else {
                throw ValidationError("cannot write '\(path)': \(String(cString: strerror(errno)))")
            }
        }
    }
}
