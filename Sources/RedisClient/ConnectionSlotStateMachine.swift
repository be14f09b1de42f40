import NIOCore

/// The life of one `ConnectionSlot`, as a pure state machine.
///
/// Each event is a `mutating func` that moves to the next state and returns an action: what must
/// be done about it (start an attempt, resume the waiters, watch a connection for its close,
/// close one, log). The machine performs nothing itself, so `ConnectionSlot` can run an event
/// under its lock and act on the result once the lock is released, and tests can drive it with
/// plain values standing in for connections and waiters.
///
/// The states: `idle` (no connection; the next request starts an attempt), `connecting` (one
/// attempt under way, shared by every caller waiting for it), `connected`, `backoff` (the last
/// attempt failed; requests fail at once until the deadline, then the next one starts a new
/// attempt), and `shutdown` (final).
struct ConnectionSlotStateMachine<Connection: Sendable, Waiter: Sendable>: Sendable {
    /// Names one connection attempt and then the connection it made, so a close reported for an
    /// older connection is told apart from the current one's.
    struct ConnectionID: Hashable, Sendable {
        fileprivate let value: Int
    }

    /// Chosen by the caller that waits; used to find it again if its task is cancelled.
    typealias WaiterID = Int

    /// A caller waiting for the attempt under way.
    struct Waiting: Sendable {
        var id: WaiterID
        var waiter: Waiter
    }

    enum State: Sendable {
        case idle
        /// `attempt` counts the attempts that failed in a row before this one.
        case connecting(ConnectionID, attempt: Int, waiters: [Waiting])
        case connected(Connection, ConnectionID)
        /// `attempt` is the number the next attempt will have.
        case backoff(until: NIODeadline, attempt: Int, lastError: RedisError)
        case shutdown
    }

    private(set) var state: State = .idle
    private var lastConnectionID = 0

    init() {}

    /// How long to wait after attempt number `attempt` (counted from 0) failed:
    /// 25 ms, doubling with each failure in a row, at most 1 s.
    static func backoffDelay(afterFailedAttempt attempt: Int) -> TimeAmount {
        .milliseconds(min(25 << min(attempt, 6), 1000))
    }

    // MARK: a caller wants the connection

    enum ConnectionRequestAction: Sendable {
        /// The slot is connected: send on this connection.
        case useConnection(Connection, ConnectionID)
        /// An attempt was reserved: add yourself as a waiter, then start the attempt with this ID.
        case startConnecting(ConnectionID)
        /// An attempt is under way: add yourself as a waiter.
        case waitForConnection
        /// No connection now (backing off, or shut down).
        case fail(RedisError)
    }

    mutating func connectionRequested(now: NIODeadline) -> ConnectionRequestAction {
        switch state {
        case .idle:
            return .startConnecting(reserveAttempt(attempt: 0))
        case .connecting:
            return .waitForConnection
        case .connected(let connection, let id):
            return .useConnection(connection, id)
        case .backoff(let until, let attempt, let lastError):
            if now < until {
                return .fail(Self.unavailable(lastError, until: until, now: now))
            }
            return .startConnecting(reserveAttempt(attempt: attempt))
        case .shutdown:
            return .fail(Self.shutdownError)
        }
    }

    private mutating func reserveAttempt(attempt: Int) -> ConnectionID {
        lastConnectionID += 1
        let id = ConnectionID(value: lastConnectionID)
        state = .connecting(id, attempt: attempt, waiters: [])
        return id
    }

    enum AddWaiterAction: Sendable {
        /// Suspend: the waiter is resumed when the attempt ends, or when it is cancelled.
        case wait
        /// The attempt ended before the waiter was added; it made this connection.
        case useConnection(Connection)
        /// The attempt ended before the waiter was added, and there is no connection to use.
        case fail(RedisError)
    }

    /// After `connectionRequested` said to wait: the state may have moved on in between.
    mutating func addWaiter(_ waiter: Waiter, id: WaiterID, now: NIODeadline) -> AddWaiterAction {
        switch state {
        case .connecting(let connectionID, let attempt, var waiters):
            waiters.append(Waiting(id: id, waiter: waiter))
            state = .connecting(connectionID, attempt: attempt, waiters: waiters)
            return .wait
        case .connected(let connection, _):
            return .useConnection(connection)
        case .backoff(let until, _, let lastError):
            return .fail(Self.unavailable(lastError, until: until, now: now))
        case .idle:
            // The attempt succeeded and its connection closed already.
            return .fail(RedisError(.connectionClosed, "connection to Redis closed"))
        case .shutdown:
            return .fail(Self.shutdownError)
        }
    }

    enum WaiterCancelledAction: Sendable {
        /// Resume this waiter with the error; it no longer waits.
        case fail(Waiter, RedisError)
        /// The waiter was resumed already (or never added).
        case none
    }

