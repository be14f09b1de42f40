import Hummingbird

extension Request {
    /// The token of an `Authorization: Bearer <token>` header (the scheme in any case, spaces
    /// dropped), or nil when the request carries no Bearer credentials.
    var bearerToken: String? {
        guard let authorization = headers[.authorization], authorization.lowercased().hasPrefix("bearer ") else { return nil }
        return String(authorization.dropFirst(7).filter { $0 != " " })
    }
}
