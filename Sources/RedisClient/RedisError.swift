/// A failure of a Redis command, with an extensible code and a message.
///
/// `code` says what kind of failure it was, so callers can decide (a server error is an
/// answer; a connection, timeout or unavailability error means Redis could not be asked).
public struct RedisError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case connectionClosed, unavailable, timeout, server, protocolError, shutdown, invalidURL, cancelled
            case crossSlot, clusterDown, tooManyRedirects
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The connection closed before the reply arrived.
        public static let connectionClosed = Code(.connectionClosed)
        /// No connection could be made (refused, unreachable, or waiting out a reconnect backoff).
        public static let unavailable = Code(.unavailable)
        /// No reply within the command timeout; the connection was closed.
        public static let timeout = Code(.timeout)
        /// The server answered with an error reply (`-ERR …`).
        public static let server = Code(.server)
        /// The bytes from the server were not valid RESP.
        public static let protocolError = Code(.protocolError)
        /// The client is shutting down.
        public static let shutdown = Code(.shutdown)
        /// A `redis://` URL could not be understood.
        public static let invalidURL = Code(.invalidURL)
        /// The caller's task was cancelled, so it stopped waiting for a connection or a reply.
        public static let cancelled = Code(.cancelled)
        /// The keys of one command or script hash to different cluster slots, so no one node can
        /// run it. Found in Swift, before anything is sent.
        public static let crossSlot = Code(.crossSlot)
        /// Some cluster slots have no reachable master (the cluster reports them unassigned, or
        /// their master does not answer and no replica has taken over yet).
        public static let clusterDown = Code(.clusterDown)
        /// The cluster kept redirecting the command (`MOVED`/`ASK`) more often than the cap.
        public static let tooManyRedirects = Code(.tooManyRedirects)

        public var description: String { base.rawValue }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// True when the command got no answer from Redis (not reachable, closed, timed out, shut down,
    /// or the caller stopped waiting), as opposed to an error reply or a bad URL.
    public var isConnectionFailure: Bool {
        code != .server && code != .invalidURL && code != .crossSlot && code != .tooManyRedirects
    }

    /// The first word of a server error reply, such as `NOSCRIPT` or `WRONGTYPE`.
    public var serverErrorPrefix: Substring? {
        guard code == .server else { return nil }
        return message.split(separator: " ", maxSplits: 1).first
    }

    public var description: String { "Redis \(code): \(message)" }

    /// A cluster redirect in a server error reply: `MOVED 3999 127.0.0.1:6381` or `ASK 3999 …`.
    var clusterRedirect: ClusterRedirect? {
        guard code == .server else { return nil }
        let words = message.split(separator: " ")
        guard words.count == 3, let slot = Int(words[1]).flatMap(HashSlot.init(rawValue:)),
            let address = RedisNodeAddress(words[2])
        else { return nil }
        switch words[0] {
        case "MOVED": return ClusterRedirect(kind: .moved, slot: slot, address: address)
        case "ASK": return ClusterRedirect(kind: .ask, slot: slot, address: address)
        default: return nil
        }
    }
}

/// Where a cluster node sent a command instead of running it.
struct ClusterRedirect: Sendable, Hashable {
    let kind: RedisClusterEvent.RedirectKind
    let slot: HashSlot
    let address: RedisNodeAddress
}
