import HTTPTypes

/// Label values for metrics come from bounded sets only: a value a client chooses (an app id
/// in the path, a made-up HTTP method) would otherwise add a series per request, forever.
enum MetricLabels {
    static let methods: Set<String> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

    /// The method's name when it is a standard one, else `other`.
    static func method(_ method: HTTPRequest.Method) -> String {
        methods.contains(method.rawValue) ? method.rawValue : "other"
    }
}
