/// When a cluster client re-reads the slot map: at most one refresh at a time, and not again
/// within `minimumInterval` of the last one, so a burst of redirects or connection errors (every
/// request to a dead master fails) costs one `CLUSTER SLOTS`, not one per request.
///
/// Pure: each event returns what the caller must do; `RedisClusterClient` performs it outside
/// its lock. `Waiter` is what a caller waits on (a continuation); tests use plain values.
struct ClusterRefreshStateMachine<Waiter> {
    /// What the caller that asked for a refresh does next.
    enum RequestAction {
        /// Refresh now, then report `refreshFinished`.
        case refresh
        /// A refresh is under way; the waiter is resumed when it finishes.
        case wait
        /// A refresh finished less than `minimumInterval` ago: use the map as it is.
        case skip
    }

    private enum State {
        case idle(lastFinished: ContinuousClock.Instant?)
        case refreshing(waiters: [Waiter])
    }

    private var state = State.idle(lastFinished: nil)
    let minimumInterval: Duration

    init(minimumInterval: Duration) {
        self.minimumInterval = minimumInterval
    }

    /// A caller wants a fresh map. `force` ignores the interval (startup, an empty map), but
    /// never starts a second refresh while one is under way.
    mutating func refreshRequested(waiter: Waiter, now: ContinuousClock.Instant, force: Bool) -> RequestAction {
        switch state {
        case .refreshing(var waiters):
            waiters.append(waiter)
            state = .refreshing(waiters: waiters)
            return .wait
        case .idle(let lastFinished):
            if !force, let lastFinished, now - lastFinished < minimumInterval { return .skip }
            state = .refreshing(waiters: [])
            return .refresh
        }
    }

    /// The refresh ended (with a new map or not): the waiters to resume.
    mutating func refreshFinished(now: ContinuousClock.Instant) -> [Waiter] {
        switch state {
        case .refreshing(let waiters):
            state = .idle(lastFinished: now)
            return waiters
        case .idle:
            return []
        }
    }
}
