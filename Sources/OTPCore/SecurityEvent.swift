/// Something a defender wants to see: one structured log line each (never with a code or a
/// token) and a count in `otpd_security_events_total{app,event}`.
public struct SecurityEvent: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// Too many wrong codes in a row: the identifier's codes are refused for a while.
        case identifierLocked = "identifier_locked"
        /// A rotated refresh token was presented again: its whole session is revoked.
        case refreshTokenReused = "refresh_token_reused"
        /// A client asked for more codes than its hourly quota.
        case ipQuotaExceeded = "ip_quota_exceeded"
        /// A client sent more wrong codes than its hourly quota, across users.
        case failedAttemptsPerIPExceeded = "failed_attempts_per_ip_exceeded"
        /// A login for an unknown identifier was answered like a real one (`conceal_unknown_users`).
        case concealedLogin = "concealed_login"
    }

    public var kind: Kind
    /// A configured app's id (never a client's guess).
    public var app: String
    public var userID: String?
    public var clientIP: String?
}
