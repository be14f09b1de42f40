import Foundation
import OTPTestSupport
import Synchronization
import Testing

@testable import RedisClient

@Suite("Hash slots, the slot map and the refresh state machine")
struct HashSlotTests {
    @Test func knownSlots() {
        // The reference vector of Redis's cluster spec, and CLUSTER KEYSLOT's answers.
        #expect(HashSlot(key: "123456789").rawValue == 12739)
        #expect(HashSlot(key: "foo").rawValue == 12182)
        #expect(HashSlot(key: "bar").rawValue == 5061)
        #expect(HashSlot(key: "{user1000}.following").rawValue == 3443)
        #expect(HashSlot(key: "{user1000}.following") == HashSlot(key: "{user1000}.followers"))
        #expect(HashSlot(key: "{user1000}.following") == HashSlot(key: "user1000"))
        // Only the first {…} counts; an empty one means the whole key is hashed.
        #expect(HashSlot(key: "foo{}{bar}").rawValue == 8363)
        #expect(HashSlot(key: "foo{{bar}}zap").rawValue == 4015)
        #expect(HashSlot(key: "foo{bar}{zap}") == HashSlot(key: "bar"))
        #expect(HashSlot(key: "").rawValue == 0)
    }

    @Test func everyOTPKeyOfAUserSharesTheSlotOfItsTag() {
        let tag = "otpd:{demo:0123456789abcdef01234567}"
        let slots = Set([":user", ":otp:a", ":q", ":idem:k", ":rt:abc", ":rf:xyz"].map { HashSlot(key: tag + $0) })
        #expect(slots.count == 1)
    }

    @Test func nodeAddresses() {
        #expect(RedisNodeAddress("127.0.0.1:7000") == RedisNodeAddress(host: "127.0.0.1", port: 7000))
        #expect(RedisNodeAddress("redis-0.redis:6379")?.host == "redis-0.redis")
        #expect(RedisNodeAddress("[::1]:7000") == RedisNodeAddress(host: "::1", port: 7000))
        #expect(RedisNodeAddress(host: "::1", port: 7000).description == "[::1]:7000")
        for bad in ["127.0.0.1", ":7000", "host:0", "host:65536", "host:port", "a b:1", "redis://h:1"] {
            #expect(RedisNodeAddress(bad) == nil, "\(bad)")
        }
    }

    @Test func routes() throws {
        #expect(try RedisCommandRoute(["GET", "{a}x"]) == .slot(HashSlot(key: "a")))
        #expect(try RedisCommandRoute(["PING"]) == .everyMaster)
        #expect(try RedisCommandRoute(["SCRIPT", "LOAD", "return 1"]) == .everyMaster)
        #expect(try RedisCommandRoute(["TIME"]) == .anyMaster)
        #expect(try RedisCommandRoute(["EVALSHA", "abc", "2", "{u}a", "{u}b", "arg"]) == .slot(HashSlot(key: "u")))
        #expect(try RedisCommandRoute(["EVALSHA", "abc", "0", "arg"]) == .anyMaster)
        #expect(throws: RedisError.self) { try RedisCommandRoute(["EVALSHA", "abc", "2", "a", "b"]) }
        #expect(throws: RedisError.self) { try RedisCommandRoute(["EVALSHA", "abc", "3", "a"]) }
    }

    @Test func parsesClusterSlotsAndFindsHoles() throws {
        let seed = RedisNodeAddress(host: "10.0.0.9", port: 7000)
        func range(_ first: Int, _ last: Int, _ host: String, _ port: Int) -> RESPValue {
            .array([.integer(Int64(first)), .integer(Int64(last)),
                    .array([.bulkString(Array(host.utf8)), .integer(Int64(port)), .bulkString(Array("id".utf8))])])
        }
        let full = try RedisClusterMap(
            clusterSlots: .array([range(0, 5460, "127.0.0.1", 7000), range(5461, 16383, "", 7001)]), answeredBy: seed)
        #expect(full.coversEverySlot)
        #expect(full.master(of: HashSlot(rawValue: 0)!) == RedisNodeAddress(host: "127.0.0.1", port: 7000))
        // An empty host is the node that answered.
        #expect(full.master(of: HashSlot(rawValue: 16383)!) == RedisNodeAddress(host: "10.0.0.9", port: 7001))
        let holes = try RedisClusterMap(
            clusterSlots: .array([range(0, 99, "a", 1), range(200, 16382, "b", 2)]), answeredBy: seed)
        #expect(!holes.coversEverySlot)
        #expect(holes.unassignedRanges == [100...199, 16383...16383])
        #expect(holes.unassignedRanges.slotList == "100-199, 16383")
        #expect(throws: RedisError.self) { try RedisClusterMap(clusterSlots: .array([.integer(1)]), answeredBy: seed) }
    }

