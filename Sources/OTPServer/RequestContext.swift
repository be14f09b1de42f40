public import Hummingbird
public import NIOCore
public import Foundation

/// The per-request context: Hummingbird's core storage plus the socket peer, from which the
/// client IP is derived (see `ClientAddress`).
public struct OTPRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    /// The connection, so a request that is read too slowly can be cut off.
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
        self.channel = source.channel
    }

    /// Stable key order, and URLs without escaped slashes.
    public var responseEncoder: JSONEncoder { Self.encoder }
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// Bodies are bounded by `BodyLimit` (server.max_body_bytes) before any handler reads them.
    public var maxUploadSize: Int { Int.max }
}
