import Logging
import NIOCore
import Synchronization

/// Routes commands over a Redis Cluster: one `RedisNodePool` per node, a slot map read with
/// `CLUSTER SLOTS`, and the cluster's redirects followed.
///
/// - A command goes to the master of its first key's slot (`RedisCommandRoute`).
/// - `MOVED`: the slot has a new master. The map is refreshed (at most once per
///   `minimumRefreshInterval`), the slot is given to the node named in the reply, and the
///   command is sent there.
/// - `ASK`: the slot is being migrated and this key has moved already. The command is sent
///   once to the named node, after `ASKING` on the same connection; the map is not changed.
/// - A node that cannot be reached (`.unavailable`: nothing was sent) makes the map be read
///   again; when the slot has a new master now (a replica took over), the command goes there.
///   A connection that closed or timed out under a command also makes the map be refreshed,
///   but the command is not sent again: it may have run.
/// - `TRYAGAIN` (a multi-key command while its slot is half migrated): sent again after a
///   short wait; it counts against the redirect cap.
/// - At most `maxRedirects` redirects per command, then `.tooManyRedirects`.
final class RedisClusterClient: Sendable {
    /// Whether a caller that asked for a refresh does it (`lead`) or it is done already.
    enum RefreshTurn: Sendable { case lead, done }
    typealias RefreshWaiter = CheckedContinuation<RefreshTurn, Never>

    let configuration: RedisClusterConfiguration
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let onEvent: @Sendable (RedisClusterEvent) -> Void

    /// The slot map, nil until it was first read.
    private let map = Mutex<RedisClusterMap?>(nil)
    private let pools = Mutex(NodePools())
    private let refreshState: Mutex<ClusterRefreshStateMachine<RefreshWaiter>>

    /// The pools of every node this client has talked to: masters, and seeds asked for the map.
    /// A node that dies keeps its pool (idle, its connections closed) until shutdown; a node that
    /// comes back, as a replica or a master, is reached through it again.
    private struct NodePools {
        var byAddress: [RedisNodeAddress: RedisNodePool] = [:]
        var isShutdown = false
    }

    init(
        configuration: RedisClusterConfiguration, eventLoopGroup: any EventLoopGroup, logger: Logger,
        onEvent: @escaping @Sendable (RedisClusterEvent) -> Void
    ) {
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.onEvent = onEvent
        self.refreshState = Mutex(ClusterRefreshStateMachine(minimumInterval: configuration.minimumRefreshInterval))
    }

    // MARK: commands

    func send(_ arguments: [RedisArgument], route: RedisCommandRoute) async throws(RedisError) -> RESPValue {
        switch route {
        case .everyMaster:
            return try await sendToEveryMaster(arguments)
        case .anyMaster:
            return try await send(arguments, slot: nil)
        case .slot(let slot):
            return try await send(arguments, slot: slot)
        }
    }

    /// Sends to the master of `slot` (any master when nil), following redirects.
    private func send(_ arguments: [RedisArgument], slot: HashSlot?) async throws(RedisError) -> RESPValue {
        var target = try await master(of: slot)
        var asking = false
        var redirects = 0
        var retriedAfterRefresh = false
        while true {
            let pool = try pool(for: target)
            do {
                return try await asking ? pool.sendAsking(arguments) : pool.send(arguments)
            } catch {
                if let redirect = error.clusterRedirect {
                    onEvent(.redirected(redirect.kind))
                    redirects += 1
                    guard redirects <= configuration.maxRedirects else {
                        throw RedisError(
                            .tooManyRedirects,
                            "more than \(configuration.maxRedirects) redirects for slot \(redirect.slot); last: \(error.message)")
                    }
                    target = redirect.address
                    switch redirect.kind {
                    case .moved:
                        asking = false
                        await refreshMap(force: false)
                        // The node that answered MOVED is the authority for this slot now,
                        // whatever the map says (the refresh may have been skipped, or raced).
                        map.withLock { $0?.assign(Int(redirect.slot.rawValue)...Int(redirect.slot.rawValue), to: redirect.address) }
                    case .ask:
                        asking = true
                    }
                    continue
                }
                switch error.code {
                case .unavailable where !retriedAfterRefresh:
                    // Nothing was sent. A replica may have taken the slot over: read the map again.
                    retriedAfterRefresh = true
                    await refreshMap(force: false)
                    let owner = try await master(of: slot)
                    guard owner != target else { throw error }
                    target = owner
                    asking = false
                case .connectionClosed, .timeout, .unavailable:
                    await refreshMap(force: false)
                    throw error
                case .server where error.serverErrorPrefix == "TRYAGAIN":
                    // A multi-key command during a slot migration, its keys split for a moment
                    // between the two nodes: wait a little and send it again, within the cap.
                    redirects += 1
                    guard redirects <= configuration.maxRedirects else { throw error }
                    try? await Task.sleep(for: .milliseconds(20 * redirects))
                    if Task.isCancelled { throw RedisError(.cancelled, "task cancelled while waiting to retry after TRYAGAIN") }
                    target = try await master(of: slot)
                    asking = false
                case .server where error.serverErrorPrefix == "CLUSTERDOWN":
                    await refreshMap(force: false)
                    throw RedisError(.clusterDown, error.message)
                default:
                    throw error
                }
            }
        }
    }

