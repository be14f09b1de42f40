/// A user as the API shows it. Times are Unix seconds.
public struct User: Sendable, Hashable {
    public var id: String
    public var email: String?
    public var phone: String?
    public var firstName: String
    public var lastName: String
    public var createdAt: Int
    public var lastLoginAt: Int?
    /// `unverified` until the first activation, then `active`.
    public var status: String
}

/// What a successful sign-in or refresh answers.
public struct AuthResult: Sendable, Hashable {
    public var authToken: String
    /// Seconds the access token lives (the app's `tokens.access_ttl_seconds`).
    public var expiresIn: Int
    public var redirectURL: String
    public var refreshToken: String
    /// Unix seconds.
    public var refreshTokenExpiration: Int
    public var user: User
}
