import Delivery
public import Prometheus
import OTPCore
import RedisClient
import Synchronization

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

    /// `logOutput`: the output whose dropped lines `otpd_log_lines_dropped_total` counts (the
    /// process's, once `bootstrapLogging` has installed one).
    public init(
        registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), logOutput: LogOutput? = .installed
    ) {
        self.registry = registry
        let dropped = registry.makeCounter(
            descriptor: .init(
                namespace: "otpd", subsystem: "log", metricName: "lines_dropped", unitName: "total",
                helpText: "Log lines dropped because standard output could not keep up"))
        logOutput?.countDrops { dropped.increment() }
    }

    /// The two series one request records: its counter and its route's latency histogram.
    private struct RequestSeries {
        let requests: Counter
        let duration: DurationHistogram
    }

    /// What picks a request's series: hashed as it comes, without building a string.
    private struct RequestSeriesKey: Hashable {
        let route: String
        let method: String
        let status: Int
    }

    private let requestSeries = Mutex<[RequestSeriesKey: RequestSeries]>([:])

    func recordRequest(route: String, method: String, status: Int, duration: Duration) {
        let key = RequestSeriesKey(route: route, method: method, status: status)
        let series = requestSeries.withLock { $0[key] } ?? {
            let series = RequestSeries(
                requests: counter("http", "requests", "HTTP requests by route, method and status",
                                  [("route", route), ("method", method), ("status", String(status))]),
                duration: histogram("http", "request_duration", "HTTP request latency by route and method",
                                    [("route", route), ("method", method)]))
            requestSeries.withLock { $0[key] = series }
            return series
        }()
        series.requests.increment()
        series.duration.recordNanoseconds(duration.nanoseconds)
    }

    /// A series recorded on every sign-in or send, found by its labels without building a key
    /// string (as `RequestSeriesKey`).
    private struct LabelledKey: Hashable {
        enum Series: Hashable { case sent, verifications, deliveries, deliveryDuration }
        let series: Series
        let first: String
        let second: String
        var third = ""
    }

    private let labelledCounters = Mutex<[LabelledKey: Counter]>([:])
    private let labelledHistograms = Mutex<[LabelledKey: DurationHistogram]>([:])

    private func counter(_ key: LabelledKey, _ make: () -> Counter) -> Counter {
        if let counter = labelledCounters.withLock({ $0[key] }) { return counter }
        let counter = make()
        labelledCounters.withLock { $0[key] = counter }
        return counter
    }

    /// What the engine tells of each send and each judged code (`onOutcome`): the one place
    /// `otpd_otp_sent_total` and `otpd_otp_verifications_total` are recorded, whatever the surface.
    @Sendable func record(_ outcome: EngineOutcome) {
        switch outcome {
        case .codeSent(let app, let channel): recordSend(app: app, channel: channel.rawValue)
        case .verificationJudged(let app, let verdict): recordVerification(app: app, outcome: verdict.rawValue)
        }
    }

    /// A code handed to a gateway that accepted it.
    private func recordSend(app: String, channel: String) {
        counter(LabelledKey(series: .sent, first: app, second: channel)) {
            counter("otp", "sent", "Codes delivered, by app and channel", [("app", app), ("channel", channel)])
        }.increment()
    }

    /// One message handed to a gateway: its outcome (`delivered`, `failed`) and how long it took,
    /// retries included.
    @Sendable func recordDelivery(channel: String, provider: String, delivered: Bool, duration: Duration) {
        let outcome = delivered ? "delivered" : "failed"
        counter(LabelledKey(series: .deliveries, first: channel, second: provider, third: outcome)) {
            counter("delivery", "messages", "Messages handed to gateways, by channel, provider and outcome",
                    [("channel", channel), ("provider", provider), ("outcome", outcome)])
        }.increment()
        let key = LabelledKey(series: .deliveryDuration, first: provider, second: "")
        let series = labelledHistograms.withLock({ $0[key] }) ?? {
            let histogram = histogram("delivery", "duration", "Gateway latency (all attempts of one message), by provider",
                                      [("provider", provider)])
            labelledHistograms.withLock { $0[key] = histogram }
            return histogram
        }()
        series.recordNanoseconds(duration.nanoseconds)
    }

    /// A code checked: success, invalid, not_found, too_many_attempts or refused.
    private func recordVerification(app: String, outcome: String) {
        counter(LabelledKey(series: .verifications, first: app, second: outcome)) {
            counter("otp", "verifications", "Code verifications, by app and outcome", [("app", app), ("outcome", outcome)])
        }.increment()
    }

    /// A security event (`SecurityEvent.Kind`, a fixed set) of a configured app.
    @Sendable func recordSecurityEvent(app: String, event: String) {
        counter("security", "events", "Security events, by app and event", [("app", app), ("event", event)]).increment()
    }

    /// A Telegram bot update by outcome: `code_sent`, `duplicate`, `ignored` (not a text
    /// message) or `reply_dropped` (the reply queue was full).
    func recordBotUpdate(outcome: String) {
        counter("telegram", "bot_updates", "Telegram bot updates, by outcome", [("outcome", outcome)]).increment()
    }

    /// A Telegram Gateway delivery report by status (`sent`, `delivered`, `read`, `expired`,
    /// `revoked`, else `other`).
    func recordGatewayReport(status: String) {
        counter("telegram", "gateway_reports", "Telegram Gateway delivery reports, by status", [("status", status)])
            .increment()
    }

    /// A WhatsApp delivery status (`sent`, `delivered`, `read`, `failed`, else `other`).
    func recordWhatsAppStatus(_ status: String) {
        counter("whatsapp", "statuses", "WhatsApp delivery statuses, by status", [("status", status)]).increment()
    }

    /// A request whose Redis work could not be done: `StorageFailure.Kind` (a fixed set).
    func recordRedisError(kind: String) {
        counter("redis", "errors", "Requests Redis could not answer, by kind (unavailable, timeout, shutdown, failed)", [("kind", kind)])
            .increment()
    }

    /// A Redis Cluster redirect (`otpd_redis_redirects_total{kind="moved|ask"}`) or slot-map
    /// refresh (`otpd_redis_cluster_map_refreshes_total`).
    @Sendable func recordRedisClusterEvent(_ event: RedisClusterEvent) {
        switch event {
        case .redirected(let kind):
            counter("redis", "redirects", "Redis Cluster redirects followed, by kind (moved, ask)", [("kind", kind.rawValue)])
                .increment()
        case .mapRefreshed:
            counter("redis", "cluster_map_refreshes", "Redis Cluster slot maps read (CLUSTER SLOTS)", []).increment()
        }
    }

    // The registry looks a series up by descriptor and labels under its lock; every request
    // records two series, so each is looked up there once and then kept here.
    private let counters = Mutex<[String: Counter]>([:])
    private let histograms = Mutex<[String: DurationHistogram]>([:])

    /// `otpd_<subsystem>_<name>_total{labels}`
    private func counter(_ subsystem: String, _ name: String, _ help: String, _ labels: [(String, String)]) -> Counter {
        let key = Self.key(subsystem, name, labels)
        if let counter = counters.withLock({ $0[key] }) { return counter }
        let counter = registry.makeCounter(
            descriptor: .init(namespace: "otpd", subsystem: subsystem, metricName: name, unitName: "total", helpText: help),
            labels: labels)
        counters.withLock { $0[key] = counter }
        return counter
    }

    /// `otpd_<subsystem>_<name>_seconds{labels}`
    private func histogram(
        _ subsystem: String, _ name: String, _ help: String, _ labels: [(String, String)]
    ) -> DurationHistogram {
        let key = Self.key(subsystem, name, labels)
        if let histogram = histograms.withLock({ $0[key] }) { return histogram }
        let histogram = registry.makeDurationHistogram(
            descriptor: .init(namespace: "otpd", subsystem: subsystem, metricName: name, unitName: "seconds", helpText: help),
            labels: labels, buckets: Self.latencyBuckets)
        histograms.withLock { $0[key] = histogram }
        return histogram
    }

    private static func key(_ subsystem: String, _ name: String, _ labels: [(String, String)]) -> String {
        var key = subsystem + "\u{1}" + name
        for (_, value) in labels { key += "\u{1}" + value }
        return key
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
