import RedisClient

// Hub sockets: a socket's binding to a session, and the open sockets of one client.

extension OTPStore {
    enum SocketBinding: Sendable, Hashable {
        case bound
        /// The socket id is bound to another session.
        case taken
    }

    /// Binds (or renews the binding of) an open hub socket to a session's hash for `ttlSeconds`.
    func bindSocket(app: String, socketID: String, sessionHash: String, ttlSeconds: Int) async throws(OTPError) -> SocketBinding {
        try await run(Scripts.bindSocket, ((app, socketID, sessionHash), ttlSeconds))
    }

    /// Whether the socket is open (bound) and bound to this session.
    func isSocketBound(app: String, socketID: String, sessionHash: String) async throws(OTPError) -> Bool {
        try await run(Scripts.checkSocket, (app, socketID, sessionHash))
    }

    /// Ends a socket's binding (it closed). Best effort: the binding expires anyway.
    func closeSocket(app: String, socketID: String, sessionHash: String) async {
        _ = try? await run(Scripts.closeSocket, (app, socketID, sessionHash))
    }

    enum SocketLease: Sendable, Hashable {
        case acquire, renew, release
    }

    /// Takes, renews or gives back an open socket's place among its client's (`subject`'s) at
    /// most `cap` sockets. nil when done; the seconds until a place frees when all are taken.
    func hubSocketLease(
        app: String, subject: String, member: String, leaseSeconds: Int, cap: Int, _ action: SocketLease
    ) async throws(OTPError) -> Int? {
        try await run(Scripts.hubSocketLease, (app, subject, member, leaseSeconds, cap, action))
    }

    /// One socket of one session.
    typealias HubSocket = (app: String, socketID: String, sessionHash: String)
}

extension Scripts {
    static let bindSocket = StoreScript<(socket: OTPStore.HubSocket, ttlSeconds: Int), OTPStore.SocketBinding>(
        "bindSocket", lua: PackageResources.bindSocket_lua,
        keys: [
            "socket_key": { b, k in k.hubSocket(b.socket.app, socketID: b.socket.socketID) }
        ],
        arguments: [
            "session_hash": { b, _ in RedisArgument(b.socket.sessionHash) },
            "ttl_ms": { b, _ in RedisArgument(b.ttlSeconds * 1000) },
        ]
    ) { reply in reply.value.int == 1 ? .bound : .taken }

    static let checkSocket = StoreScript<OTPStore.HubSocket, Bool>(
        "checkSocket", lua: PackageResources.checkSocket_lua,
        keys: [
            "socket_key": { s, k in k.hubSocket(s.app, socketID: s.socketID) }
        ],
        arguments: [
            "session_hash": { s, _ in RedisArgument(s.sessionHash) }
        ]
    ) { reply in reply.value.int == 1 }

    static let closeSocket = StoreScript<OTPStore.HubSocket, Void>(
        "closeSocket", lua: PackageResources.closeSocket_lua,
        keys: [
            "socket_key": { s, k in k.hubSocket(s.app, socketID: s.socketID) }
        ],
        arguments: [
            "session_hash": { s, _ in RedisArgument(s.sessionHash) }
        ]
    ) { _ in }

    static let hubSocketLease = StoreScript<
        (app: String, subject: String, member: String, leaseSeconds: Int, cap: Int, action: OTPStore.SocketLease), Int?
    >(
        "hubSocketLease", lua: PackageResources.hubSocketLease_lua,
        keys: [
            "sockets_key": { l, k in k.hubSockets(l.app, subject: l.subject) }
        ],
        arguments: [
            "member": { l, _ in RedisArgument(l.member) },
            "lease_ms": { l, _ in RedisArgument(l.leaseSeconds * 1000) },
            "cap": { l, _ in RedisArgument(l.cap) },
            // acquire | renew | release
            "action": { l, _ in RedisArgument("\(l.action)") },
        ]
    ) { reply throws(OTPError) in reply.status == "full" ? try reply.int(1) : nil }
}
