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

    /// Takes every counter (side by side: each is a script of its own); when one refuses, gives
    /// back the others and throws its refusal, so a refused request changes nothing.
    func reserve(_ reservations: [Reservation], app: AppPolicy) async throws(OTPError) -> [Reservation] {
        let outcomes = await withTaskGroup(of: (Int, Result<OTPStore.CounterOutcome, OTPError>).self) { group in
            for (index, reservation) in reservations.enumerated() {
                group.addTask { () async -> (Int, Result<OTPStore.CounterOutcome, OTPError>) in
                    do throws(OTPError) {
                        return (index, .success(try await self.store.take(reservation.counter, limit: reservation.limit)))
                    } catch {
                        return (index, .failure(error))
                    }
                }
            }
            var outcomes = [Result<OTPStore.CounterOutcome, OTPError>?](repeating: nil, count: reservations.count)
            for await (index, outcome) in group { outcomes[index] = outcome }
            return outcomes
        }
        var taken: [Reservation] = []
        var refusal: OTPError?
        for (reservation, outcome) in zip(reservations, outcomes) {
            switch outcome {
            case .success(.taken): taken.append(reservation)
            case .success(.overLimit(let seconds)):
                if let event = reservation.event { record(event, app: app, userID: nil, clientIP: reservation.clientIP) }
                refusal = refusal ?? reservation.refusal(retryAfter: seconds)
            case .failure(let error): refusal = refusal ?? error
            case nil: refusal = refusal ?? .storageFailed(StorageFailure(.failed, "a counter gave no answer"))
            }
        }
        if let refusal {
            await release(taken)
            throw refusal
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