    @Test func parsesRedirects() {
        let moved = RedisError(.server, "MOVED 3999 127.0.0.1:6381").clusterRedirect
        #expect(moved == ClusterRedirect(kind: .moved, slot: HashSlot(rawValue: 3999)!, address: .init(host: "127.0.0.1", port: 6381)))
        #expect(RedisError(.server, "ASK 1 [::1]:7000").clusterRedirect?.address == .init(host: "::1", port: 7000))
        #expect(RedisError(.server, "ERR MOVED wrong").clusterRedirect == nil)
        #expect(RedisError(.connectionClosed, "MOVED 1 a:1").clusterRedirect == nil)
    }

    @Test func oneRefreshAtATimeAndNotTooOften() {
        var machine = ClusterRefreshStateMachine<String>(minimumInterval: .milliseconds(250))
        let start = ContinuousClock.now
        guard case .refresh = machine.refreshRequested(waiter: "a", now: start, force: false) else {
            Issue.record("the first request refreshes")
            return
        }
        guard case .wait = machine.refreshRequested(waiter: "b", now: start, force: true) else {
            Issue.record("a request during a refresh waits for it, forced or not")
            return
        }
        #expect(machine.refreshFinished(now: start + .milliseconds(10)) == ["b"])
        guard case .skip = machine.refreshRequested(waiter: "c", now: start + .milliseconds(100), force: false) else {
            Issue.record("within the interval: skipped")
            return
        }
        guard case .refresh = machine.refreshRequested(waiter: "d", now: start + .milliseconds(100), force: true) else {
            Issue.record("forced: refreshed")
            return
        }
        #expect(machine.refreshFinished(now: start + .milliseconds(110)).isEmpty)
        guard case .refresh = machine.refreshRequested(waiter: "e", now: start + .milliseconds(400), force: false) else {
            Issue.record("after the interval: refreshed")
            return
        }
    }
}

/// Counts what a cluster client reports.
final class ClusterEvents: Sendable {
    private let counts = Mutex<[RedisClusterEvent: Int]>([:])
    var record: @Sendable (RedisClusterEvent) -> Void { { event in self.counts.withLock { $0[event, default: 0] += 1 } } }
    subscript(event: RedisClusterEvent) -> Int { counts.withLock { $0[event, default: 0] } }
}

/// A plain client of one node, for setting the cluster up behind the cluster client's back.
func nodeClient(_ address: String) throws -> RedisClient {
    RedisClient(configuration: try RedisConfiguration(url: "redis://\(address)/0", timeoutMilliseconds: 2000))
}

/// The cluster client against the test cluster of `scripts/test.sh` (`OTPD_TEST_REDIS_NODES`).
/// Serialized: the tests move slots between masters.
@Suite("Cluster client on a real Redis Cluster", .serialized)
struct RedisClusterTests {
    /// A key on `slot`'s master that this run has not used: `{tag}suffix`, tag chosen for the slot.
    static func key(onSlotOf tag: String) -> String { "{\(tag)}" + UUID().uuidString }

