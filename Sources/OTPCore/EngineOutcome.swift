public import Delivery

/// What the engine tells its observer after each send and each judged code, as it tells of
/// each delivery (`onDelivery`) and security event (`onSecurityEvent`): metrics count these,
/// so no surface records them, and a new surface is counted by using the engine.
public enum EngineOutcome: Sendable, Hashable {
    /// A code went out (a concealed decoy counts; an idempotent replay does not).
    case codeSent(app: String, channel: DeliveryChannel)
    /// A code was judged, on any surface.
    case verificationJudged(app: String, verdict: Verdict)

    /// How a code was judged: the `outcome` label of `otpd_otp_verifications_total`.
    public enum Verdict: String, Sendable, Hashable, CaseIterable {
        case success, invalid
        case notFound = "not_found"
        case tooManyAttempts = "too_many_attempts"
        /// Any other refusal (a locked identifier, a closed app, a bad identifier, Redis down).
        case refused

        /// The verdict of a refused check; nil when no code was judged (a new password the
        /// policy refused before any code was looked at).
        init?(_ error: OTPError) {
            switch error {
            case .invalidOTP: self = .invalid
            case .otpNotFound: self = .notFound
            case .otpExhausted, .tooManyFailures: self = .tooManyAttempts
            case .invalidPassword: return nil
            default: self = .refused
            }
        }
    }
}

extension OTPEngine {
    /// Runs `check`, the judging of a code, and tells `onOutcome` its verdict. Only a
    /// configured app is told of (an app id in a path or body is the client's choice).
    func judging<Result>(
        appID: String, _ check: () async throws(OTPError) -> Result
    ) async throws(OTPError) -> Result {
        do {
            let result = try await check()
            onOutcome(.verificationJudged(app: appID, verdict: .success))
            return result
        } catch {
            if apps[appID] != nil, let verdict = EngineOutcome.Verdict(error) {
                onOutcome(.verificationJudged(app: appID, verdict: verdict))
            }
            throw error
        }
    }
}
