import NIOCore
import Testing

@testable import RedisClient

/// The slot's decisions as pure transitions: a connection is a name, a waiter a number.
@Suite("ConnectionSlotStateMachine, state by state")
struct ConnectionSlotStateMachineTests {
    typealias Machine = ConnectionSlotStateMachine<String, Int>

    let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
    let refused = RedisError(.unavailable, "cannot connect to Redis at 127.0.0.1:1: connection refused")

    /// Requests a connection and expects a new attempt; returns its ID.
    func startAttempt(_ machine: inout Machine, now: NIODeadline, waiter: Int) throws -> Machine.ConnectionID {
        let action = machine.connectionRequested(now: now)
        guard case .startConnecting(let id) = action else {
            throw ExpectationFailure("expected a new attempt, got \(action)")
        }
        #expect(machine.addWaiter(waiter, id: waiter, now: now) == .wait)
        return id
    }

    /// A machine connected to `connection`, and the connection's ID.
    func connected(to connection: String) throws -> (Machine, Machine.ConnectionID) {
        var machine = Machine()
        let id = try startAttempt(&machine, now: start, waiter: 1)
        _ = machine.connectSucceeded(connection, id: id)
        return (machine, id)
    }

    @Test func requestWhenIdleStartsAnAttempt() throws {
        var machine = Machine()
        #expect(machine.state == .idle)
        guard case .startConnecting(let id) = machine.connectionRequested(now: start) else {
            Issue.record("expected a new attempt")
            return
        }
        #expect(machine.state == .connecting(id, attempt: 0, waiters: []))
        #expect(machine.addWaiter(7, id: 7, now: start) == .wait)
        #expect(machine.state == .connecting(id, attempt: 0, waiters: [.init(id: 7, waiter: 7)]))
    }