    /// The node id and address of each master, from `CLUSTER NODES` of any node.
    static func masters(via admin: RedisClient) async throws -> [(id: String, address: String, slots: [ClosedRange<Int>])] {
        let text = try await admin.send("CLUSTER", "NODES").string ?? ""
        return text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ").map(String.init)
            guard fields.count >= 8, fields[2].contains("master"), !fields[2].contains("fail") else { return nil }
            let address = String(fields[1].split(separator: "@")[0])
            let slots = fields.dropFirst(8).compactMap { field -> ClosedRange<Int>? in
                let bounds = field.split(separator: "-").compactMap { Int($0) }
                guard let first = bounds.first else { return nil }
                return first...(bounds.last ?? first)
            }
            return (fields[0], address, slots)
        }
    }

    static func master(of slot: HashSlot, via admin: RedisClient) async throws -> (id: String, address: String) {
        let master = try #require(try await masters(via: admin).first { $0.slots.contains { $0.contains(Int(slot.rawValue)) } })
        return (master.id, master.address)
    }

    @Test func routesEveryKeyToItsMasterWithoutRedirects() async throws {
        let events = ClusterEvents()
        let redis = try TestRedis.clusterClient(onEvent: events.record)
        defer { redis.shutdown() }
        try await redis.start()
        let prefix = TestRedis.uniquePrefix("route")
        for index in 0..<300 {
            _ = try await redis.send("SET", RedisArgument("\(prefix):\(index)"), RedisArgument(index), "EX", "60")
        }
        for index in 0..<300 {
            #expect(try await redis.send("GET", RedisArgument("\(prefix):\(index)")).int == index)
        }
        // 300 keys spread over all three masters; a wrong route would have been MOVED.
        #expect(events[.redirected(.moved)] == 0 && events[.redirected(.ask)] == 0)
        // And each key is where the cluster says its slot lives.
        let admin = try nodeClient(TestRedis.clusterNodes[0])
        defer { admin.shutdown() }
        let key = "\(prefix):7"
        let owner = try await Self.master(of: HashSlot(key: key), via: admin)
        let direct = try nodeClient(owner.address)
        defer { direct.shutdown() }
        #expect(try await direct.send("GET", RedisArgument(key)).int == 7)
        #expect(try await redis.send("PING").string == "PONG")
    }

    @Test func crossSlotScriptsAreRefusedBeforeSending() async throws {
        let redis = try TestRedis.clusterClient()
        defer { redis.shutdown() }
        let script = RedisScript("return #KEYS")
        let error = await #expect(throws: RedisError.self) { try await redis.evalScript(script, keys: ["a", "b"]) }
        #expect(error?.code == .crossSlot)
        #expect(error?.message.contains("different cluster slots") == true)
        // The same keys under one hash tag run (after loading the script on their master).
        #expect(try await redis.evalScript(script, keys: ["{t}a", "{t}b"]).int == 2)
        // Standalone clients refuse them too, so the engine's tests catch it without a cluster.
        let standalone = RedisClient(configuration: try RedisConfiguration(url: TestRedis.url))
        defer { standalone.shutdown() }
        await #expect(throws: RedisError.self) { try await standalone.evalScript(script, keys: ["a", "b"]) }
    }

    @Test func scriptsAreLoadedOnEveryMaster() async throws {
        let redis = try TestRedis.clusterClient()
        defer { redis.shutdown() }
        let script = RedisScript("return 'loaded-\(UUID().uuidString)'")
        try await redis.load([script])
        let admin = try nodeClient(TestRedis.clusterNodes[0])
        defer { admin.shutdown() }
        for master in try await Self.masters(via: admin) {
            let node = try nodeClient(master.address)
            defer { node.shutdown() }
            #expect(try await node.send("SCRIPT", "EXISTS", RedisArgument(script.sha1)).array == [.integer(1)])
        }
    }

    /// A slot migrated to another master after the client read its map: the old master answers
    /// MOVED, the client follows and refreshes its map, and the next command goes straight there.
    @Test func movedAfterASlotMigration() async throws {
        let events = ClusterEvents()
        let redis = try TestRedis.clusterClient(onEvent: events.record)
        defer { redis.shutdown() }
        try await redis.start()
        let key = Self.key(onSlotOf: TestRedis.uniquePrefix("moved"))
        let slot = HashSlot(key: key)
        _ = try await redis.send("SET", RedisArgument(key), "before", "EX", "60")
        try await Self.migrate(slot, keys: [key], finish: true)
        #expect(try await redis.send("GET", RedisArgument(key)).string == "before")
        #expect(events[.redirected(.moved)] == 1)
        #expect(try await redis.send("GET", RedisArgument(key)).string == "before")
        #expect(events[.redirected(.moved)] == 1, "the map was refreshed: no second redirect")
        #expect(events[.mapRefreshed] >= 2)
    }

    /// During a migration, a key already moved is answered with ASK: the client sends ASKING and
    /// the command to the importing node, once, and keeps its map (keys not moved yet stay).
    @Test func askDuringASlotMigration() async throws {
        let events = ClusterEvents()
        let redis = try TestRedis.clusterClient(onEvent: events.record)
        defer { redis.shutdown() }
        try await redis.start()
        let tag = TestRedis.uniquePrefix("ask")
        let moved = Self.key(onSlotOf: tag)
        let staying = Self.key(onSlotOf: tag)
        let slot = HashSlot(key: moved)
        _ = try await redis.send("SET", RedisArgument(moved), "moved", "EX", "60")
        _ = try await redis.send("SET", RedisArgument(staying), "staying", "EX", "60")
        let (source, target) = try await Self.migrate(slot, keys: [moved], finish: false)
        #expect(try await redis.send("GET", RedisArgument(moved)).string == "moved")
        #expect(events[.redirected(.ask)] == 1)
        #expect(try await redis.send("GET", RedisArgument(staying)).string == "staying")
        #expect(try await redis.send("GET", RedisArgument(moved)).string == "moved")
        #expect(events[.redirected(.ask)] == 2, "ASK does not change the map")
        #expect(events[.redirected(.moved)] == 0)
        // Finish the migration, so the cluster is whole again for the other tests.
        try await Self.finishMigration(slot, keys: [staying], source: source, target: target)
        #expect(try await redis.send("GET", RedisArgument(staying)).string == "staying")
    }

    /// ASK under concurrent load on the importing node's connections: ASKING and its command
    /// go out as one write, so no other caller's command takes the ASKING, and every reply is
    /// the right one without a MOVED bounce.
    @Test func askUnderConcurrentLoadOnTheSameConnections() async throws {
        let events = ClusterEvents()
        let redis = try TestRedis.clusterClient(onEvent: events.record)
        defer { redis.shutdown() }
        try await redis.start()
        let tag = TestRedis.uniquePrefix("askload")
        let moved = Self.key(onSlotOf: tag)
        let staying = Self.key(onSlotOf: tag)
        let slot = HashSlot(key: moved)
        _ = try await redis.send("SET", RedisArgument(moved), "moved", "EX", "60")
        _ = try await redis.send("SET", RedisArgument(staying), "staying", "EX", "60")
        let (source, target) = try await Self.migrate(slot, keys: [moved], finish: false)
        // Keys the importing node serves as their master: their commands share its connections.
        let admin = try nodeClient(TestRedis.clusterNodes[0])
        let targetSlots = try #require(try await Self.masters(via: admin).first { $0.id == target.id }).slots
        admin.shutdown()
        var local: [String] = []
        for index in 0..<10_000 where local.count < 8 {
            let key = "{\(tag)-\(index)}x"
            if targetSlots.contains(where: { $0.contains(Int(HashSlot(key: key).rawValue)) }) { local.append(key) }
        }
        for key in local { _ = try await redis.send("SET", RedisArgument(key), RedisArgument(key), "EX", "60") }
        let outcome: Result<Int, any Error>
        do {
            outcome = .success(try await Self.getConcurrently(redis, moved: moved, local: local))
        } catch {
            outcome = .failure(error)
        }
        // Finish the migration whatever happened, so the cluster is whole for the other tests.
        try await Self.finishMigration(slot, keys: [staying], source: source, target: target)
        #expect(try outcome.get() == 0)
        #expect(events[.redirected(.ask)] == 1000)
        #expect(events[.redirected(.moved)] == 0, "a command between ASKING and its command makes the importing node answer MOVED")
    }

    /// 2000 GETs at once, half of the moved key (ASK), half of keys the importing node serves;
    /// how many replies were wrong.
    static func getConcurrently(_ redis: RedisClient, moved: String, local: [String]) async throws -> Int {
        try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<2000 {
                group.addTask {
                    let key = index % 2 == 0 ? moved : local[index / 2 % local.count]
                    let want = index % 2 == 0 ? "moved" : key
                    return try await redis.send("GET", RedisArgument(key)).string == want ? 0 : 1
                }
            }
            return try await group.reduce(0, +)
        }
    }

    /// A script on two keys of one slot while one has moved and the other has not: the source
    /// answers TRYAGAIN; the client waits and sends it again, and it runs once the migration ends.
    @Test func tryAgainWhileASlotIsHalfMigrated() async throws {
        let redis = try TestRedis.clusterClient()
        defer { redis.shutdown() }
        try await redis.start()
        let tag = TestRedis.uniquePrefix("tryagain")
        let moved = Self.key(onSlotOf: tag)
        let staying = Self.key(onSlotOf: tag)
        let slot = HashSlot(key: moved)
        _ = try await redis.send("SET", RedisArgument(moved), "1", "EX", "60")
        _ = try await redis.send("SET", RedisArgument(staying), "2", "EX", "60")
        let (source, target) = try await Self.migrate(slot, keys: [moved], finish: false)
        let script = RedisScript("return redis.call('GET', KEYS[1]) .. redis.call('GET', KEYS[2])")
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                // Ends the migration while the client is retrying (20 ms, then 40 ms, …).
                try await Task.sleep(for: .milliseconds(50))
                try await Self.finishMigration(slot, keys: [staying], source: source, target: target)
            }
            #expect(try await redis.evalScript(script, keys: [RedisArgument(moved), RedisArgument(staying)]).string == "12")
            try await group.waitForAll()
        }
    }

    typealias Master = (id: String, address: String)

    /// Starts moving `slot` from its master to another: IMPORTING/MIGRATING, `keys` moved with
    /// MIGRATE; with `finish`, the slot is then given to the target everywhere.
    @discardableResult
    static func migrate(_ slot: HashSlot, keys: [String], finish: Bool) async throws -> (source: Master, target: Master) {
        let admin = try nodeClient(TestRedis.clusterNodes[0])
        defer { admin.shutdown() }
        let source = try await master(of: slot, via: admin)
        let other = try #require(try await masters(via: admin).first { $0.id != source.id })
        let target = (id: other.id, address: other.address)
        let sourceNode = try nodeClient(source.address)
        let targetNode = try nodeClient(target.address)
        defer {
            sourceNode.shutdown()
            targetNode.shutdown()
        }
        let slotArgument = RedisArgument(Int(slot.rawValue))
        _ = try await targetNode.send("CLUSTER", "SETSLOT", slotArgument, "IMPORTING", RedisArgument(source.id))
        _ = try await sourceNode.send("CLUSTER", "SETSLOT", slotArgument, "MIGRATING", RedisArgument(target.id))
        let targetAddress = try #require(RedisNodeAddress(target.address))
        for key in keys {
            _ = try await sourceNode.send(
                "MIGRATE", RedisArgument(targetAddress.host), RedisArgument(targetAddress.port), RedisArgument(key), "0", "5000")
        }
        if finish { try await finishMigration(slot, keys: [], source: source, target: target) }
        return (source, target)
    }

    static func finishMigration(_ slot: HashSlot, keys: [String], source: Master, target: Master) async throws {
        let sourceNode = try nodeClient(source.address)
        let targetNode = try nodeClient(target.address)
        defer {
            sourceNode.shutdown()
            targetNode.shutdown()
        }
        let targetAddress = try #require(RedisNodeAddress(target.address))
        for key in keys {
            _ = try await sourceNode.send(
                "MIGRATE", RedisArgument(targetAddress.host), RedisArgument(targetAddress.port), RedisArgument(key), "0", "5000")
        }
        let slotArgument = RedisArgument(Int(slot.rawValue))
        _ = try await targetNode.send("CLUSTER", "SETSLOT", slotArgument, "NODE", RedisArgument(target.id))
        _ = try await sourceNode.send("CLUSTER", "SETSLOT", slotArgument, "NODE", RedisArgument(target.id))
    }

    @Test func aWrongNodeAnswersMovedAndTheClientFollows() async throws {
        // A master asked for a slot it does not serve answers MOVED with the owner's address…
        let admin = try nodeClient(TestRedis.clusterNodes[0])
        defer { admin.shutdown() }
        let key = Self.key(onSlotOf: TestRedis.uniquePrefix("wrong"))
        let owner = try await Self.master(of: HashSlot(key: key), via: admin)
        let other = try #require(try await Self.masters(via: admin).first { $0.id != owner.id })
        let wrong = try nodeClient(other.address)
        defer { wrong.shutdown() }
        let error = await #expect(throws: RedisError.self) { try await wrong.send("GET", RedisArgument(key)) }
        #expect(error?.clusterRedirect?.kind == .moved)
        #expect(error?.clusterRedirect?.address == RedisNodeAddress(owner.address))
        // …and the cluster client, its map made wrong for that slot, follows the MOVED.
        let events = ClusterEvents()
        let redis = try TestRedis.clusterClient(onEvent: events.record)
        defer { redis.shutdown() }
        try await redis.start()
        redis.withClusterMap { $0.assign(Int(HashSlot(key: key).rawValue)...Int(HashSlot(key: key).rawValue), to: RedisNodeAddress(other.address)!) }
        _ = try await redis.send("SET", RedisArgument(key), "v", "EX", "60")
        #expect(events[.redirected(.moved)] == 1)
        #expect(try await redis.send("GET", RedisArgument(key)).string == "v")
    }

    @Test func startupFailsWhenNoSeedAnswers() async throws {
        let redis = RedisClient(cluster: RedisClusterConfiguration(seeds: [.init(host: "127.0.0.1", port: freePort())]))
        defer { redis.shutdown() }
        let error = await #expect(throws: RedisError.self) { try await redis.start() }
        #expect(error?.code == .unavailable)
        #expect(error?.message.contains("no node of the Redis Cluster answered") == true)
    }

    @Test func startupFailsWhenSlotsHaveNoMaster() async throws {
        // A cluster-enabled node that was never given a slot.
        let directory = NSTemporaryDirectory() + "otpd-test-lonely-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try RedisServerProcess(arguments: [
            "--cluster-enabled", "yes", "--cluster-config-file", "\(directory)/nodes.conf", "--dir", directory,
        ])
        defer { server.stop() }
        let redis = RedisClient(cluster: RedisClusterConfiguration(seeds: [.init(host: "127.0.0.1", port: server.port)]))
        defer { redis.shutdown() }
        let error = await #expect(throws: RedisError.self) { try await redis.start() }
        #expect(error?.code == .clusterDown)
        #expect(error?.message.contains("0-16383") == true, "\(String(describing: error))")
        // Readiness (PING on every master) fails the same way.
        await #expect(throws: RedisError.self) { try await redis.send("PING") }
    }
}

