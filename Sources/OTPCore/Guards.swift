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

    /// The counters a send takes: the client's sends, and the app's SMS and calls for those channels.
    func sendCounters(channel: DeliveryChannel, app: AppPolicy, clientIP: String?) -> [Reservation] {
        var counters: [Reservation] = []
        if let clientIP {
            counters.append(
                Reservation(
                    counter: .clientSends(app: app.id, client: NetworkRange.quotaSubject(of: clientIP)),
                    limit: app.config.limits.sendsPerIPPerHour, event: .ipQuotaExceeded, clientIP: clientIP))
        }
        if channel == .sms || channel == .call {
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