    /// The waiter's task was cancelled. The attempt goes on for the others.
    mutating func waiterCancelled(id: WaiterID) -> WaiterCancelledAction {
        guard case .connecting(let connectionID, let attempt, var waiters) = state,
            let index = waiters.firstIndex(where: { $0.id == id })
        else { return .none }
        let waiting = waiters.remove(at: index)
        state = .connecting(connectionID, attempt: attempt, waiters: waiters)
        return .fail(waiting.waiter, RedisError(.cancelled, "task cancelled while waiting for a connection to Redis"))
    }

    // MARK: the attempt ends

    enum ConnectSucceededAction: Sendable {
        /// It is the slot's connection now: watch for its close (reporting `connectionClosed` with
        /// this ID), then resume the waiters with it. `reconnected` is true when attempts had
        /// failed before this one.
        case registerCloseHandler(Connection, ConnectionID, waiters: [Waiter], reconnected: Bool)
        /// Nobody will use it (the slot shut down meanwhile): close it.
        case closeConnection(Connection)
    }

    mutating func connectSucceeded(_ connection: Connection, id: ConnectionID) -> ConnectSucceededAction {
        guard case .connecting(let current, let attempt, let waiters) = state, current == id else {
            return .closeConnection(connection)
        }
        state = .connected(connection, id)
        return .registerCloseHandler(connection, id, waiters: waiters.map(\.waiter), reconnected: attempt > 0)
    }

    enum ConnectFailedAction: Sendable {
        /// Resume these waiters with the error. `firstFailure` is true when the slot had no failed
        /// attempt before this one, that is, when an outage begins.
        case failWaiters([Waiter], RedisError, firstFailure: Bool)
        /// The slot shut down meanwhile; its waiters were failed then.
        case none
    }

    mutating func connectFailed(id: ConnectionID, error: RedisError, now: NIODeadline) -> ConnectFailedAction {
        guard case .connecting(let current, let attempt, let waiters) = state, current == id else {
            return .none
        }
        state = .backoff(
            until: now + Self.backoffDelay(afterFailedAttempt: attempt), attempt: attempt + 1, lastError: error)
        return .failWaiters(waiters.map(\.waiter), error, firstFailure: attempt == 0)
    }

    // MARK: the connection closes

    enum ConnectionClosedAction: Sendable, Equatable {
        /// The slot's connection closed; the slot is idle and the next request reconnects.
        case logClosed
        /// A connection the slot no longer uses (or a slot shut down): nothing changes.
        case none
    }

    mutating func connectionClosed(id: ConnectionID) -> ConnectionClosedAction {
        guard case .connected(_, let current) = state, current == id else { return .none }
        state = .idle
        return .logClosed
    }

    // MARK: shutdown

    enum ShutdownAction: Sendable {
        case closeConnection(Connection)
        /// The attempt under way is left to finish; `connectSucceeded` then says to close it.
        case failWaiters([Waiter], RedisError)
        case none
    }

    mutating func shutdown() -> ShutdownAction {
        let previous = state
        state = .shutdown
        switch previous {
        case .connected(let connection, _):
            return .closeConnection(connection)
        case .connecting(_, _, let waiters):
            return .failWaiters(waiters.map(\.waiter), Self.shutdownError)
        case .idle, .backoff, .shutdown:
            return .none
        }
    }

    // MARK: errors

    static var shutdownError: RedisError { RedisError(.shutdown, "Redis client is shut down") }

    private static func unavailable(_ lastError: RedisError, until: NIODeadline, now: NIODeadline) -> RedisError {
        let milliseconds = max(0, (until - now).nanoseconds / 1_000_000)
        return RedisError(.unavailable, "\(lastError.message) (next attempt in \(milliseconds) ms)")
    }
}

extension ConnectionSlotStateMachine.Waiting: Equatable where Waiter: Equatable {}
extension ConnectionSlotStateMachine.State: Equatable where Connection: Equatable, Waiter: Equatable {}
extension ConnectionSlotStateMachine.ConnectionRequestAction: Equatable where Connection: Equatable {}
extension ConnectionSlotStateMachine.AddWaiterAction: Equatable where Connection: Equatable {}
extension ConnectionSlotStateMachine.WaiterCancelledAction: Equatable where Waiter: Equatable {}
extension ConnectionSlotStateMachine.ConnectSucceededAction: Equatable where Connection: Equatable, Waiter: Equatable {}
extension ConnectionSlotStateMachine.ConnectFailedAction: Equatable where Waiter: Equatable {}
extension ConnectionSlotStateMachine.ShutdownAction: Equatable where Connection: Equatable, Waiter: Equatable {}
