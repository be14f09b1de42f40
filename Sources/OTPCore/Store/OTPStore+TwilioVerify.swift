import Delivery
import RedisClient

// Twilio Verify's verifications: one per `To` of a service, with the `To`'s quotas beside it.

extension OTPStore {
    /// Where one `To` of one service lives: the app, the service SID (a configured one) and the
    /// 16-hex HMAC of the `To`.
    struct VerificationPlace: Sendable, Hashable {
        var app: String
        var service: String
        var toHash: String
    }

    /// A pending verification as stored (never its code).
    struct StoredVerification: Sendable, Hashable {
        var sid: String
        var to: String
        var channel: DeliveryChannel
        var createdMilliseconds: Int
        var updatedMilliseconds: Int
        /// "attempt sid,channel,ms" joined by ';'.
        var attempts: String
        var wrongChecks: Int
    }

    struct NewVerification: Sendable {
        var place: VerificationPlace
        var sid: String
        var codeHash: [UInt8]
        var to: String
        var channel: DeliveryChannel
        var attemptSID: String
        var ttlSeconds: Int
        var cooldownSeconds: Int
        var sendsPerHour: Int
        var maxAttempts: Int
        var maxSends: Int
    }

    enum VerificationSendOutcome: Sendable, Hashable {
        /// A new verification or one more send of the pending one.
        case sent(sid: String, to: String, createdMilliseconds: Int, updatedMilliseconds: Int, attempts: String)
        case locked(retryAfter: Int)
        case cooldown(retryAfter: Int)
        case rateLimited(retryAfter: Int)
        /// The pending verification was sent as often as it may be.
        case maxSends(retryAfter: Int)
    }

    func createVerification(_ verification: NewVerification) async throws(OTPError) -> VerificationSendOutcome {
        try await run(Scripts.verifyCreate, verification)
    }

    struct VerificationCheck: Sendable {
        var place: VerificationPlace
        /// Empty: whichever verification the `To` has.
        var sid: String
        var codeHash: [UInt8]
        var limits: CodeLimits
    }

    /// What a check found: the verification's sid, To, channel and dates (the resource's fields).
    struct CheckedVerification: Sendable, Hashable {
        var sid: String
        var to: String
        var channel: String
        var createdMilliseconds: Int
        var updatedMilliseconds: Int
    }

    enum VerificationCheckOutcome: Sendable, Hashable {
        case approved(CheckedVerification)
        case wrong(CheckedVerification, attemptsRemaining: Int, lockedNow: Bool)
        case refused(CodeRefusal)
    }

    func checkVerification(_ check: VerificationCheck) async throws(OTPError) -> VerificationCheckOutcome {
        try await run(Scripts.verifyCheck, check)
    }

    /// Deletes the verification if it is still the one of `sid`; what it was, or nil.
    func closeVerification(_ place: VerificationPlace, sid: String) async throws(OTPError) -> StoredVerification? {
        guard var closed = try await run(Scripts.verifyClose, (place, sid)) else { return nil }
        closed.sid = sid
        return closed
    }

    /// Undoes a send whose code was not delivered (best effort): see `verifyUnsend.lua`.
    func unsendVerification(_ verification: NewVerification, sid: String, giveBack: Bool) async {
        _ = try? await run(Scripts.verifyUnsend, (verification, sid, giveBack))
    }

    /// The sid of the verification at `place`, if there is one. A read.
    func verificationSID(_ place: VerificationPlace) async throws(OTPError) -> String? {
        let key = keys.twilioVerification(place.app, service: place.service, to: place.toHash)
        return try await storage { try await redis.send(["HGET", RedisArgument(key), "i"]) }.string
    }

    /// The verification at `place` if its sid is `sid`, else nil. A read: nothing is created.
    func verification(_ place: VerificationPlace, sid: String) async throws(OTPError) -> StoredVerification? {
        let key = keys.twilioVerification(place.app, service: place.service, to: place.toHash)
        let reply = try await storage { try await redis.send(["HMGET", RedisArgument(key), "i", "t", "c", "d", "u", "l", "a"]) }
        guard let fields = reply.array, fields.count == 7, fields[0].string == sid, let to = fields[1].string,
            let channel = fields[2].string.flatMap(DeliveryChannel.init(rawValue:))
        else { return nil }
        func number(_ i: Int) -> Int { fields[i].string.flatMap { Int($0) } ?? fields[i].int ?? 0 }
        return StoredVerification(
            sid: sid, to: to, channel: channel, createdMilliseconds: number(3), updatedMilliseconds: number(4),
            attempts: fields[5].string ?? "", wrongChecks: number(6))
    }
}

