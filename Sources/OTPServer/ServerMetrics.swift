public import Prometheus

/// The Prometheus registry behind `/metrics`, and the series the HTTP layer records.
///
/// The registry is owned by the app (not a process-global), so each app — and each test —
/// has its own.
public final class ServerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry

    static let latencyBuckets: [Duration] = [
        .microseconds(500), .milliseconds(1), .microseconds(2500), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .milliseconds(2500), .seconds(5),
    ]

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
    }

    func recordRequest(route: String, method: String, status: Int, duration: Duration) {
        registry.makeCounter(
            descriptor: .init(
                namespace: "otpd", subsystem: "http", metricName: "requests", unitName: "total",
                helpText: "HTTP requests by route, method and status"),
            labels: [("route", route), ("method", method), ("status", String(status))]
        ).increment()
        registry.makeDurationHistogram(
            descriptor: .init(
                namespace: "otpd", subsystem: "http", metricName: "request_duration", unitName: "seconds",
                helpText: "HTTP request latency by route and method"),
            labels: [("route", route), ("method", method)],
            buckets: Self.latencyBuckets
        ).recordNanoseconds(duration.nanoseconds)
    }

    /// A code handed to a gateway that accepted it.
    func recordSend(app: String, channel: String) {
        registry.makeCounter(
            descriptor: .init(
                namespace: "otpd", subsystem: "otp", metricName: "sent", unitName: "total",
                helpText: "Codes delivered, by app and channel"),
            labels: [("app", app), ("channel", channel)]
        ).increment()
    }

    /// One message handed to a gateway: its outcome (`delivered`, `failed`) and how long it took,
    /// retries included.
    @Sendable func recordDelivery(channel: String, provider: String, delivered: Bool, duration: Duration) {
        registry.makeCounter(
            descriptor: .init(
                namespace: "otpd", subsystem: "delivery", metricName: "messages", unitName: "total",
                helpText: "Messages handed to gateways, by channel, provider and outcome"),
            labels: [("channel", channel), ("provider", provider), ("outcome", delivered ? "delivered" : "failed")]
        ).increment()
        registry.makeDurationHistogram(
            descriptor: .init(
                namespace: "otpd", subsystem: "delivery", metricName: "duration", unitName: "seconds",
                helpText: "Gateway latency (all attempts of one message), by provider"),
            labels: [("provider", provider)],
            buckets: Self.latencyBuckets
        ).recordNanoseconds(duration.nanoseconds)
    }

    /// A code checked: success, invalid, not_found, too_many_attempts or refused.
    func recordVerification(app: String, outcome: String) {
        registry.makeCounter(
            descriptor: .init(
                namespace: "otpd", subsystem: "otp", metricName: "verifications", unitName: "total",
                helpText: "Code verifications, by app and outcome"),
            labels: [("app", app), ("outcome", outcome)]
        ).increment()
    }

    /// A Redis command that could not be answered (connection, timeout) or failed on the server.
    func recordRedisError(kind: String) {
        registry.makeCounter(
            descriptor: .init(
                namespace: "otpd", subsystem: "redis", metricName: "errors", unitName: "total",
                helpText: "Redis commands that failed, by kind (unavailable, timeout, server, ...)"),
            labels: [("kind", kind)]
        ).increment()
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
