import RedisClient

// The Telegram bot's codes and linked chats, and the Telegram Gateway's delivery reports.

extension OTPStore {
    enum BotCodeOutcome: Sendable, Hashable {
        case stored
        /// The update was handled before (Telegram redelivers until it sees a 200).
        case duplicate
        /// A live code has the same hash: draw another code.
        case taken
        /// The chat had its codes for this hour: nothing stored (the update is marked seen).
        case limited
    }

    func storeBotCode(
        updateID: Int64, codeHash: String, chatID: Int64, lifetimeSeconds: Int, codesPerChatPerHour: Int
    ) async throws(OTPError) -> BotCodeOutcome {
        try await run(Scripts.botCode, (updateID, codeHash, chatID, lifetimeSeconds, codesPerChatPerHour))
    }

    /// Remembers a Telegram Gateway delivery report for 600 s (its signature is good for 300 s
    /// either side of its timestamp); false when it was seen already (a replay).
    func firstSighting(ofGatewayReport hash: String) async throws(OTPError) -> Bool {
        let reply = try await storage {
            try await redis.send(["SET", RedisArgument(keys.gatewayReport(hash: hash)), "1", "NX", "EX", "600"])
        }
        return reply.string == "OK"
    }

    /// The chat a bot code was handed to, consumed (GETDEL: once only), or nil.
    func takeBotCode(hash: String) async throws(OTPError) -> String? {
        let reply = try await storage { try await redis.send(["GETDEL", RedisArgument(keys.botCode(hash: hash))]) }
        return reply.string
    }

    /// Links a chat to a user; false when the user does not exist.
    func linkChat(app: String, userID: String, chatID: String) async throws(OTPError) -> Bool {
        try await run(Scripts.linkChat, (app, userID, chatID))
    }
}

extension Scripts {
    static let botCode = StoreScript<
        (updateID: Int64, codeHash: String, chatID: Int64, lifetimeSeconds: Int, codesPerChatPerHour: Int),
        OTPStore.BotCodeOutcome
    >(
        "botCode", lua: PackageResources.botCode_lua,
        keys: [
            "update_key": { b, k in k.botUpdate(b.updateID) },
            "code_key": { b, k in k.botCode(hash: b.codeHash) },
            "chat_key": { b, k in k.botChat(b.chatID) },
        ],
        arguments: [
            "chat_id": { b, _ in RedisArgument(String(b.chatID)) },
            "lifetime_s": { b, _ in RedisArgument(b.lifetimeSeconds) },
            "codes_per_hour": { b, _ in RedisArgument(b.codesPerChatPerHour) },
        ]
    ) { reply throws(OTPError) in
        switch reply.status {
        case "ok": return .stored
        case "duplicate": return .duplicate
        case "taken": return .taken
        case "limited": return .limited
        default: throw reply.unexpected()
        }
    }

    static let linkChat = StoreScript<(app: String, userID: String, chatID: String), Bool>(
        "linkChat", lua: PackageResources.linkChat_lua, prelude: false,
        keys: [
            "user_key": { l, k in k.user(l.app, l.userID) }
        ],
        arguments: [
            "chat_id": { l, _ in RedisArgument(l.chatID) }
        ]
    ) { reply in reply.value.int == 1 }
}