extension Scripts {
    static let verifyCreate = StoreScript<OTPStore.NewVerification, OTPStore.VerificationSendOutcome>(
        "verifyCreate", lua: PackageResources.verifyCreate_lua,
        keys: [
            "verification_key": { v, k in k.twilioVerification(v.place.app, service: v.place.service, to: v.place.toHash) },
            "to_quota_key": { v, k in k.twilioQuota(v.place.app, service: v.place.service, to: v.place.toHash) },
        ],
        arguments: [
            "sid": { v, _ in RedisArgument(v.sid) },
            "code_hash": { v, _ in RedisArgument(bytes: v.codeHash) },
            "to": { v, _ in RedisArgument(v.to) },
            "channel": { v, _ in RedisArgument(v.channel.rawValue) },
            "attempt_sid": { v, _ in RedisArgument(v.attemptSID) },
            "ttl_ms": { v, _ in RedisArgument(v.ttlSeconds * 1000) },
            "cooldown_ms": { v, _ in RedisArgument(v.cooldownSeconds * 1000) },
            "sends_per_hour": { v, _ in RedisArgument(v.sendsPerHour) },
            "max_attempts": { v, _ in RedisArgument(v.maxAttempts) },
            "max_sends": { v, _ in RedisArgument(v.maxSends) },
        ]
    ) { reply throws(OTPError) in
        switch reply.status {
        case "created", "resent":
            return .sent(
                sid: try reply.string(1), to: try reply.string(5), createdMilliseconds: try reply.int(2),
                updatedMilliseconds: try reply.int(3), attempts: try reply.string(4))
        case "locked": return .locked(retryAfter: try reply.int(1))
        case "cooldown": return .cooldown(retryAfter: try reply.int(1))
        case "rate_limited": return .rateLimited(retryAfter: try reply.int(1))
        case "max_sends": return .maxSends(retryAfter: try reply.int(1))
        default: throw reply.unexpected()
        }
    }

    static let verifyCheck = StoreScript<OTPStore.VerificationCheck, OTPStore.VerificationCheckOutcome>(
        "verifyCheck", lua: PackageResources.verifyCheck_lua,
        keys: [
            "verification_key": { c, k in k.twilioVerification(c.place.app, service: c.place.service, to: c.place.toHash) },
            "to_quota_key": { c, k in k.twilioQuota(c.place.app, service: c.place.service, to: c.place.toHash) },
        ],
        arguments: [
            "sid": { c, _ in RedisArgument(c.sid) },
            "code_hash": { c, _ in RedisArgument(bytes: c.codeHash) },
            "failures_per_hour": { c, _ in RedisArgument(c.limits.failuresPerHour) },
            "max_attempts": { c, _ in RedisArgument(c.limits.maxAttempts) },
            "sends_per_hour": { c, _ in RedisArgument(c.limits.sendsPerHour) },
            "max_in_a_row": { c, _ in RedisArgument(c.limits.maxConsecutiveFailures) },
            "lockout_ms": { c, _ in RedisArgument(c.limits.lockoutSeconds * 1000) },
        ]
    ) { reply throws(OTPError) in
        func checked(from index: Int) throws(OTPError) -> OTPStore.CheckedVerification {
            OTPStore.CheckedVerification(
                sid: try reply.string(index), to: try reply.string(index + 1), channel: try reply.string(index + 2),
                createdMilliseconds: try reply.int(index + 3), updatedMilliseconds: try reply.int(index + 4))
        }
        switch reply.status {
        case "ok": return .approved(try checked(from: 1))
        case "invalid":
            return .wrong(try checked(from: 3), attemptsRemaining: try reply.int(1), lockedNow: try reply.int(2) == 1)
        default: return .refused(try reply.codeRefusal())
        }
    }

    static let verifyUnsend = StoreScript<
        (verification: OTPStore.NewVerification, sid: String, giveBack: Bool), Void
    >(
        "verifyUnsend", lua: PackageResources.verifyUnsend_lua,
        keys: [
            "verification_key": { u, k in
                k.twilioVerification(u.verification.place.app, service: u.verification.place.service, to: u.verification.place.toHash)
            },
            "to_quota_key": { u, k in
                k.twilioQuota(u.verification.place.app, service: u.verification.place.service, to: u.verification.place.toHash)
            },
        ],
        arguments: [
            "sid": { u, _ in RedisArgument(u.sid) },
            "attempt_sid": { u, _ in RedisArgument(u.verification.attemptSID) },
            "give_back": { u, _ in RedisArgument(u.giveBack ? "1" : "0") },
        ]
    ) { _ in }

    static let verifyClose = StoreScript<(place: OTPStore.VerificationPlace, sid: String), OTPStore.StoredVerification?>(
        "verifyClose", lua: PackageResources.verifyClose_lua,
        keys: [
            "verification_key": { c, k in k.twilioVerification(c.place.app, service: c.place.service, to: c.place.toHash) }
        ],
        arguments: [
            "sid": { c, _ in RedisArgument(c.sid) }
        ]
    ) { reply throws(OTPError) in
        guard reply.status == "ok" else {
            if reply.status == "not_found" { return nil }
            throw reply.unexpected()
        }
        // the sid is the caller's (closeVerification sets it)
        return OTPStore.StoredVerification(
            sid: "", to: try reply.string(1), channel: DeliveryChannel(rawValue: try reply.string(2)) ?? .sms,
            createdMilliseconds: try reply.int(3), updatedMilliseconds: try reply.int(4), attempts: try reply.string(5),
            wrongChecks: 0)
    }
}
