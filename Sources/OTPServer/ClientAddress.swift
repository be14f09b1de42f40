public import Hummingbird
import HTTPTypes
import NIOCore
public import OTPCore

/// The client's IP address: the socket peer, or — when the peer is a trusted proxy — the
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
public struct ClientAddress: Sendable {
    let trustedProxies: [NetworkRange]
    static let forwardedFor = HTTPField.Name("X-Forwarded-For")!

    public init(trustedProxies: [NetworkRange]) {
        self.trustedProxies = trustedProxies
    }

    public func resolve(_ request: Request, context: OTPRequestContext) -> String {
        resolve(headers: request.headers, peer: context.remoteAddress)
    }

    /// The same, from a request head and the connection's peer (a WebSocket upgrade's).
    func resolve(headers: HTTPFields, peer address: SocketAddress?) -> String {
        let peer = address?.ipAddress ?? "unknown"
        guard isTrusted(peer) else { return peer }
        let entries = headers[values: Self.forwardedFor]
            .flatMap { $0.split(separator: ",") }
            .map { $0.trimmingASCIIWhitespace() }
        // Walk from the right: each trusted hop vouches for the one before it.
        for entry in entries.reversed() {
            guard NetworkRange.parse(entry) != nil else { return peer }
            if !isTrusted(entry) { return entry }
        }
        return entries.first(where: { NetworkRange.parse($0) != nil }) ?? peer
    }

    /// Whether the request came straight from a trusted proxy (whose `X-Forwarded-*` count).
    func isFromTrustedProxy(_ context: OTPRequestContext) -> Bool {
        context.remoteAddress?.ipAddress.map(isTrusted) ?? false
    }

    private func isTrusted(_ ip: String) -> Bool {
        trustedProxies.contains { $0.contains(ip) }
    }
}
