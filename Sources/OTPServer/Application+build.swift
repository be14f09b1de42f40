public import Hummingbird
import Delivery
import HummingbirdCore
import HummingbirdWebSocket
import NIOCore
public import Logging
public import OTPCore
public import RedisClient

/// Assembles otpd: the Redis client (a service that starts before the server and stops after
/// it), the router with its middleware, and one controller per API surface.
///
/// `extraRoutes` may add routes to the router after otpd's own, behind the same middleware;
/// the shipped `otpd` adds none (`otpd-bench serve` adds its echo route).
public func buildApplication(
    configuration: Configuration, logger: Logger,
    extraRoutes: (Router<OTPRequestContext>) -> Void = { _ in }
) throws -> some ApplicationProtocol {
    let metrics = ServerMetrics()
    var redisLogger = logger
    redisLogger[metadataKey: "component"] = "redis"
    let redis = try makeRedisClient(configuration.redis, logger: redisLogger, metrics: metrics)
    var deliveryLogger = logger
    deliveryLogger[metadataKey: "component"] = "delivery"
    let engine = OTPEngine(
        configuration: configuration, redis: redis,
        providers: configuration.deliveryProviders(logger: deliveryLogger), logger: logger,
        onDelivery: metrics.recordDelivery,
        onSecurityEvent: { metrics.recordSecurityEvent(app: $0.app, event: $0.kind.rawValue) },
        onOutcome: metrics.record)
    let replies = TelegramReplies(engine: engine, metrics: metrics)
    // One hub controller: its routes and the WebSocket upgrade share it.
    let hub = hubController(configuration: configuration, engine: engine, metrics: metrics)
    let router = buildRouter(
        configuration: configuration, redis: redis, engine: engine, metrics: metrics, replies: replies, hub: hub,
        logger: logger)
    extraRoutes(router)
    let idleTimeout = TimeAmount.seconds(Int64(configuration.server.idleTimeoutSeconds))
    // A body still unfinished `idle_timeout_seconds` after its head closes the connection: one
    // timer per connection (RequestBodyDeadline), not one per request.
    let http1 = HTTP1Channel.Configuration(
        additionalChannelHandlers: [RequestBodyDeadline(timeout: idleTimeout)], idleTimeout: idleTimeout)
    // With the hub configured, GET /-/ws upgrades to a WebSocket; every other request is HTTP/1.1 as before.
    let server: HTTPServerBuilder
    if let hub {
        let upgradeConfiguration = HTTP1WebSocketUpgradeChannel.Configuration(
            http1: http1, ws: .init(maxFrameSize: 4096, autoPing: .enabled(timePeriod: .seconds(30))))
        server = HTTPServerBuilder { responder in
            HeadDeadlineChannel(
                base: HTTP1WebSocketUpgradeChannel(responder: responder, configuration: upgradeConfiguration) { request, channel, _ in
                    await hub.shouldUpgrade(request, channel: channel)
                },
                timeout: idleTimeout)
        }
    } else {
        server = .http1(configuration: http1)
    }
    var app = Application(
        router: router,
        server: server,
        configuration: .init(
            address: .hostname(configuration.server.host, port: configuration.server.port),
            serverName: "otpd",
            availableConnectionsDelegate: .maximum(configuration.server.maxConnections, logger: logger)),
        logger: logger)
    // Started in this order, stopped in reverse: the bot's queued replies are sent before Redis closes.
    app.addServices(redis, replies)
    app.beforeServerStarts {
        // Cluster mode: read the slot map now, so a cluster that no seed can reach, or that
        // leaves slots without a master, stops startup with a message (and a non-zero exit).
        do {
            try await redis.start()
        } catch {
            logger.critical("cannot start: Redis Cluster unusable", metadata: ["error": "\(error)"])
            throw error
        }
        // Not required (EVALSHA falls back to SCRIPT LOAD), but spares the first requests a round trip.
        do {
            try await engine.loadScripts()
        } catch {
            logger.warning("could not load the Lua scripts into Redis yet", metadata: ["error": "\(error)"])
        }
    }
    return app
}

/// The Redis client `redis.mode` asks for. In cluster mode, `redis.url` supplies only the
/// credentials (user and password, for AUTH on every node); the nodes come from `redis.nodes`
/// and the cluster's slot map.
func makeRedisClient(_ redis: Configuration.Redis, logger: Logger, metrics: ServerMetrics) throws -> RedisClient {
    let node = try RedisConfiguration(
        url: redis.url, timeoutMilliseconds: redis.timeoutMilliseconds, poolSize: redis.poolSize)
    switch redis.mode {
    case .standalone:
        return RedisClient(configuration: node, logger: logger)
    case .cluster:
        let seeds = redis.nodes.compactMap { RedisNodeAddress($0) }
        return RedisClient(
            cluster: RedisClusterConfiguration(seeds: seeds, node: node), logger: logger,
            onEvent: metrics.recordRedisClusterEvent)
    }
}

