import Delivery
import RedisClient

// The channel API's codes: the caller's code for one destination of one channel.

extension OTPStore {
    /// A caller's code for one destination of one channel (the channel API).
    struct ChannelCode: Sendable {
        var channel: DeliveryChannel
        /// A hash of the destination (phone, email or chat id), never the destination itself.
        var destination: String
        /// Tells this code from a later one for the same destination (for `cancelChannelCode`).
        var id: String
        var codeHash: [UInt8]
        var lifetimeSeconds: Int
    }

    func createChannelCode(_ code: ChannelCode) async throws(OTPError) {
        try await run(Scripts.channelCreate, code)
    }

    /// Deletes a code whose message was not delivered. Best effort.
    func cancelChannelCode(_ code: ChannelCode) async {
        _ = try? await run(Scripts.channelCancel, code)
    }

    enum ChannelCheckOutcome: Sendable, Hashable {
        case valid
        case invalid(attemptsRemaining: Int)
        case notFound
    }

    func checkChannelCode(
        channel: DeliveryChannel, destination: String, codeHash: [UInt8], maxAttempts: Int
    ) async throws(OTPError) -> ChannelCheckOutcome {
        try await run(Scripts.channelCheck, (channel, destination, codeHash, maxAttempts))
    }
}

extension Scripts {
    static let channelCreate = StoreScript<OTPStore.ChannelCode, Void>(
        "channelCreate", lua: PackageResources.channelCreate_lua, prelude: false,
        keys: [
            "code_key": { c, k in k.channelCode(c.channel, destination: c.destination) }
        ],
        arguments: [
            "code_id": { c, _ in RedisArgument(c.id) },
            "code_hash": { c, _ in RedisArgument(bytes: c.codeHash) },
            "lifetime_ms": { c, _ in RedisArgument(c.lifetimeSeconds * 1000) },
        ]
    ) { _ in }

    static let channelCancel = StoreScript<OTPStore.ChannelCode, Void>(
        "channelCancel", lua: PackageResources.channelCancel_lua, prelude: false,
        keys: [
            "code_key": { c, k in k.channelCode(c.channel, destination: c.destination) }
        ],
        arguments: [
            "code_id": { c, _ in RedisArgument(c.id) }
        ]
    ) { _ in }

    static let channelCheck = StoreScript<
        (channel: DeliveryChannel, destination: String, codeHash: [UInt8], maxAttempts: Int), OTPStore.ChannelCheckOutcome
    >(
        "channelCheck", lua: PackageResources.channelCheck_lua,
        keys: [
            "code_key": { c, k in k.channelCode(c.channel, destination: c.destination) }
        ],
        arguments: [
            "code_hash": { c, _ in RedisArgument(bytes: c.codeHash) },
            "max_attempts": { c, _ in RedisArgument(c.maxAttempts) },
        ]
    ) { reply throws(OTPError) in
        switch reply.status {
        case "ok": return .valid
        case "invalid": return .invalid(attemptsRemaining: try reply.int(1))
        case "not_found": return .notFound
        default: throw reply.unexpected()
        }
    }
}
