import OTPCrypto

/// Passwords: the policy, password reset by emailed code, and sign-in with a password.
///
/// Passwords are stored only as scrypt hashes (`PasswordHasher`, in the user hash's field
/// `pw`), computed on the hasher's own threads, never on an event loop.
extension OTPEngine {
    /// A password is hashed from at most this many bytes (UTF-8): it bounds the work a request
    /// can ask for, and no person types more.
    public static let maxPasswordBytes = 1024

    /// The app's policy for a new password: at least `password.min_length` characters, at
    /// most `maxPasswordBytes` bytes. Throws `invalidPassword` saying which.
    public func checkNewPassword(_ password: String, appID: String) throws(OTPError) {
        try checkNewPassword(password, app: app(appID))
    }

    func checkNewPassword(_ password: String, app: AppPolicy) throws(OTPError) {
        let minimum = app.config.password.minLength
        guard password.count >= minimum else {
            throw .invalidPassword("the password must be at least \(minimum) characters long")
        }
        guard password.utf8.count <= Self.maxPasswordBytes else {
            throw .invalidPassword("the password must be at most \(Self.maxPasswordBytes) bytes long")
        }
    }

    /// The stored form of a password (scrypt), computed off the event loop.
    public func hashPassword(_ password: String) async throws(OTPError) -> String {
        do {
            return try await passwordHasher.hash(password)
        } catch {
            throw .overloaded
        }
    }

}
