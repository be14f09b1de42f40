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

    /// Takes every counter, in order; when one refuses, gives back those already taken and
    /// throws its refusal, so a refused request changes nothing.
    func reserve(_ reservations: [Reservation], app: AppPolicy) async throws(OTPError) -> [Reservation] {
        var taken: [Reservation] = []
        for reservation in reservations {
            let outcome: OTPStore.CounterOutcome
            do {
                outcome = try await store.take(reservation.counter, limit: reservation.limit)
            } catch {
                await release(taken)
                throw error
            }
            if case .overLimit(let seconds) = outcome {
                if let event = reservation.event { record(event, app: app, userID: nil, clientIP: reservation.clientIP) }
                await release(taken)
                throw reservation.refusal(retryAfter: seconds)
            }
            taken.append(reservation)
        }
        return taken
    }

    func release(_ reservations: [Reservation]) async {
        for reservation in reservations { await store.giveBack(reservation.counter, limit: reservation.limit) }
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
