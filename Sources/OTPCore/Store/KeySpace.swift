import Delivery

/// Names of every Redis key otpd writes (docs/redis-keys.md has the whole layout).
///
/// Everything of one user of one app shares the hash tag `{app:userId}`, so each script's keys
/// live on one Redis Cluster slot. A client IP's quota has a tag of its own.
struct KeySpace: Sendable {
    let prefix: String

    func tag(_ app: String, _ user: String) -> String { "\(prefix):{\(app):\(user)}" }
    func user(_ app: String, _ user: String) -> String { tag(app, user) + ":user" }
    func otp(_ app: String, _ user: String, purpose: Purpose) -> String { tag(app, user) + ":otp:" + purpose.rawValue }
    func quota(_ app: String, _ user: String) -> String { tag(app, user) + ":q" }
    /// Wrong passwords: an hourly budget and a streak of their own, apart from the code quotas.
    func passwordFailures(_ app: String, _ user: String) -> String { tag(app, user) + ":pf" }
    func idempotency(_ app: String, _ user: String, key: String) -> String { tag(app, user) + ":idem:" + key }
    func refreshToken(_ app: String, _ user: String, hash: String) -> String { tag(app, user) + ":rt:" + hash }
    func familyPrefix(_ app: String, _ user: String) -> String { tag(app, user) + ":rf:" }
    /// A client's hourly sends (`q`) and failed verifications (`f`), by its quota subject.
    func ipSends(_ app: String, subject: String) -> String { "\(prefix):{\(app):ip:\(subject)}:q" }
    func ipFailures(_ app: String, subject: String) -> String { "\(prefix):{\(app):ip:\(subject)}:f" }
    /// An app's SMS and calls this hour (the SMS-pumping ceiling).
    func appCalls(_ app: String) -> String { "\(prefix):{\(app):calls}:q" }
    /// A channel-API code, by channel and a hash of its destination (no phone number or email
    /// in a key name): each destination a tag of its own.
    func channelCode(_ channel: DeliveryChannel, destination: String) -> String {
        "\(prefix):{ch:\(channel.rawValue):\(destination)}"
    }
    /// A Twilio Verify verification (`v`) and the quotas of its `To` (`q`), by the service's
    /// SID (a configured one) and a 16-hex HMAC of the `To`: no phone number or email in a key
    /// name, and each `To` of each service a tag of its own.
    func twilioVerification(_ app: String, service: String, to: String) -> String { "\(prefix):{\(app):tv:\(service):\(to)}:v" }
    func twilioQuota(_ app: String, service: String, to: String) -> String { "\(prefix):{\(app):tv:\(service):\(to)}:q" }
    /// The Telegram bot's state shares one tag, so one script dedupes an update and stores its
    /// code: an update handled (`u:`, a day) and a code handed out (`c:` + its hash → chat id).
    func botUpdate(_ updateID: Int64) -> String { "\(prefix):{tg}:u:\(updateID)" }
    func botCode(hash: String) -> String { "\(prefix):{tg}:c:\(hash)" }
    /// The codes one chat got this hour and the last (`n:` + the chat id, an integer).
    func botChat(_ chatID: Int64) -> String { "\(prefix):{tg}:n:\(chatID)" }
    /// A Telegram Gateway delivery report seen (`g:` + SHA-256 of its signed text), 600 s.
    func gatewayReport(hash: String) -> String { "\(prefix):{tg}:g:\(hash)" }
    /// A hub socket's binding to a session (`socketID` is 22 base64url characters, checked).
    func hubSocket(_ app: String, socketID: String) -> String { "\(prefix):{\(app):ws:\(socketID)}" }
    /// The open hub sockets of one client IP (its quota subject: an IPv6 /64).
    func hubSockets(_ app: String, subject: String) -> String { "\(prefix):{\(app):wsip:\(subject)}" }
}

/// What an OTP is for; it is the first character of an otp_id after the user id, and each
/// user has at most one live OTP per purpose (a new one replaces it).
public enum Purpose: String, Sendable, Hashable {
    /// v1 register and login: activation signs in.
    case auth = "a"
    /// Password reset (`POST /auth/otp`): validation stores a new password and signs nobody in.
    /// A code of one purpose never passes for another.
    case reset = "r"
    /// The hub's `otp.send`: checked by `otp.verify` without being consumed, consumed by
    /// `otp.set_password`. Never accepted by v1 activate.
    case hub = "h"
}
