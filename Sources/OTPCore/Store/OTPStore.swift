import Delivery
import RedisClient

/// The data model under the engine: each Lua script behind one function with named, typed
/// arguments and an enum outcome. Each script's contract (its keys and arguments by name, its
/// reply) is declared once, a `StoreScript` beside the function that runs it, in the file of
/// its area (`OTPStore+Codes.swift`, `+Passwords`, `+Sessions`, `+Counters`, `+Hub`,
/// `+Channel`, `+Telegram`, `+Users`); the Lua is in `Lua/`. Nothing outside the store builds
/// a KEYS or ARGV list or reads a reply string, and `RedisError` stops here: the engine sees
/// `OTPError.storageFailed`.
struct OTPStore: Sendable {
    let redis: RedisClient
    let keys: KeySpace
    /// Where scripts take the time from: nil in production (Redis's `TIME`, one clock for every
    /// replica). Only tests set it (`@testable`), to move through hours without waiting.
    let clock: (@Sendable () -> Int64)?

    init(redis: RedisClient, keyPrefix: String, clock: (@Sendable () -> Int64)? = nil) {
        self.redis = redis
        self.keys = KeySpace(prefix: keyPrefix)
        self.clock = clock
    }

    // MARK: users

    /// The user record, or nil when there is none.
    func user(app: String, userID: String) async throws(OTPError) -> User? {
        let command = ["HMGET", RedisArgument(keys.user(app, userID))] + ScriptContract.userFields.map { RedisArgument($0) }
        let reply = try await storage { try await redis.send(command) }
        guard let fields = reply.array, fields.first?.isNull == false else { return nil }
        return try User(fields[...])
    }

    // MARK: operations

    /// Whether Redis answers a PING within its timeout.
    func ping() async throws(OTPError) {
        _ = try await storage { try await redis.send("PING") }
    }

    /// Loads every script ahead of the first request (EVALSHA falls back to loading anyway).
    func loadScripts() async throws(OTPError) {
        try await storage { try await redis.load(Scripts.all.map(\.script)) }
    }

    // MARK: running commands

    /// Runs a script for `input` and decodes its reply.
    func run<Input, Output>(_ script: StoreScript<Input, Output>, _ input: Input) async throws(OTPError) -> Output {
        let call = script.call(input, keys: keys, clock: clockArgument())
        let value = try await storage {
            try await redis.evalScript(call.script, keys: call.keys, arguments: call.arguments)
        }
        return try script.decode(ScriptReply(script: script.contract.name, value: value))
    }

    /// `ARGV[1]` of every script: empty (Redis's own clock) unless a test set `clock`.
    func clockArgument() -> RedisArgument {
        clock.map { RedisArgument(Int($0())) } ?? ""
    }

    /// The one place a `RedisError` becomes the engine's `storageFailed`.
    func storage<T: Sendable>(_ body: () async throws -> T) async throws(OTPError) -> T {
        do {
            return try await body()
        } catch let error as RedisError {
            throw OTPError.storageFailed(StorageFailure(error))
        } catch {
            throw OTPError.storageFailed(StorageFailure(.failed, "\(error)"))
        }
    }
}

/// Every script of the store, by name: for loading them, for `otpd lua`, and for the test
/// that walks every contract.
public enum Scripts {
    public static let all: [ScriptContract] = [
        send.contract, cancelSend.contract, activate.contract, check.contract, refresh.contract, revoke.contract,
        hourlyCounter.contract, giveBack.contract, unlock.contract, channelCreate.contract, channelCancel.contract,
        channelCheck.contract, botCode.contract, linkChat.contract, resetPassword.contract, passwordBegin.contract,
        passwordFinish.contract, rehashPassword.contract, importUser.contract, bindSocket.contract,
        checkSocket.contract, closeSocket.contract, hubSocketLease.contract, verifyCreate.contract,
        verifyCheck.contract, verifyClose.contract, verifyUnsend.contract,
    ]

    public static let named: [String: ScriptContract] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })
}

extension StorageFailure {
    init(_ error: RedisError) {
        let kind: Kind
        switch error.code {
        case .timeout: kind = .timeout
        case .shutdown: kind = .shutdown
        case .server, .protocolError, .invalidURL, .crossSlot, .tooManyRedirects: kind = .failed
        default: kind = .unavailable
        }
        self.init(kind, error.message)
    }
}
