import RedisClient

// Users created by `otpd import users`.

extension OTPStore {
    /// A user of an export, as a registration would have created it.
    struct ImportedUser: Sendable {
        var app: String
        var userID: String
        var identifier: Identifier
        /// A phone number kept beside an email identifier.
        var phone: String?
        var firstName: String
        var lastName: String
        var active: Bool
        var createdAt: Int
        var unverifiedTTLSeconds: Int
    }

    /// Creates the user unless it exists; true when it was created.
    func importUser(_ user: ImportedUser) async throws(OTPError) -> Bool {
        try await run(Scripts.importUser, user)
    }
}

extension Scripts {
    static let importUser = StoreScript<OTPStore.ImportedUser, Bool>(
        "importUser", lua: PackageResources.importUser_lua, prelude: false,
        keys: [
            "user_key": { u, k in k.user(u.app, u.userID) },
            // a pending registration's codes, deleted with it
            "auth_otp_key": { u, k in k.otp(u.app, u.userID, purpose: .auth) },
            "reset_otp_key": { u, k in k.otp(u.app, u.userID, purpose: .reset) },
            "hub_otp_key": { u, k in k.otp(u.app, u.userID, purpose: .hub) },
        ],
        arguments: [
            "user_id": { u, _ in RedisArgument(u.userID) },
            "identifier_field": { u, _ in RedisArgument(u.identifier.field) },
            "identifier": { u, _ in RedisArgument(u.identifier.value) },
            "phone": { u, _ in RedisArgument(u.phone ?? "") },
            "first_name": { u, _ in RedisArgument(u.firstName) },
            "last_name": { u, _ in RedisArgument(u.lastName) },
            "status": { u, _ in RedisArgument(u.active ? "active" : "unverified") },
            "created_at_s": { u, _ in RedisArgument(u.createdAt) },
            "unverified_ttl_ms": { u, _ in RedisArgument(u.unverifiedTTLSeconds * 1000) },
        ]
    ) { reply throws(OTPError) in try reply.flag() }
}