    /// Sends to every master in the map, at once; returns the first master's reply. Used for
    /// `PING` (so it answers only when every slot has a master that answers: readiness) and
    /// `SCRIPT LOAD`. Fails with `.clusterDown` when a slot has no master, and with the error
    /// of a master that does not answer, after one refresh of the map.
    private func sendToEveryMaster(_ arguments: [RedisArgument]) async throws(RedisError) -> RESPValue {
        var refreshed = false
        while true {
            let masters = try await everyMaster()
            let replies = await withTaskGroup(of: (Int, Result<RESPValue, RedisError>).self) { group in
                for (index, master) in masters.enumerated() {
                    group.addTask {
                        do throws(RedisError) {
                            return (index, .success(try await self.pool(for: master).send(arguments)))
                        } catch {
                            return (index, .failure(error))
                        }
                    }
                }
                var replies = [Result<RESPValue, RedisError>?](repeating: nil, count: masters.count)
                for await (index, reply) in group { replies[index] = reply }
                return replies.map { $0! }
            }
            var firstFailure: (RedisNodeAddress, RedisError)?
            for (master, reply) in zip(masters, replies) {
                if case .failure(let error) = reply, firstFailure == nil { firstFailure = (master, error) }
            }
            guard let (master, error) = firstFailure else { return try replies[0].get() }
            guard error.isConnectionFailure || error.clusterRedirect != nil, !refreshed else {
                throw RedisError(error.code, "master \(master): \(error.message)")
            }
            refreshed = true
            await refreshMap(force: false)
        }
    }

    /// The master of `slot` (any master when nil), reading the map first when it was never read.
    private func master(of slot: HashSlot?) async throws(RedisError) -> RedisNodeAddress {
        if map.withLock({ $0 == nil }) { await refreshMap(force: true) }
        let current = map.withLock { $0 }
        guard let current else {
            throw RedisError(.unavailable, "the cluster's slot map is unknown: no seed node answered")
        }
        if let slot {
            guard let master = current.master(of: slot) else {
                throw RedisError(.clusterDown, "slot \(slot) has no master in the cluster's slot map")
            }
            return master
        }
        guard let master = current.servingMasters.randomElement() else {
            throw RedisError(.clusterDown, "the cluster's slot map has no master")
        }
        return master
    }

    /// Every master, when the map covers every slot (read again first, when it does not).
    private func everyMaster() async throws(RedisError) -> [RedisNodeAddress] {
        if map.withLock({ $0 == nil }) { await refreshMap(force: true) }
        if map.withLock({ $0?.coversEverySlot == false }) { await refreshMap(force: false) }
        guard let current = map.withLock({ $0 }) else {
            throw RedisError(.unavailable, "the cluster's slot map is unknown: no seed node answered")
        }
        guard current.coversEverySlot else {
            throw RedisError(.clusterDown, "no master serves slots \(current.unassignedRanges.slotList)")
        }
        return current.servingMasters
    }