    @Test func callersDuringAnAttemptShareIt() throws {
        var machine = Machine()
        let id = try startAttempt(&machine, now: start, waiter: 1)
        #expect(machine.connectionRequested(now: start) == .waitForConnection)
        #expect(machine.addWaiter(2, id: 2, now: start) == .wait)
        #expect(machine.connectionRequested(now: start) == .waitForConnection)
        #expect(machine.addWaiter(3, id: 3, now: start) == .wait)

        #expect(
            machine.connectSucceeded("c1", id: id)
                == .registerCloseHandler("c1", id, waiters: [1, 2, 3], reconnected: false))
        #expect(machine.state == .connected("c1", id))
        #expect(machine.connectionRequested(now: start) == .useConnection("c1", id))
    }

    @Test func failedAttemptsBackOffFrom25MillisecondsDoublingTo1Second() throws {
        var machine = Machine()
        var now = start
        let delays: [Int64] = [25, 50, 100, 200, 400, 800, 1000, 1000]
        for (attempt, delay) in delays.enumerated() {
            let id = try startAttempt(&machine, now: now, waiter: attempt)
            #expect(machine.state == .connecting(id, attempt: attempt, waiters: [.init(id: attempt, waiter: attempt)]))
            // Only the first failure of an outage is logged.
            #expect(machine.connectFailed(id: id, error: refused, now: now) == .failWaiters([attempt], refused, firstFailure: attempt == 0))
            let until = now + .milliseconds(delay)
            #expect(machine.state == .backoff(until: until, attempt: attempt + 1, lastError: refused))
            now = until
        }
    }

    @Test func requestDuringBackoffFailsUnavailableAndAfterItStartsTheNextAttempt() throws {
        var machine = Machine()
        let first = try startAttempt(&machine, now: start, waiter: 1)
        _ = machine.connectFailed(id: first, error: refused, now: start)

        guard case .fail(let error) = machine.connectionRequested(now: start + .milliseconds(10)) else {
            Issue.record("a request during the backoff must fail")
            return
        }
        #expect(error.code == .unavailable)
        #expect(error.message == "\(refused.message) (next attempt in 15 ms)")
        #expect(machine.state == .backoff(until: start + .milliseconds(25), attempt: 1, lastError: refused))

        let second = try startAttempt(&machine, now: start + .milliseconds(25), waiter: 2)
        #expect(second != first)
        #expect(machine.state == .connecting(second, attempt: 1, waiters: [.init(id: 2, waiter: 2)]))
        // The attempt after a failure that succeeds is a reconnection.
        #expect(machine.connectSucceeded("c2", id: second) == .registerCloseHandler("c2", second, waiters: [2], reconnected: true))
    }

    @Test func closeOfTheCurrentConnectionGoesIdleAndTheNextRequestReconnects() throws {
        let (connectedMachine, id) = try connected(to: "c1")
        var machine = connectedMachine
        #expect(machine.connectionClosed(id: id) == .logClosed)
        #expect(machine.state == .idle)
        // Reported twice (the slot saw it inactive first, then its close handler ran): once only.
        #expect(machine.connectionClosed(id: id) == .none)

        let next = try startAttempt(&machine, now: start, waiter: 2)
        #expect(next != id)
        #expect(machine.state == .connecting(next, attempt: 0, waiters: [.init(id: 2, waiter: 2)]))
    }

    @Test func closeOfAStaleConnectionIsIgnored() throws {
        let (connectedMachine, old) = try connected(to: "c1")
        var machine = connectedMachine
        _ = machine.connectionClosed(id: old)
        let new = try startAttempt(&machine, now: start, waiter: 2)
        // The old connection's close arrives while the new attempt is under way, and after it.
        #expect(machine.connectionClosed(id: old) == .none)
        _ = machine.connectSucceeded("c2", id: new)
        #expect(machine.connectionClosed(id: old) == .none)
        #expect(machine.state == .connected("c2", new))
    }

    @Test func cancelledWaiterLeavesTheAttemptToTheOthers() throws {
        var machine = Machine()
        let id = try startAttempt(&machine, now: start, waiter: 1)
        _ = machine.connectionRequested(now: start)
        #expect(machine.addWaiter(2, id: 2, now: start) == .wait)

        guard case .fail(let waiter, let error) = machine.waiterCancelled(id: 1) else {
            Issue.record("the cancelled waiter must be resumed")
            return
        }
        #expect(waiter == 1 && error.code == .cancelled)
        #expect(machine.state == .connecting(id, attempt: 0, waiters: [.init(id: 2, waiter: 2)]))
        // Cancelled again, or never added: nothing to resume.
        #expect(machine.waiterCancelled(id: 1) == .none)
        #expect(machine.waiterCancelled(id: 99) == .none)

        #expect(machine.connectSucceeded("c1", id: id) == .registerCloseHandler("c1", id, waiters: [2], reconnected: false))
        // Cancelled after it was resumed: nothing to do.
        #expect(machine.waiterCancelled(id: 2) == .none)
    }

    @Test func waiterAddedAfterTheAttemptEndedGetsItsOutcome() throws {
        // Succeeded: the connection.
        let (connectedMachine, id) = try connected(to: "c1")
        var machine = connectedMachine
        #expect(machine.addWaiter(2, id: 2, now: start) == .useConnection("c1"))
        // Succeeded and closed already: connection closed.
        _ = machine.connectionClosed(id: id)
        guard case .fail(let closed) = machine.addWaiter(3, id: 3, now: start) else {
            Issue.record("no connection to wait for")
            return
        }
        #expect(closed.code == .connectionClosed)
        #expect(machine.state == .idle)

        // Failed: unavailable, as for any request during the backoff.
        let attempt = try startAttempt(&machine, now: start, waiter: 4)
        _ = machine.connectFailed(id: attempt, error: refused, now: start)
        guard case .fail(let unavailable) = machine.addWaiter(5, id: 5, now: start) else {
            Issue.record("the attempt failed")
            return
        }
        #expect(unavailable.code == .unavailable)

        // Shut down.
        _ = machine.shutdown()
        #expect(machine.addWaiter(6, id: 6, now: start) == .fail(Machine.shutdownError))
    }

    @Test func shutdownFromEachState() throws {
        var idle = Machine()
        #expect(idle.shutdown() == .none)
        #expect(idle.state == .shutdown)

        var connecting = Machine()
        _ = try startAttempt(&connecting, now: start, waiter: 1)
        _ = connecting.connectionRequested(now: start)
        _ = connecting.addWaiter(2, id: 2, now: start)
        #expect(connecting.shutdown() == .failWaiters([1, 2], Machine.shutdownError))
        #expect(connecting.state == .shutdown)

        var connectedMachine = try connected(to: "c1").0
        #expect(connectedMachine.shutdown() == .closeConnection("c1"))
        #expect(connectedMachine.state == .shutdown)

        var backoff = Machine()
        let attempt = try startAttempt(&backoff, now: start, waiter: 1)
        _ = backoff.connectFailed(id: attempt, error: refused, now: start)
        #expect(backoff.shutdown() == .none)
        #expect(backoff.state == .shutdown)

        // Twice: nothing more to do.
        #expect(connectedMachine.shutdown() == .none)
        #expect(connectedMachine.state == .shutdown)
    }

    @Test func afterShutdownRequestsFailAndLateEventsChangeNothing() throws {
        var machine = Machine()
        let id = try startAttempt(&machine, now: start, waiter: 1)
        _ = machine.shutdown()

        #expect(machine.connectionRequested(now: start) == .fail(Machine.shutdownError))
        // The attempt under way completes: its connection is closed, not used.
        #expect(machine.connectSucceeded("late", id: id) == .closeConnection("late"))
        #expect(machine.connectionClosed(id: id) == .none)
        #expect(machine.connectFailed(id: id, error: refused, now: start) == .none)
        #expect(machine.waiterCancelled(id: 1) == .none)
        #expect(machine.state == .shutdown)
    }
}

/// Thrown by a helper whose precondition on the machine's answer did not hold.
struct ExpectationFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
