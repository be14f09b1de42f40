import Delivery
import Logging

/// The hourly counters that guard an action from outside the identifier's hash tag — the
/// client's sends and failures, the app's SMS and calls — and the security events.
extension OTPEngine {
    /// One counter taken before an action, with its limit and what its refusal means.
    struct Reservation: Sendable {
        var counter: OTPStore.HourlyCounter
        var limit: Int
        var event: SecurityEvent.Kind?
        var clientIP: String?

        var isClientQuota: Bool {
            switch counter {
            case .clientSends, .clientFailures: return true
            case .appCalls: return false
            }
        }

        func refusal(retryAfter seconds: Int) -> OTPError {
            switch counter {
            case .clientSends: return .tooManySendsFromIP(retryAfter: seconds)
            case .clientFailures: return .tooManyFailuresFromIP(retryAfter: seconds)
            case .appCalls: return .tooManyCallsForApp(retryAfter: seconds)
            }
        }
    }

    /// The counters a send takes: the client's sends, and the app's paid messages (SMS and calls)
    /// for a channel the table marks paid.
    func sendCounters(channel: DeliveryChannel, app: AppPolicy, clientIP: String?) -> [Reservation] {
        var counters: [Reservation] = []
        if let clientIP {
            counters.append(
                Reservation(
                    counter: .clientSends(app: app.id, client: NetworkRange.quotaSubject(of: clientIP)),
                    limit: app.config.limits.sendsPerIPPerHour, event: .ipQuotaExceeded, clientIP: clientIP))
        }
        if channel.traits.isPaid {
            counters.append(Reservation(counter: .appCalls(app: app.id), limit: app.config.limits.smsAndCallsPerAppPerHour))
        }
        return counters
    }

    /// The counter an activation takes: the client's wrong codes (given back unless the code was wrong).
    func failureCounter(app: AppPolicy, clientIP: String?) -> [Reservation] {
        guard let clientIP else { return [] }
        return [
            Reservation(
                counter: .clientFailures(app: app.id, client: NetworkRange.quotaSubject(of: clientIP)),
                limit: app.config.limits.failedAttemptsPerIPPerHour, event: .failedAttemptsPerIPExceeded, clientIP: clientIP)
        ]
    }

    /// Which of its units an action gives back once it has answered.
    enum GiveBack: Sendable {
        /// The action did not happen, or did not count (a right code): every unit.
        case all
        /// It counted (a wrong or dead code, a call a gateway billed): none.
        case none
        /// otpd refused the identifier: the client's units stay spent (probing is metered),
        /// the others come back.
        case allButClient
    }

    /// The one shape of every guarded action: take `reservations` (a refusal throws and
    /// changes nothing), run `action`, and give the units back as `giveBack` decides from its
    /// outcome — every unit when the action throws. `waitForGiveBack: false` sends a give-back
    /// of all units behind the action on the same connection without waiting for it (the hot
    /// path of a right code: the answer does not depend on it).
    func withReservations<Outcome>(
        _ reservations: [Reservation], app: AppPolicy, waitForGiveBack: Bool = true,
        giveBack: (Outcome) -> GiveBack, _ action: () async throws(OTPError) -> Outcome
    ) async throws(OTPError) -> Outcome {
        let taken = try await reserve(reservations, app: app)
        let outcome: Outcome
        do {
            outcome = try await action()
        } catch {
            await release(taken)
            throw error
        }
        switch giveBack(outcome) {
        case .all where waitForGiveBack: await release(taken)
        case .all: await releaseWithoutWaiting(taken)
        case .allButClient: await release(taken.filter { !$0.isClientQuota })
        case .none: break
        }
        return outcome
    }

    /// Takes every counter; when one refuses (or fails), gives back those taken and throws the
    /// first refusal in order, so a refused request changes nothing. The counters are taken
    /// side by side (one round trip on a single Redis server): the outcome is the one of taking
    /// them in order — only the first refusal is recorded and thrown — except that a counter
    /// after a refusing one was taken for a moment too, as the ones before it always were.
    func reserve(_ reservations: [Reservation], app: AppPolicy) async throws(OTPError) -> [Reservation] {
        switch reservations.count {
        case 0:
            return []
        case 1:
            // One counter (an activation's): no list of outcomes to build.
            let reservation = reservations[0]
            if case .overLimit(let seconds) = try await store.take(reservation.counter, limit: reservation.limit) {
                if let event = reservation.event { record(event, app: app, userID: nil, clientIP: reservation.clientIP) }
                throw reservation.refusal(retryAfter: seconds)
            }
            return reservations
        default:
            let outcomes = await store.take(reservations.map { ($0.counter, $0.limit) })
            var taken: [Reservation] = []
            var refusal: OTPError?
            for (reservation, outcome) in zip(reservations, outcomes) {
                switch outcome {
                case .success(.taken):
                    taken.append(reservation)
                case .success(.overLimit(let seconds)):
                    guard refusal == nil else { continue }
                    if let event = reservation.event { record(event, app: app, userID: nil, clientIP: reservation.clientIP) }
                    refusal = reservation.refusal(retryAfter: seconds)
                case .failure(let error):
                    if refusal == nil { refusal = error }
                }
            }
            if let refusal {
                await release(taken)
                throw refusal
            }
            return taken
        }
    }

    /// Gives back every counter, and waits until Redis has.
    func release(_ reservations: [Reservation]) async {
        for reservation in reservations { await store.giveBack(reservation.counter) }
    }

    /// Gives back every counter without waiting for Redis (see `OTPStore.giveBackWithoutWaiting`):
    /// for the common path of a right code, where the answer does not depend on it. A counter
    /// that cannot be given back that way (cluster mode) is given back and waited for.
    func releaseWithoutWaiting(_ reservations: [Reservation]) async {
        for reservation in reservations where !store.giveBackWithoutWaiting(reservation.counter) {
            await store.giveBack(reservation.counter)
        }
    }

    /// Logs one structured line (never a code or a token) and tells the metrics.
    func record(_ kind: SecurityEvent.Kind, app: AppPolicy, userID: String?, clientIP: String?) {
        logger.warning(
            "security event",
            metadata: [
                "event": .string(kind.rawValue), "app": .string(app.id), "user_id": .string(userID ?? "-"),
                "client_ip": .string(clientIP ?? "-"),
            ])
        onSecurityEvent(SecurityEvent(kind: kind, app: app.id, userID: userID, clientIP: clientIP))
    }
}

/// The outcomes of the scripts that judge a code, from the client's side: whether the answer
/// is a failed attempt of theirs, which keeps the unit `failed_attempts_per_ip_per_hour` took
/// (a wrong code or a dead one: `CodeRefusal.countsAgainstClient`).
extension OTPStore.ActivateOutcome {
    var keepsClientUnit: Bool {
        if case .refused(let refusal) = self { return refusal.countsAgainstClient }
        return false
    }
}

extension OTPStore.PasswordResetOutcome {
    var keepsClientUnit: Bool {
        if case .refused(let refusal) = self { return refusal.countsAgainstClient }
        return false
    }
}
