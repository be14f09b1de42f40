import Foundation
import NIOCore
import OTPTestSupport
import RedisClient
import Testing

@Suite("Redis client against a real redis-server")
struct RedisClientTests {
    func client(url: String = TestRedis.url, timeoutMilliseconds: Int = 1000, poolSize: Int = 2) throws -> RedisClient {
        RedisClient(configuration: try RedisConfiguration(url: url, timeoutMilliseconds: timeoutMilliseconds, poolSize: poolSize))
    }

    @Test func roundTripsEveryReplyType() async throws {
        let redis = try client()
        defer { redis.shutdown() }
        let key = TestRedis.uniquePrefix("types")
        // Simple string
        #expect(try await redis.send("PING") == .simpleString("PONG"))
        // Bulk string, binary-safe: every byte value, CR LF and NUL included.
        let binary = RedisArgument(bytes: Array(0...255) + [13, 10, 0])
        #expect(try await redis.send("SET", RedisArgument(key), binary) == .simpleString("OK"))
        #expect(try await redis.send("GET", RedisArgument(key)) == .bulkString(binary.bytes))
        // Empty bulk string
        _ = try await redis.send("SET", RedisArgument(key + ":empty"), "")
        #expect(try await redis.send("GET", RedisArgument(key + ":empty")) == .bulkString([]))
        // Null bulk string
        #expect(try await redis.send("GET", RedisArgument(key + ":missing")) == .null)
        // Integer, including negative and 64-bit values
        #expect(try await redis.send("INCRBY", RedisArgument(key + ":n"), "-5") == .integer(-5))
        #expect(try await redis.send("INCRBY", RedisArgument(key + ":n"), "9223372036854775000") == .integer(9_223_372_036_854_774_995))
        // Arrays: empty, nested, with a nil inside
        #expect(try await redis.send("LRANGE", RedisArgument(key + ":nolist"), "0", "-1") == .array([]))
        let nested = try await redis.send("EVAL", "return {1, 'two', {3, false}, redis.status_reply('OK')}", "0")
        #expect(nested == .array([.integer(1), .bulkString(Array("two".utf8)), .array([.integer(3), .null]), .simpleString("OK")]))
        // Error reply: thrown as a server error with its message, and the connection goes on.
        await #expect(throws: RedisError.self) { try await redis.send("NOSUCHCOMMAND") }
        do {
            _ = try await redis.send("INCR", RedisArgument(key))  // holds a non-integer
            Issue.record("INCR on a binary string should fail")
        } catch {
            #expect(error.code == .server)
            #expect(error.message.hasPrefix("ERR"))
        }
        #expect(try await redis.send("PING") == .simpleString("PONG"))
        _ = try await redis.send("DEL", RedisArgument(key), RedisArgument(key + ":empty"), RedisArgument(key + ":n"))
    }

