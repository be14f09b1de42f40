public import Hummingbird
public import NIOCore

/// The per-request context: Hummingbird's core storage plus the socket peer, from which the
/// client IP is derived (see `ClientAddress`).
public struct OTPRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }

    /// Bodies are bounded by `BodyLimitMiddleware` (server.max_body_bytes) before any handler reads them.
    public var maxUploadSize: Int { Int.max }
}
