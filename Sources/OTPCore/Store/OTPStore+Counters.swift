import RedisClient

// Hourly counters with a hash tag of their own (a client's sends and wrong codes, an app's
// SMS and calls), and lifting an identifier's lockout.

extension OTPStore {
    /// A counter with a hash tag of its own, so it is a script of its own beside the action it
    /// guards: taken first, given back when the action did not happen.
    enum HourlyCounter: Sendable, Hashable {
        /// Codes requested from one client (an IPv4 address or an IPv6 /64).
        case clientSends(app: String, client: String)
        /// Wrong codes from one client, across all users.
        case clientFailures(app: String, client: String)
        /// SMS and calls of one app (the SMS-pumping ceiling).
        case appCalls(app: String)
    }

    enum CounterOutcome: Sendable, Hashable {
        case taken
        case overLimit(retryAfter: Int)
    }

    func take(_ counter: HourlyCounter, limit: Int) async throws(OTPError) -> CounterOutcome {
        try await run(Scripts.hourlyCounter, (counter, limit))
    }

    /// Takes several counters at once, each on its own (one round trip on a single server; one
    /// after the other in a cluster): what each answered, in order. The caller gives back
    /// those taken when another refused.
    func take(_ counters: [(counter: HourlyCounter, limit: Int)]) async -> [Result<CounterOutcome, OTPError>] {
        let now = clockArgument()
        let script = Scripts.hourlyCounter
        let replies = await redis.evalScripts(counters.map { script.call($0, keys: keys, clock: now) })
        return replies.map { result in
            switch result {
            case .success(let value):
                do throws(OTPError) {
                    return .success(try script.decode(ScriptReply(script: script.contract.name, value: value)))
                } catch {
                    return .failure(error)
                }
            case .failure(let error):
                return .failure(.storageFailed(StorageFailure(error)))
            }
        }
    }

    /// Gives back what `take` took, and waits for Redis to have done it. Best effort.
    func giveBack(_ counter: HourlyCounter) async {
        _ = try? await run(Scripts.giveBack, counter)
    }

    /// Gives back what `take` took without waiting for the reply: written at once on the
    /// connection of the caller's event loop, after the commands the caller sent on it before.
    /// Until Redis runs it the counter holds one more unit than it should, as it did while the
    /// action ran: a concurrent take may be refused for it, never granted beyond the limit.
    /// Best effort. False when it could not be sent that way (cluster mode, no open
    /// connection): the caller then awaits `giveBack`.
    @discardableResult
    func giveBackWithoutWaiting(_ counter: HourlyCounter) -> Bool {
        redis.evalScriptWithoutWaiting(Scripts.giveBack.call(counter, keys: keys, clock: clockArgument()))
    }

    /// Lifts an identifier's lockout; true when it was locked.
    func unlock(app: String, userID: String) async throws(OTPError) -> Bool {
        try await run(Scripts.unlock, (app, userID))
    }
}

extension KeySpace {
    func counter(_ counter: OTPStore.HourlyCounter) -> String {
        switch counter {
        case .clientSends(let app, let client): return ipSends(app, subject: client)
        case .clientFailures(let app, let client): return ipFailures(app, subject: client)
        case .appCalls(let app): return appCalls(app)
        }
    }
}

extension Scripts {
    static let hourlyCounter = StoreScript<(counter: OTPStore.HourlyCounter, limit: Int), OTPStore.CounterOutcome>(
        "hourlyCounter", lua: PackageResources.hourlyCounter_lua,
        keys: [
            "counter_key": { c, k in k.counter(c.counter) }
        ],
        arguments: [
            "limit": { c, _ in RedisArgument(c.limit) }
        ]
    ) { reply throws(OTPError) in
        switch reply.status {
        case "ok": return .taken
        case "rate": return .overLimit(retryAfter: try reply.int(1))
        default: throw reply.unexpected()
        }
    }

    static let giveBack = StoreScript<OTPStore.HourlyCounter, Void>(
        "giveBack", lua: PackageResources.giveBack_lua, prelude: false,
        keys: [
            "counter_key": { c, k in k.counter(c) }
        ],
        arguments: [:]
    ) { _ in }

    static let unlock = StoreScript<(app: String, userID: String), Bool>(
        "unlock", lua: PackageResources.unlock_lua,
        keys: [
            "user_key": { u, k in k.user(u.app, u.userID) },
            "own_quota_key": { u, k in k.quota(u.app, u.userID) },
            "failures_key": { u, k in k.passwordFailures(u.app, u.userID) },
        ],
        arguments: [:]
    ) { reply in reply.value.int == 1 }
}