    @Test func tenThousandConcurrentCommandsOnOneConnection() async throws {
        let redis = try client(timeoutMilliseconds: 10_000, poolSize: 1)
        defer { redis.shutdown() }
        let prefix = TestRedis.uniquePrefix("pipeline")
        // 100 tasks × 100 commands, all pipelined over one connection: each reply must be its own.
        let mismatches = try await withThrowingTaskGroup(of: Int.self) { group in
            for task in 0..<100 {
                group.addTask {
                    var wrong = 0
                    for i in 0..<100 {
                        let payload = "\(prefix)-\(task)-\(i)"
                        if i % 2 == 0 {
                            if try await redis.send("ECHO", RedisArgument(payload)) != .bulkString(Array(payload.utf8)) { wrong += 1 }
                        } else {
                            if try await redis.send("INCR", RedisArgument("\(prefix):\(task)")) != .integer(Int64(i / 2 + 1)) { wrong += 1 }
                        }
                    }
                    return wrong
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(mismatches == 0)
        let keys = (0..<100).map { RedisArgument("\(prefix):\($0)") }
        #expect(try await redis.send(["DEL"] + keys) == .integer(100))
    }

    @Test func recoversAfterTheServerIsKilledAndRestarted() async throws {
        let server = try RedisServerProcess()
        let redis = try client(url: server.url, timeoutMilliseconds: 300, poolSize: 2)
        defer { redis.shutdown() }
        #expect(try await redis.send("SET", "k", "before") == .simpleString("OK"))

        server.kill()
        // Callers get errors — fast, not hangs — while the server is gone.
        let start = ContinuousClock.now
        for _ in 0..<5 {
            await #expect(throws: RedisError.self) { try await redis.send("PING") }
        }
        #expect(ContinuousClock.now - start < .seconds(2))

        try server.start()
        // The same client recovers by itself once the backoff (≤ 1 s) has passed.
        var recovered = false
        for _ in 0..<40 {
            if (try? await redis.send("PING")) == .simpleString("PONG") {
                recovered = true
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(recovered)
        // Both pooled connections work again.
        for _ in 0..<4 { #expect(try await redis.send("PING") == .simpleString("PONG")) }
    }

    @Test func commandTimeoutFailsFastAndTheClientRecovers() async throws {
        // 400 ms: short against BLPOP's 2 s, long enough that the reconnect and PING after it
        // fit while the rest of the suite loads both cores.
        let redis = try client(timeoutMilliseconds: 400, poolSize: 1)
        defer { redis.shutdown() }
        let key = TestRedis.uniquePrefix("blocked")
        // BLPOP blocks only this connection, for 2 s: the 400 ms timeout must fire first.
        let start = ContinuousClock.now
        do {
            _ = try await redis.send("BLPOP", RedisArgument(key), "2")
            Issue.record("BLPOP should have timed out")
        } catch {
            #expect(error.code == .timeout)
        }
        let elapsed = ContinuousClock.now - start
        #expect(elapsed >= .milliseconds(390) && elapsed < .milliseconds(1500))
        // The timed-out connection was closed; the next command gets a fresh one.
        #expect(try await redis.send("PING") == .simpleString("PONG"))
    }

    @Test func cancelledCommandStopsWaitingAndLaterRepliesStayInOrder() async throws {
        // One connection, so the commands after the cancelled one queue behind it on the wire.
        let redis = try client(timeoutMilliseconds: 5000, poolSize: 1)
        defer { redis.shutdown() }
        let key = TestRedis.uniquePrefix("cancel")
        #expect(try await redis.send("PING") == .simpleString("PONG"))

        // BLPOP holds the connection for 1 s, then answers nil.
        let blocked = Task { try await redis.send("BLPOP", RedisArgument(key + ":list"), "1") }
        try await Task.sleep(for: .milliseconds(100))
        let cancelledAt = ContinuousClock.now
        blocked.cancel()
        do {
            _ = try await blocked.value
            Issue.record("a cancelled command must stop waiting")
        } catch let error as RedisError {
            #expect(error.code == .cancelled)
        }
        #expect(ContinuousClock.now - cancelledAt < .milliseconds(500))

        // The BLPOP reply still comes first, and is dropped; each later command gets its own.
        let value = TestRedis.uniquePrefix("value")
        #expect(try await redis.send("PING") == .simpleString("PONG"))
        #expect(try await redis.send("SET", RedisArgument(key), RedisArgument(value)) == .simpleString("OK"))
        #expect(try await redis.send("GET", RedisArgument(key)) == .bulkString(Array(value.utf8)))
        _ = try await redis.send("DEL", RedisArgument(key))
    }

    @Test func commandOfACancelledTaskIsNotSent() async throws {
        let redis = try client()
        defer { redis.shutdown() }
        let key = TestRedis.uniquePrefix("unsent")
        #expect(try await redis.send("PING") == .simpleString("PONG"))
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await redis.send("SET", RedisArgument(key), "sent")
        }
        do {
            _ = try await task.value
            Issue.record("a cancelled task must not send")
        } catch let error as RedisError {
            #expect(error.code == .cancelled)
        }
        #expect(try await redis.send("GET", RedisArgument(key)) == .null)
    }

    @Test func evalScriptLoadsTheScriptOnNoScript() async throws {
        let server = try RedisServerProcess()
        let redis = try client(url: server.url)
        defer { redis.shutdown() }
        let script = RedisScript("return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}")
        #expect(try await redis.send("SCRIPT", "EXISTS", RedisArgument(script.sha1)) == .array([.integer(0)]))
        let first = try await redis.evalScript(script, keys: ["counter"], arguments: ["x"])
        #expect(first == .array([.bulkString(Array("counter".utf8)), .bulkString([UInt8(ascii: "x")]), .integer(1)]))
        #expect(try await redis.send("SCRIPT", "EXISTS", RedisArgument(script.sha1)) == .array([.integer(1)]))
        // After a flush (as after a Redis restart) the script is loaded again transparently.
        _ = try await redis.send("SCRIPT", "FLUSH")
        let second = try await redis.evalScript(script, keys: ["counter"], arguments: ["y"])
        #expect(second.array?.last == .integer(2))
        // The locally computed SHA-1 is the one Redis computes.
        #expect(try await redis.send("SCRIPT", "LOAD", RedisArgument(script.source)).string == script.sha1)
    }

    @Test func authenticatesAndSelectsTheDatabaseFromTheURL() async throws {
        let server = try RedisServerProcess(arguments: ["--requirepass", "s3cret:@/"])
        let authed = try client(url: "redis://:s3cret%3A%40%2F@127.0.0.1:\(server.port)/3")
        defer { authed.shutdown() }
        _ = try await authed.send("SET", "where", "db3")
        let other = try client(url: "redis://default:s3cret%3A%40%2F@127.0.0.1:\(server.port)/0", poolSize: 1)
        defer { other.shutdown() }
        #expect(try await other.send("GET", "where") == .null)
        #expect(try await other.send("SELECT", "3") == .simpleString("OK"))
        #expect(try await other.send("GET", "where") == .bulkString(Array("db3".utf8)))

        let wrong = try client(url: "redis://:nope@127.0.0.1:\(server.port)/0")
        defer { wrong.shutdown() }
        do {
            _ = try await wrong.send("PING")
            Issue.record("a wrong password must fail")
        } catch {
            #expect(error.code == .server || error.code == .unavailable)
        }
    }

    @Test func unreachableServerFailsFast() async throws {
        let redis = try client(url: "redis://127.0.0.1:\(freePort())/0", timeoutMilliseconds: 500)
        defer { redis.shutdown() }
        let start = ContinuousClock.now
        for _ in 0..<10 {
            do {
                _ = try await redis.send("PING")
                Issue.record("nothing listens there")
            } catch {
                #expect(error.isConnectionFailure)
            }
        }
        // Ten commands that each waited out the 500 ms timeout would take 5 s.
        #expect(ContinuousClock.now - start < .seconds(2))
    }

    @Test func shutdownFailsLaterCommands() async throws {
        let redis = try client()
        #expect(try await redis.send("PING") == .simpleString("PONG"))
        redis.shutdown()
        do {
            _ = try await redis.send("PING")
            Issue.record("a shut-down client must refuse commands")
        } catch {
            #expect(error.code == .shutdown)
        }
    }
}

@Suite("redis:// URLs")
struct RedisURLTests {
    @Test func parsesEveryPart() throws {
        let full = try RedisConfiguration(url: "redis://user:p%40ss@redis.internal:6380/2")
        #expect(full.host == "redis.internal")
        #expect(full.port == 6380)
        #expect(full.username == "user")
        #expect(full.password == "p@ss")
        #expect(full.database == 2)

        let minimal = try RedisConfiguration(url: "redis://localhost")
        #expect(minimal.host == "localhost" && minimal.port == 6379 && minimal.database == 0)
        #expect(minimal.username == nil && minimal.password == nil)

        let v6 = try RedisConfiguration(url: "redis://[::1]:7000/0")
        #expect(v6.host == "::1" && v6.port == 7000)

        let passwordOnly = try RedisConfiguration(url: "redis://:secret@127.0.0.1:6379")
        #expect(passwordOnly.username == nil && passwordOnly.password == "secret")
    }

    @Test(arguments: ["http://localhost", "redis://", "redis://host:notaport", "redis://host:70000", "redis://host/db", "localhost:6379"])
    func rejectsBadURLs(_ url: String) {
        // (the password never appears in the message: see messagesNeverCarryThePassword)
        #expect(throws: RedisError.self) { try RedisConfiguration(url: url) }
    }
}

@Suite("Redis credentials stay out of messages")
struct RedisCredentialTests {
    @Test(arguments: [
        "redis://user:s3cr3t-pw@host:notaport", "redis://user:s3cr3t-pw@host/db", "redis://:s3cr3t-pw@[::1", "s3cr3t-pw",
        "redis://s3cr3t-pw@host:99999",
    ])
    func messagesNeverCarryThePassword(_ url: String) {
        do {
            _ = try RedisConfiguration(url: url)
            Issue.record("'\(url)' should not parse")
        } catch {
            #expect(!error.description.contains("s3cr3t-pw"), "\(error)")
        }
    }

    @Test func redactedHidesOnlyThePassword() {
        #expect(RedisConfiguration.redacted("redis://user:pw@h:1/0") == "redis://user:***@h:1/0")
        #expect(RedisConfiguration.redacted("redis://pw@h") == "redis://***@h")
        #expect(RedisConfiguration.redacted("redis://h:1") == "redis://h:1")
    }
}
