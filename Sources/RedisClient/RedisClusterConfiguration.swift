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
