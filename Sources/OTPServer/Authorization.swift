import Foundation
import Hummingbird
import OTPCrypto

extension Request {
    /// The token of an `Authorization: Bearer <token>` header (the scheme in any case, spaces
    /// dropped), or nil when the request carries no Bearer credentials.
    var bearerToken: String? {
        guard let authorization = headers[.authorization], authorization.lowercased().hasPrefix("bearer ") else { return nil }
        return String(authorization.dropFirst(7).filter { $0 != " " })
    }
}

/// HTTP Basic credentials, compared in constant time: each accepted `user:password` is held
/// as its SHA-256, and the SHA-256 of what the client sent is compared with every one, so
/// neither the length, nor the first differing byte, nor which pair matched shows in the
/// timing. The channel API accepts one pair, Twilio Verify its account's and its API keys'.
struct BasicCredentials: Sendable {
    private let accepted: [[UInt8]]

    init(_ pairs: [(user: String, password: String)]) {
        accepted = pairs.map { Digest.sha256(Array("\($0.user):\($0.password)".utf8)) }
    }

    /// Whether the request carries one of the accepted pairs.
    func accept(_ request: Request) -> Bool {
        guard let header = request.headers[.authorization] else { return false }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "basic",
            let decoded = Data(base64Encoded: String(parts[1]).trimmingCharacters(in: .whitespaces))
        else { return false }
        let presented = Digest.sha256(Array(decoded))
        var matched = false
        for expected in accepted { matched = Digest.constantTimeEquals(presented, expected) || matched }
        return matched
    }

    /// Whether the request carries Basic credentials at all (right or wrong).
    static func isBasic(_ request: Request) -> Bool {
        request.headers[.authorization]?.lowercased().hasPrefix("basic ") ?? false
    }
}
