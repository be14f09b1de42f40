import RedisClient

// Sessions: rotate a refresh token, revoke its family.

extension OTPStore {
    enum RefreshOutcome: Sendable, Hashable {
        /// The child token is stored (or, for a retry within the reuse interval, still unused);
        /// it lives `ttl` seconds.
        case rotated(User, ttl: Int)
        /// Unknown, expired, revoked, or its session is over.
        case invalid
        /// Presented after it was rotated: its family is now revoked.
        case reused
        /// The session rotated too often this hour.
        case rateLimited(retryAfter: Int)
    }

    /// A refresh token presented for rotation, with the session's rules.
    struct Rotation: Sendable {
        var app: String
        var userID: String
        var presentedHash: String
        /// The child the presented token rotates to (derived from it: a retry names it again).
        var childHash: String
        var ttlSeconds: Int
        var sessionMaxSeconds: Int
        var reuseIntervalSeconds: Int
        var refreshesPerHour: Int
    }

    func rotateRefreshToken(_ rotation: Rotation) async throws(OTPError) -> RefreshOutcome {
        try await run(Scripts.refresh, rotation)
    }

    /// Revokes the family of a refresh token; an unknown token is no error.
    func revokeRefreshTokenFamily(app: String, userID: String, tokenHash: String) async throws(OTPError) {
        try await run(Scripts.revoke, (app, userID, tokenHash))
    }
}

extension Scripts {
    static let refresh = StoreScript<OTPStore.Rotation, OTPStore.RefreshOutcome>(
        "refresh", lua: PackageResources.refresh_lua,
        keys: [
            "presented_key": { r, k in k.refreshToken(r.app, r.userID, hash: r.presentedHash) },
            "child_key": { r, k in k.refreshToken(r.app, r.userID, hash: r.childHash) },
            "user_key": { r, k in k.user(r.app, r.userID) },
        ],
        arguments: [
            // the family's key is this prefix and the token's `f`: same hash tag
            "family_prefix": { r, k in RedisArgument(k.familyPrefix(r.app, r.userID)) },
            "refresh_ttl_s": { r, _ in RedisArgument(r.ttlSeconds) },
            "session_max_s": { r, _ in RedisArgument(r.sessionMaxSeconds) },
            "reuse_interval_ms": { r, _ in RedisArgument(r.reuseIntervalSeconds * 1000) },
            "refreshes_per_hour": { r, _ in RedisArgument(r.refreshesPerHour) },
        ]
    ) { reply throws(OTPError) in
        switch reply.status {
        case "ok": return .rotated(try reply.user(), ttl: try reply.int(1))
        case "invalid": return .invalid
        case "reused": return .reused
        case "rate": return .rateLimited(retryAfter: try reply.int(1))
        default: throw reply.unexpected()
        }
    }

    static let revoke = StoreScript<(app: String, userID: String, tokenHash: String), Void>(
        "revoke", lua: PackageResources.revoke_lua, prelude: false,
        keys: [
            "token_key": { r, k in k.refreshToken(r.app, r.userID, hash: r.tokenHash) }
        ],
        arguments: [
            "family_prefix": { r, k in RedisArgument(k.familyPrefix(r.app, r.userID)) }
        ]
    ) { _ in }
}