/// Failover on a cluster of the test's own: a master is killed, its replica takes over, and
/// the client finds the new master by itself.
@Suite("Cluster client across a failover")
struct RedisClusterFailoverTests {
    @Test func aKilledMastersReplicaServesAfterAMapRefresh() async throws {
        let cluster = try TestRedisCluster()
        let events = ClusterEvents()
        let redis = RedisClient(
            cluster: RedisClusterConfiguration(
                seeds: cluster.nodes.compactMap { RedisNodeAddress($0) }, node: RedisConfiguration(timeoutMilliseconds: 1000)),
            onEvent: events.record)
        defer { redis.shutdown() }
        try await redis.start()
        let key = "{failover}" + UUID().uuidString
        _ = try await redis.send("SET", RedisArgument(key), "kept")
        // The replica has the write before its master dies.
        #expect(try await redis.send("WAIT", "1", "500").int == 1)
        let admin = try nodeClient(cluster.nodes[0])
        let owner = try await RedisClusterTests.master(of: HashSlot(key: key), via: admin)
        admin.shutdown()
        let port = try #require(RedisNodeAddress(owner.address)).port
        let refreshesBefore = events[.mapRefreshed]
        kill(try #require(cluster.pid(port: port)), SIGKILL)
        // Not ready at once: a master does not answer (no replica can win an election within
        // the 1 s node timeout).
        let notReady = await #expect(throws: RedisError.self) { try await redis.send("PING") }
        #expect(notReady?.isConnectionFailure == true, "\(String(describing: notReady))")

        // Unavailable (fast) until a replica is promoted, then served without a new client.
        let start = ContinuousClock.now
        var failures = 0
        var value: String?
        while ContinuousClock.now - start < .seconds(30) {
            do {
                value = try await redis.send("GET", RedisArgument(key)).string
                break
            } catch {
                failures += 1
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        let recovery = ContinuousClock.now - start
        #expect(value == "kept", "no answer within 30 s (\(failures) failures)")
        #expect(failures > 0, "the dead master was noticed")
        #expect(events[.mapRefreshed] > refreshesBefore)
        #expect(try await redis.send("PING").string == "PONG", "every slot has a master again")
        print("failover: served again after \(recovery), \(failures) failed attempts")
    }
}