    private func pool(for address: RedisNodeAddress) throws(RedisError) -> RedisNodePool {
        let pool = pools.withLock { pools -> RedisNodePool? in
            if pools.isShutdown { return nil }
            if let pool = pools.byAddress[address] { return pool }
            var configuration = configuration.node
            configuration.host = address.host
            configuration.port = address.port
            var nodeLogger = logger
            nodeLogger[metadataKey: "redis.node"] = "\(address)"
            let pool = RedisNodePool(configuration: configuration, eventLoopGroup: eventLoopGroup, logger: nodeLogger)
            pools.byAddress[address] = pool
            return pool
        }
        guard let pool else { throw RedisError(.shutdown, "the Redis client is shut down") }
        return pool
    }

    // MARK: the slot map

    /// Reads the map once, at startup: fails when no seed answers or a slot has no master.
    func start() async throws(RedisError) {
        let current = try await readMap()
        map.withLock { $0 = current }
        onEvent(.mapRefreshed)
        guard current.coversEverySlot else {
            throw RedisError(
                .clusterDown, "the cluster reports slots without a master: \(current.unassignedRanges.slotList)")
        }
        logger.info(
            "Redis Cluster slot map read",
            metadata: ["redis.masters": "\(current.servingMasters.map(\.description).joined(separator: ","))"])
    }

    /// Reads the map again, unless another refresh is under way (then waits for it) or one
    /// finished within `minimumRefreshInterval` (then does nothing). Keeps the old map when no
    /// node answers.
    func refreshMap(force: Bool) async {
        let turn = await withCheckedContinuation { (waiter: RefreshWaiter) in
            switch refreshState.withLock({ $0.refreshRequested(waiter: waiter, now: .now, force: force) }) {
            case .refresh: waiter.resume(returning: .lead)
            case .skip: waiter.resume(returning: .done)
            case .wait: break  // resumed by the refresh under way when it finishes
            }
        }
        guard turn == .lead else { return }
        do {
            let fresh = try await readMap()
            let previous = map.withLock { map in
                defer { map = fresh }
                return map
            }
            onEvent(.mapRefreshed)
            if previous != fresh {
                logger.info(
                    "Redis Cluster slot map changed",
                    metadata: [
                        "redis.masters": "\(fresh.servingMasters.map(\.description).joined(separator: ","))",
                        "redis.unassigned_slots": "\(fresh.unassignedRanges.slotList)",
                    ])
            }
        } catch {
            logger.warning("could not refresh the Redis Cluster slot map", metadata: ["error": "\(error.message)"])
        }
        let waiters = refreshState.withLock { $0.refreshFinished(now: .now) }
        for waiter in waiters { waiter.resume(returning: .done) }
    }

    /// Asks the known masters, then the seeds, for `CLUSTER SLOTS`; the first map that covers
    /// every slot wins, else the first answer. Throws when nobody answers.
    private func readMap() async throws(RedisError) -> RedisClusterMap {
        let known = map.withLock { $0?.servingMasters } ?? []
        var candidates = known
        for seed in configuration.seeds where !candidates.contains(seed) { candidates.append(seed) }
        var partial: RedisClusterMap?
        var failures: [String] = []
        for node in candidates {
            do {
                let reply = try await pool(for: node).send(["CLUSTER", "SLOTS"])
                let answer = try RedisClusterMap(clusterSlots: reply, answeredBy: node)
                if answer.coversEverySlot { return answer }
                if partial == nil { partial = answer }
            } catch where error.code == .shutdown {
                throw error
            } catch {
                failures.append("\(node): \(error.message)")
            }
        }
        if let partial { return partial }
        throw RedisError(
            .unavailable, "no node of the Redis Cluster answered CLUSTER SLOTS (\(failures.joined(separator: "; ")))")
    }

    /// Changes the slot map in place (tests only: `RedisClient.withClusterMap`).
    func withMap(_ body: (inout RedisClusterMap) -> Void) {
        map.withLock { map in
            if map != nil { body(&map!) }
        }
    }

    /// Closes every node's connections; commands sent afterwards fail with `.shutdown`.
    func shutdown() {
        let closing = pools.withLock { pools in
            pools.isShutdown = true
            return Array(pools.byAddress.values)
        }
        for pool in closing { pool.shutdown() }
    }
}
