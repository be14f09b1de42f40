/// How to reach a Redis Cluster: seed nodes to read the slot map from, and how to talk to
/// every node.
public struct RedisClusterConfiguration: Sendable, Hashable {
    /// Nodes asked for the slot map (`CLUSTER SLOTS`) at startup and whenever the known
    /// masters cannot answer; any node of the cluster will do, masters or replicas.
    public var seeds: [RedisNodeAddress]
    /// Credentials, timeout and pool size used for every node (its host and port are ignored:
    /// they come from the seeds and the slot map). The database must be 0, as in any cluster.
    public var node: RedisConfiguration
    /// How many `MOVED`/`ASK` redirects one command may follow before it fails with
    /// `.tooManyRedirects`.
    public var maxRedirects: Int
    /// A slot-map refresh is not repeated within this interval, however many requests ask for one.
    public var minimumRefreshInterval: Duration

    public init(
        seeds: [RedisNodeAddress], node: RedisConfiguration = RedisConfiguration(), maxRedirects: Int = 5,
        minimumRefreshInterval: Duration = .milliseconds(250)
    ) {
        self.seeds = seeds
        self.node = node
        self.maxRedirects = maxRedirects
        self.minimumRefreshInterval = minimumRefreshInterval
    }
}

/// Something a cluster client did that operators count (`/metrics`).
public enum RedisClusterEvent: Sendable, Hashable {
    public enum RedirectKind: String, Sendable, Hashable {
        /// The slot lives on another master now (`MOVED`): the map is refreshed.
        case moved
        /// The slot is being migrated and this key already moved (`ASK`): `ASKING`, once.
        case ask
    }

    case redirected(RedirectKind)
    /// The slot map was read again from the cluster.
    case mapRefreshed
}

/// Which node of a cluster a command goes to.
enum RedisCommandRoute: Sendable, Hashable {
    /// The master of this slot: the slot of the command's keys.
    case slot(HashSlot)
    /// Any master (a command without keys, such as `ECHO` or `TIME`).
    case anyMaster
    /// Every master: `PING` (answered only when every slot's master answers), `SCRIPT` (a script
    /// must be known wherever it may run) and `FLUSHALL`/`FLUSHDB`. The reply is the first master's.
    case everyMaster

    /// Commands that name no key. Anything else is routed by its first argument, taken as its
    /// first key; so `KEYS` with a hash-tagged pattern reaches the node that holds those keys.
    private static let keyless: Set<String> = [
        "ECHO", "TIME", "INFO", "DBSIZE", "CLUSTER", "CLIENT", "CONFIG", "COMMAND", "MEMORY", "LASTSAVE",
        "ROLE", "RANDOMKEY", "SCAN", "HELLO", "AUTH", "SELECT", "SLOWLOG", "LATENCY", "FUNCTION", "READONLY",
        "READWRITE", "WAIT",
    ]
    private static let onEveryMaster: Set<String> = ["PING", "SCRIPT", "FLUSHALL", "FLUSHDB"]

    /// The route of a command; `EVAL`/`EVALSHA`/`FCALL` go to the slot of their keys, which must
    /// all share it (`.crossSlot` otherwise).
    init(_ arguments: [RedisArgument]) throws(RedisError) {
        guard let first = arguments.first else {
            throw RedisError(.protocolError, "an empty command has no route")
        }
        let name = String(decoding: first.bytes, as: UTF8.self).uppercased()
        switch name {
        case "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO":
            guard arguments.count >= 3, let count = Int(String(decoding: arguments[2].bytes, as: UTF8.self)),
                count >= 0, arguments.count >= 3 + count
            else { throw RedisError(.protocolError, "\(name) without a valid number of keys") }
            guard let slot = try Self.commonSlot(of: arguments[3..<(3 + count)], command: name) else {
                self = .anyMaster
                return
            }
            self = .slot(slot)
        case _ where Self.onEveryMaster.contains(name):
            self = .everyMaster
        case _ where Self.keyless.contains(name) || arguments.count < 2:
            self = .anyMaster
        default:
            self = .slot(HashSlot(key: arguments[1].bytes))
        }
    }

    /// The one slot all `keys` hash to, nil when there are none; `.crossSlot` when they differ.
    static func commonSlot(of keys: some Collection<RedisArgument>, command: String) throws(RedisError) -> HashSlot? {
        guard let first = keys.first else { return nil }
        let slot = HashSlot(key: first.bytes)
        for key in keys.dropFirst() where HashSlot(key: key.bytes) != slot {
            let firstName = String(decoding: first.bytes, as: UTF8.self)
            let otherName = String(decoding: key.bytes, as: UTF8.self)
            throw RedisError(
                .crossSlot,
                "\(command): keys '\(firstName)' (slot \(slot)) and '\(otherName)' (slot \(HashSlot(key: key.bytes))) "
                    + "are on different cluster slots; give them one hash tag")
        }
        return slot
    }
}