/// The Redis client of a configuration, standalone or cluster, for the command-line tools.
public func makeRedisClient(_ redis: Configuration.Redis, logger: Logger) throws -> RedisClient {
    try makeRedisClient(redis, logger: logger, metrics: ServerMetrics())
}

func buildRouter(
    configuration: Configuration, redis: RedisClient, engine: OTPEngine, metrics: ServerMetrics,
    replies: TelegramReplies? = nil, hub: HubController? = nil, logger: Logger = Logger(label: "otpd")
) -> Router<OTPRequestContext> {
    let router = Router(context: OTPRequestContext.self)
    // Request ids, the access log and metrics, error mapping and the body limit, in one frame.
    router.add(middleware: ObservabilityMiddleware(metrics: metrics, maxBodyBytes: configuration.server.maxBodyBytes))
    OperationsController(engine: engine, metrics: metrics).addRoutes(to: router)
    let clientAddress = ClientAddress(trustedProxies: configuration.server.trustedProxies.compactMap(NetworkRange.init))
    V1Controller(engine: engine, metrics: metrics, clientAddress: clientAddress).addRoutes(to: router)
    WellKnownController(engine: engine, clientAddress: clientAddress, publicURL: configuration.server.publicURL)
        .addRoutes(to: router)
    let credentials = BasicCredentials(configuration.surfaces.channelAPI)
    ChannelAPIController(engine: engine, credentials: credentials).addRoutes(to: router)
    // The bot's webhook exists for a Telegram bot (whose secret production requires), or in
    // development for any telegram gateway (the log one, to try it locally). Otherwise it is not
    // served: anyone could post updates to it, and each costs a day of Redis memory. Nor is it
    // served by a router built without the app's reply queue (tests that only read the
    // routes): its replies would never be sent.
    var webhookSecret: String?
    var webhookServed = configuration.mode == .development && configuration.delivery.telegram != nil
    if case .telegram(let bot) = configuration.delivery.telegram {
        webhookSecret = bot.webhookSecret
        webhookServed = true
    }
    TelegramController(
        engine: engine, metrics: metrics, replies: replies, credentials: credentials, clientAddress: clientAddress,
        webhookSecret: webhookSecret, gatewayToken: configuration.delivery.telegramGateway?.token, logger: logger
    ).addRoutes(to: router, webhook: webhookServed)
    if let reset = configuration.surfaces.passwordReset {
        PasswordResetController(engine: engine, appID: reset.app, metrics: metrics, clientAddress: clientAddress)
            .addRoutes(to: router)
    }
    ProjectVerifyController(engine: engine, metrics: metrics, clientAddress: clientAddress).addRoutes(to: router)
    if let verify = configuration.surfaces.twilioVerify {
        TwilioVerifyController(engine: engine, metrics: metrics, configuration: verify).addRoutes(to: router)
    }
    // WhatsApp's status webhook: authentic only with the Cloud API's provider and its secrets.
    var whatsappCloud: Configuration.Gateway.WhatsAppCloud?
    if case .whatsappCloud(let cloud) = configuration.delivery.gateway(for: .whatsapp) { whatsappCloud = cloud }
    WhatsAppController(cloud: whatsappCloud, metrics: metrics, logger: logger).addRoutes(to: router)
    // `hub`: the application's (which also answers the upgrade); a router built alone for a
    // test makes its own from the configuration.
    (hub ?? hubController(configuration: configuration, engine: engine, metrics: metrics))?.addRoutes(to: router)
    return router
}

/// The hub's controller when `surfaces.hub` binds it to an app.
func hubController(configuration: Configuration, engine: OTPEngine, metrics: ServerMetrics) -> HubController? {
    guard let hub = configuration.surfaces.hub else { return nil }
    return HubController(
        engine: engine, metrics: metrics,
        clientAddress: ClientAddress(trustedProxies: configuration.server.trustedProxies.compactMap(NetworkRange.init)),
        appID: hub.app, secureCookie: configuration.mode == .production, socketMaxSeconds: hub.socketMaxSeconds,
        socketsPerIP: hub.socketsPerIP)
}
